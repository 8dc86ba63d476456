"""Workflow versions end to end, with real ``signoff`` processes on SQLite and PostgreSQL:

* publish -> diff -> rollback through the CLI, with a run started on one version finishing on it
  after the file has moved on twice;
* a file edited while ``signoff serve`` runs becomes the served version without a restart; an
  invalid edit keeps the old version serving and is reported on the console page with file,
  line and reason; the console's diff page shows the change escaped.
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.e2e._console import forms_of
from tests.e2e._process import cli, cli_json, env_for, free_port, kill, start_server, wait_healthy

V1 = """\
id: pay
title: Pay a supplier
inputs: {type: object, properties: {amount: {type: number}}, required: [amount]}
nodes:
  - id: approve
    type: human
    prompt: "Pay {{ inputs.amount }}?"
    assignee: user:bob
    options: [approve, reject]
  - id: book
    type: set
    data: {ledger: "main"}
edges:
  - {from: approve, to: book, when: "response.action == 'approve'"}
"""

V2 = (
    V1.replace('version: "2"\n', "")
    .replace("title: Pay a supplier\n", 'title: Pay a supplier\nversion: "2026-12 ledger"\n')
    .replace('{ledger: "main"}', '{ledger: "suppliers"}')
)


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        body: bytes = response.read()
        return body.decode()


def _start_in_console(port: int, workflow_id: str, **values: str) -> str:
    """Submit the workflow page's start form as a browser does; returns the new run's id."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    base = f"http://127.0.0.1:{port}"
    with opener.open(f"{base}/workflows/{workflow_id}", timeout=10) as response:
        page = response.read().decode()
    [form] = [f for f in forms_of(page) if f.action == f"/workflows/{workflow_id}/runs"]
    # the console names input fields "f:<field>"
    body = urllib.parse.urlencode({**form.hidden, **{f"f:{k}": v for k, v in values.items()}}).encode()
    with opener.open(
        urllib.request.Request(f"http://127.0.0.1:{port}{form.action}", data=body, method="POST"), timeout=30
    ) as done:
        landed = str(done.url)
    assert "/runs/" in landed, landed
    return landed.rsplit("/runs/", 1)[1].split("?")[0]


def _edit(path: Path, text: str) -> None:
    """Write ``text`` with a modification time that is surely newer than the last one."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    stamp = max(path.stat().st_mtime_ns, before + 1_000_000_000)
    os.utime(path, ns=(stamp, stamp))


def _until(check: Callable[[], str | None], what: str, timeout: float = 60.0) -> str:
    """Poll ``check`` until it returns a page (not None); fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: str | None = None
    while time.monotonic() < deadline:
        last = check()
        if last is not None:
            return last
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def _workdir(tmp_path: Path) -> Path:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "pay.yml").write_text(V1, encoding="utf-8")
    (tmp_path / "roles.yml").write_text("", encoding="utf-8")
    return tmp_path


