"""``signoff serve`` as a real process: /healthz, and a SIGKILL while a run waits loses nothing."""

from __future__ import annotations

import collections
import subprocess
from pathlib import Path

import pytest

from tests.e2e._process import SIGNOFF, cli, cli_json, env_for, free_port, kill, start_server, wait_healthy

WORKFLOW = """\
id: pay
inputs: {type: object, properties: {amount: {type: number}}, required: [amount]}
nodes:
  - id: prepare
    type: set
    data: {amount: "{{ inputs.amount }}"}
  - id: approve
    type: human
    prompt: "Pay {{ inputs.amount }}?"
    assignee: user:bob
    options: [approve, reject]
  - id: book
    type: set
    data: {booked: true}
  - id: tell
    type: notify
    text: "paid {{ inputs.amount }}"
edges:
  - {from: prepare, to: approve}
  - {from: approve, to: book, when: "response.action == 'approve'"}
  - {from: book, to: tell}
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "pay.yml").write_text(WORKFLOW, encoding="utf-8")
    (tmp_path / "roles.yml").write_text("", encoding="utf-8")
    return tmp_path


def test_kill_while_waiting_then_respond(database_url: str, workdir: Path) -> None:
    port = free_port()
    env = env_for(database_url, workdir, port)
    server = start_server(env, workdir)
    try:
        assert wait_healthy(port, server)["ok"] is True
        started = cli_json(env, workdir, "run", "pay", "--input", "amount=42", "--as", "alice")
        assert started["status"] == "waiting"
        [task] = cli_json(env, workdir, "tasks")
        assert task["run_id"] == started["id"]
    finally:
        kill(server)  # SIGKILL: no shutdown code runs
    server = start_server(env, workdir)
    try:
        wait_healthy(port, server)
        cli(env, workdir, "respond", task["id"], "approve", "--as", "bob")
        shown = cli_json(env, workdir, "show", started["id"])
        assert shown["status"] == "succeeded"
        ran = collections.Counter(step["node_id"] for step in shown["steps"])
        assert ran == {"prepare": 1, "approve": 1, "book": 1, "tell": 1}
        assert [d["action"] for d in shown["decisions"]] == ["approve"]
        again = cli(env, workdir, "respond", task["id"], "reject", "--as", "bob", "--reason", "late", check=2)
        assert "already approved by bob" in again.stderr
    finally:
        kill(server)


def test_make_run_answers_healthz(tmp_path: Path, workdir: Path) -> None:
    port = free_port()
    repo = Path(__file__).resolve().parents[2]
    env = env_for(f"sqlite:///{tmp_path / 'make.db'}", workdir, port)
    server = start_server(env, repo, ["make", "--no-print-directory", "run"])
    try:
        assert wait_healthy(port, server, timeout=300)["ok"] is True
    finally:
        kill(server)


def test_half_configured_slack_refuses_to_start(workdir: Path, tmp_path: Path) -> None:
    env = env_for(f"sqlite:///{tmp_path / 'x.db'}", workdir, free_port(), SLACK_BOT_TOKEN="xoxb-test")
    result = subprocess.run(
        [SIGNOFF, "serve"], env=env, cwd=workdir, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET is not" in result.stderr
