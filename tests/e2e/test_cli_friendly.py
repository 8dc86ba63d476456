"""The CLI as a person meets it: whole ids in 80 columns, JSON never cut, one-line errors naming
the setting, and a reject that asks why. Every command runs as a real ``signoff`` process."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e._process import SIGNOFF, cli, cli_json, env_for, free_port

LONG = "x" * 150 + " the end of a long value"
WORKFLOW = f"""\
id: long-output
inputs:
  type: object
  properties:
    customer: {{type: string}}
nodes:
  - id: prepare
    type: set
    data:
      note: "{LONG}"
      nested: {{customer: "{{{{ inputs.customer }}}}", lines: [1, 2, 3]}}
  - id: review_the_refund_request_carefully
    type: human
    title: "A title long enough that the table has to wrap it somewhere in eighty columns"
    prompt: "Refund {{{{ inputs.customer }}}}?"
    options: [approve, reject]
    assignee: user:alice
  - id: done
    type: notify
    text: "done"
edges:
  - {{from: prepare, to: review_the_refund_request_carefully}}
  - {{from: review_the_refund_request_carefully, to: done, when: "response.action == 'approve'"}}
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "long.yml").write_text(WORKFLOW, encoding="utf-8")
    (tmp_path / "roles.yml").write_text("approvers:\n  members: [user:alice]\n", encoding="utf-8")
    return tmp_path


@pytest.fixture
def env(workdir: Path) -> dict[str, str]:
    return env_for(f"sqlite:///{workdir / 's.db'}", workdir, free_port(), COLUMNS="80")


def _start(env: dict[str, str], workdir: Path) -> tuple[str, str]:
    started = cli_json(env, workdir, "run", "long-output", "-i", "customer=ACME Corporation", "--as", "bob")
    [task] = [t for t in cli_json(env, workdir, "tasks") if t["run_id"] == started["id"]]
    return started["id"], task["id"]


def test_tables_fit_80_columns_with_every_id_whole(env: dict[str, str], workdir: Path) -> None:
    run_id, cp_id = _start(env, workdir)
    for args in (["tasks"], ["runs"]):
        out = cli(env, workdir, *args).stdout
        table = [line for line in out.splitlines() if line[:1] in set("┏┃┡│└")]
        assert table, out
        assert max(len(line) for line in table) <= 80, out
        assert run_id in out or args == ["tasks"], out
        assert cp_id in out or args == ["runs"], out
        # the ids a person types next are on one line each, never cut or wrapped
        ids = re.findall(r"\b(?:cp|run)_[0-9a-f]+", out)
        assert ids, out
        assert all(len(i) == len(run_id if i.startswith("run_") else cp_id) for i in ids), out
    # the details under the table name the run, for `signoff show`
    assert f"run {run_id}" in cli(env, workdir, "tasks").stdout


def test_show_prints_every_output_in_full(env: dict[str, str], workdir: Path) -> None:
    run_id, _ = _start(env, workdir)
    out = cli(env, workdir, "show", run_id).stdout
    assert f'"note": "{LONG}"' in out  # one value on one line, however long: never cut with "…"
    assert "…" not in out
    # the output is the JSON itself, as the next node reads it
    start = out.index("prepare output:\n") + len("prepare output:\n")
    end = out.index("\n}\n", start) + 2
    assert json.loads(out[start:end]) == {
        "note": LONG,
        "nested": {"customer": "ACME Corporation", "lines": [1, 2, 3]},
    }
    assert "review_the_refund_request_carefully" in out


def test_a_reject_without_reason_off_a_terminal_is_refused(env: dict[str, str], workdir: Path) -> None:
    run_id, cp_id = _start(env, workdir)
    refused = cli(env, workdir, "respond", cp_id, "reject", "--as", "alice", check=2)
    assert refused.stderr.strip().splitlines() == [
        'error: a reject needs a reason: add --reason "..." (it is recorded with the decision)'
    ]
    assert [t["id"] for t in cli_json(env, workdir, "tasks")] == [cp_id]  # still open
    cli(env, workdir, "respond", cp_id, "reject", "--as", "alice", "--reason", "duplicate request")
    shown = cli_json(env, workdir, "show", run_id)
    assert [(d["action"], d["comment"]) for d in shown["decisions"]] == [("reject", "duplicate request")]