def test_publish_diff_rollback_round_trip_and_runs_stay_pinned(database_url: str, tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    env = env_for(database_url, work, free_port())
    [v1] = cli_json(env, work, "workflows", "versions", "pay")
    assert (v1["version"], v1["note"], v1["current"]) == (1, "file", True)

    started = cli_json(env, work, "run", "pay", "--input", "amount=10", "--as", "rita")
    assert (started["status"], started["version"]) == ("waiting", v1["content_hash"])

    draft = tmp_path / "drafts" / "pay.yml"
    draft.parent.mkdir()
    draft.write_text(V2, encoding="utf-8")
    published = cli(env, work, "workflows", "publish", str(draft))
    assert "pay: published version 2" in published.stdout
    assert (work / "workflows" / "pay.yml").read_text(encoding="utf-8") == V2
    versions = cli_json(env, work, "workflows", "versions", "pay")
    assert [(v["version"], v["label"], v["note"], v["current"]) for v in versions] == [
        (1, "", "file", False),
        (2, "2026-12 ledger", "publish", True),
    ]

    diff = cli(env, work, "workflows", "diff", "pay", "1", "2").stdout.splitlines()
    assert diff[0] == f"--- pay v1 ({v1['content_hash'][:12]})"
    assert diff[1] == f"+++ pay v2 ({versions[1]['content_hash'][:12]})"
    assert '-    data: {ledger: "main"}' in diff
    assert '+    data: {ledger: "suppliers"}' in diff
    assert '+version: "2026-12 ledger"' in diff

    rolled = cli(env, work, "workflows", "rollback", "pay", "v1")
    assert "version 3" in rolled.stdout
    assert (work / "workflows" / "pay.yml").read_text(encoding="utf-8") == V1
    versions = cli_json(env, work, "workflows", "versions", "pay")
    assert [(v["version"], v["note"], v["current"]) for v in versions] == [
        (1, "file", False),
        (2, "publish", False),
        (3, "rollback to v1", True),
    ]
    assert versions[2]["content_hash"] == v1["content_hash"]
    exported = cli(env, work, "audit", "export").stdout.splitlines()
    audited = [e for e in map(json.loads, exported) if e["kind"] == "workflow.published"]
    assert [(e["payload"]["version"], e["payload"]["note"]) for e in audited] == [
        (2, "publish"),
        (3, "rollback to v1"),
    ]
    cli(env, work, "audit", "verify")
    same = cli(env, work, "workflows", "diff", "pay", "1", "3")
    assert "v1 and v3 of pay have the same source" in same.stdout
    back = cli(env, work, "workflows", "diff", "pay", "2", "3").stdout.splitlines()
    assert '+    data: {ledger: "main"}' in back

    # the run started on v1 finishes on v1; one started on v2 would have booked to "suppliers"
    [task] = cli_json(env, work, "tasks")
    cli(env, work, "respond", task["id"], "approve", "--as", "bob")
    shown = cli_json(env, work, "show", started["id"])
    assert shown["status"] == "succeeded"
    assert shown["version"] == v1["content_hash"]
    [book] = [s for s in shown["steps"] if s["node_id"] == "book"]
    assert book["output"]["data"] == {"ledger": "main"}

    # bad input: a file with problems is refused with file and line; an unknown version is named
    broken = tmp_path / "drafts" / "broken.yml"
    broken.write_text(V1.replace("type: set", "type: sett"), encoding="utf-8")
    refused = cli(env, work, "workflows", "publish", str(broken), check=2)
    assert f"{broken}:11: node 'book'" in refused.stderr
    missing = cli(env, work, "workflows", "rollback", "pay", "9", check=2)
    assert "no version 9: pay has versions 1 to 3" in missing.stderr
    unknown = cli(env, work, "workflows", "versions", "pya", check=2)
    assert "did you mean pay?" in unknown.stderr
    assert len(cli_json(env, work, "workflows", "versions", "pay")) == 3


def test_a_file_edited_while_serving_becomes_a_version_without_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    work = _workdir(tmp_path)
    port = free_port()
    env = env_for(database_url, work, port, SIGNOFF_WORKFLOWS_RELOAD="0.2")
    file = work / "workflows" / "pay.yml"
    server = start_server(env, work)
    try:
        wait_healthy(port, server)
        page = _get(port, "/workflows/pay")
        assert "version v1 <code>" in page
        assert "file watcher" not in page

        marked = V2.replace("title: Pay a supplier\n", "title: Pay <script>alert(1)</script>\n")
        _edit(file, marked)
        page = _until(
            lambda: p if "version v2 <code>" in (p := _get(port, "/workflows/pay")) else None,
            "the edited file serves as v2",
        )
        assert "file watcher" in page
        assert "Pay &lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<script>alert(1)" not in page
        assert "(2026-12 ledger)" in page
        assert 'href="/workflows/pay/diff?from=1&amp;to=2"' in page

        diff = _get(port, "/workflows/pay/diff?from=1&to=2")
        assert '<span class="diff-del">-    data: {ledger: &#34;main&#34;}</span>' in diff
        assert '<span class="diff-add">+title: Pay &lt;script&gt;alert(1)&lt;/script&gt;</span>' in diff
        assert "<script>alert(1)" not in diff

        # an invalid edit: reported with file, line and reason; v2 keeps serving
        _edit(file, marked.replace("type: set", "type: sett"))
        page = _until(
            lambda: p if 'id="file-problems"' in (p := _get(port, "/workflows/pay")) else None,
            "the invalid edit is reported on the workflow page",
        )
        problem = html.unescape(page)
        assert f"{file}:12: node 'book': field 'type': unknown node type 'sett'" in problem, problem
        assert "version v2 <code>" in page
        assert "version 2 keeps serving" in page
        assert f"{file}:12" in html.unescape(_get(port, "/"))
        versions = cli_json(env, work, "workflows", "versions", "pay")
        assert [v["version"] for v in versions] == [1, 2]
        # a run started on the server now starts on v2, the last valid version
        run_id = _start_in_console(port, "pay", amount="5")
        assert cli_json(env, work, "show", run_id)["version"] == versions[1]["content_hash"]

        _edit(file, V1)
        page = _until(
            lambda: p if "version v3 <code>" in (p := _get(port, "/workflows/pay")) else None,
            "the repaired file serves as v3",
        )
        assert 'id="file-problems"' not in page
    finally:
        kill(server)
