"""``signoff pause|resume|cancel``: operator controls from the command line, each its own process
on one database, as operators on different machines would use them."""

from __future__ import annotations

from pathlib import Path

from tests.e2e._process import cli, cli_json, env_for, free_port

SHIP = """\
id: ship
title: Ship an order
nodes:
  - id: pack
    type: set
    data: {box: 3}
  - id: check
    type: human
    prompt: Ship the order?
    assignee: user:bob
    options: [approve, reject]
  - id: send
    type: set
    data: {sent: true}
edges:
  - {from: pack, to: check}
  - {from: check, to: send, when: "response.action == 'approve'"}
"""


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "ship.yml").write_text(SHIP, encoding="utf-8")
    return env_for(f"sqlite:///{tmp_path / 's.db'}", tmp_path, free_port())


def test_pause_keeps_a_decided_run_from_advancing_until_resumed(tmp_path: Path) -> None:
    env = _env(tmp_path)
    run = cli_json(env, tmp_path, "run", "ship", "--as", "rita")
    assert run["status"] == "waiting"
    refused = cli(env, tmp_path, "pause", run["id"], "--as", "mallory", check=2)
    assert "only the person who started this run, or an admin, can pause it" in refused.stderr
    paused = cli(env, tmp_path, "pause", run["id"], "--as", "rita", "--reason", "customer called")
    assert f"run {run['id']} paused" in paused.stdout
    again = cli(env, tmp_path, "pause", run["id"], "--as", "rita", check=2)
    assert "is paused by rita" in again.stderr
    # a wide terminal: at 80 columns the status column folds "waiting (paused)" over lines
    assert "(paused)" in cli({**env, "COLUMNS": "200"}, tmp_path, "runs").stdout
    assert [r["paused_by"] for r in cli_json(env, tmp_path, "runs")] == ["rita"]

    [task] = cli_json(env, tmp_path, "tasks")
    decided = cli(env, tmp_path, "respond", task["id"], "approve", "--as", "bob")
    assert decided.returncode == 0
    shown = cli_json(env, tmp_path, "show", run["id"])
    assert shown["paused_by"] == "rita"
    assert shown["status"] != "succeeded"
    assert [s["node_id"] for s in shown["steps"]] == ["pack", "check"], "decided, but send did not run"
    assert "paused by rita" in cli(env, tmp_path, "show", run["id"]).stdout

    resumed = cli(env, tmp_path, "resume", run["id"], "--as", "rita")
    assert f"run {run['id']} resumed" in resumed.stdout
    assert "succeeded" in resumed.stdout
    final = cli_json(env, tmp_path, "show", run["id"])
    assert final["status"] == "succeeded"
    assert final["paused_by"] is None
    assert [s["node_id"] for s in final["steps"]] == ["pack", "check", "send"]
    trail = cli(env, tmp_path, "audit", "export", "--run", run["id"]).stdout
    assert "run.paused" in trail
    assert "run.resumed" in trail
    ended = cli(env, tmp_path, "resume", run["id"], "--as", "rita", check=2)
    assert "already ended (succeeded)" in ended.stderr


def test_cancel_a_paused_run(tmp_path: Path) -> None:
    env = _env(tmp_path)
    run = cli_json(env, tmp_path, "run", "ship", "--as", "rita")
    cli(env, tmp_path, "pause", run["id"], "--as", "rita")
    cli(env, tmp_path, "cancel", run["id"], "--as", "rita")
    assert cli_json(env, tmp_path, "show", run["id"])["status"] == "cancelled"


BROKEN_SEND = """\
id: ship
title: Ship an order
nodes:
  - id: pack
    type: set
    data: {box: 3}
  - id: check
    type: human
    prompt: Ship the order?
    assignee: user:bob
    options: [approve, reject]
  - id: send
    type: set
    data: {label: "{{ nodes.pack.data.box.weight }}"}
edges:
  - {from: pack, to: check}
  - {from: check, to: send, when: "response.action == 'approve'"}
"""


def test_rerun_from_the_failed_node_reuses_the_decision_and_asks_nobody(tmp_path: Path) -> None:
    env = _env(tmp_path)
    workflow = tmp_path / "workflows" / "ship.yml"
    workflow.write_text(BROKEN_SEND, encoding="utf-8")
    run = cli_json(env, tmp_path, "run", "ship", "--as", "rita")
    [task] = cli_json(env, tmp_path, "tasks")
    cli(env, tmp_path, "respond", task["id"], "approve", "--as", "bob", check=None)
    failed = cli_json(env, tmp_path, "show", run["id"])
    assert failed["status"] == "failed"
    assert "node 'send' failed" in failed["reason"]

    refused = cli(env, tmp_path, "rerun", run["id"], "--as", "mallory", check=2)
    assert "can rerun it" in refused.stderr
    unknown = cli(env, tmp_path, "rerun", run["id"], "--from", "label", "--as", "rita", check=2)
    assert "node 'label' is not in workflow 'ship'" in unknown.stderr
    assert "from: use one of: pack, check, send" in unknown.stderr

    # pinned to the original version: the same broken node fails again
    again = cli(env, tmp_path, "rerun", run["id"], "--as", "rita", check=1)
    assert f"a rerun of {run['id']} from send" in again.stdout
    assert "reused: pack, check" in again.stdout

    workflow.write_text(SHIP, encoding="utf-8")
    fixed = cli_json(env, tmp_path, "rerun", run["id"], "--from", "send", "--latest", "--as", "rita")
    assert fixed["status"] == "succeeded"
    assert fixed["rerun_of"] == run["id"]
    assert [s["node_id"] for s in fixed["steps"]] == ["pack", "check", "send"]
    assert fixed["decisions"] == [], "the decision was reused, not asked for again"
    assert cli_json(env, tmp_path, "tasks") == [], "nobody was asked again"

    original = cli_json(env, tmp_path, "show", run["id"])
    assert len(original["reruns"]) == 2
    assert original["reruns"][-1] == fixed["id"]
    assert f"rerun of {run['id']} from send" in cli(env, tmp_path, "show", fixed["id"]).stdout
    trail = cli(env, tmp_path, "audit", "export", "--run", run["id"]).stdout
    assert '"run.rerun"' in trail
    assert fixed["id"] in trail