def test_a_reject_on_a_terminal_asks_for_the_reason(env: dict[str, str], workdir: Path) -> None:
    run_id, cp_id = _start(env, workdir)
    main, secondary = pty.openpty()  # stdin is a terminal: the reason is asked for (on stderr)
    proc = subprocess.Popen(
        [SIGNOFF, "respond", cp_id, "reject", "--as", "alice"],
        env=env,
        cwd=workdir,
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(secondary)
    assert proc.stderr is not None
    try:
        asked = _read_until(proc.stderr.fileno(), b"Reason for rejecting", deadline=time.monotonic() + 120)
        os.write(main, b"\n")  # an empty reason is asked again
        asked += _read_until(proc.stderr.fileno(), b"needs a reason.", deadline=time.monotonic() + 60)
        os.write(main, b"not in this quarter's budget\n")
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (out, asked + err)
    assert b"A reject needs a reason." in asked
    shown = cli_json(env, workdir, "show", run_id)
    assert [(d["action"], d["comment"]) for d in shown["decisions"]] == [
        ("reject", "not in this quarter's budget")
    ]


def _read_until(fd: int, wanted: bytes, *, deadline: float) -> bytes:
    """Read ``fd`` until ``wanted`` shows up."""
    seen = b""
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {wanted!r} on the terminal; saw {seen!r}"
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if ready:
            seen += os.read(fd, 1024)
    return seen


def test_a_taken_port_is_one_line_naming_signoff_port(env: dict[str, str], workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli({**env, "SIGNOFF_PORT": str(port)}, workdir, "serve", check=None)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: port {port} on 127.0.0.1 is already in use (another signoff serve?): "
        "stop that process or choose another port with SIGNOFF_PORT"
    ], result.stderr


@pytest.mark.parametrize("command", [["tasks"], ["runs"], ["show", "run_0"], ["serve"]])
def test_an_unreachable_database_is_one_line_naming_signoff_database_url(
    env: dict[str, str], workdir: Path, command: list[str]
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://signoff:hunter2-secret@127.0.0.1:{port}/signoff"
    result = cli({**env, "SIGNOFF_DATABASE_URL": url}, workdir, *command, check=None)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(
        f"error: the database at SIGNOFF_DATABASE_URL=postgresql://signoff:***@127.0.0.1:{port}/signoff "
        "failed: connection failed:"
    ), errors
    assert "hunter2" not in result.stderr + result.stdout


def test_a_sqlite_file_that_cannot_be_created_names_the_setting(env: dict[str, str], workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'no' / 'such' / 'folder' / 's.db'}"
    result = cli({**env, "SIGNOFF_DATABASE_URL": url}, workdir, "tasks", check=1)
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: the database at SIGNOFF_DATABASE_URL={url} failed: "), line


def test_every_api_scope_is_listed_in_keys_create_help() -> None:
    from bot.cli_keys import SCOPES
    from engine.clients import Scope

    assert tuple(s.value for s in Scope) == SCOPES
    out = subprocess.run(
        [SIGNOFF, "keys", "create", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert all(s in out for s in SCOPES), out


def test_show_json_is_whole_json(env: dict[str, str], workdir: Path) -> None:
    run_id, _ = _start(env, workdir)
    shown = json.loads(cli(env, workdir, "show", run_id, "--json").stdout)
    [prepare] = [s for s in shown["steps"] if s["node_id"] == "prepare"]
    assert prepare["output"]["data"]["note"] == LONG


def test_the_first_make_run_says_what_it_sets_up() -> None:
    repo = Path(__file__).resolve().parents[2]
    # -n prints what `make install` would run; -B as if nothing had been set up yet
    plan = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "install"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    said = [line for line in plan.splitlines() if line.startswith("echo ")]
    assert len(said) >= 3, plan
    assert any("a few minutes the first time" in line for line in said), plan
    [install] = [line for line in plan.splitlines() if "pip install" in line and "-e" in line]
    assert "--quiet" not in install, install  # pip lists each package as it goes
    assert "--progress-bar on" in install, install


def test_keys_and_people_tables_keep_their_ids_whole(env: dict[str, str], workdir: Path) -> None:
    key = cli_json(
        env, workdir, "keys", "create", "--name", "a-long-agent-name", "--scopes", "checkpoints:read"
    )
    cli(env, workdir, "people", "link", "email:ann.long-name@corp.example", "U024BE7LH")
    [person] = cli_json(env, workdir, "people", "list")
    for args, wanted in ((["keys", "list"], key["id"]), (["people", "list"], person["id"])):
        out = cli(env, workdir, *args).stdout
        table = [line for line in out.splitlines() if line[:1] in set("┏┃┡│└")]
        assert max(len(line) for line in table) <= 80, out
        assert wanted in out, out
