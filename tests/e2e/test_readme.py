"""The README's "Ask a human from your agent" example, run as written against ``signoff serve``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e._process import cli, cli_json, env_for, free_port, kill, start_server, wait_healthy

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    """The Python block that follows the ``readme-example`` marker."""
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- readme-example:[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert found, "README.md lost its readme-example block"
    return found.group(1)


def test_the_readme_example_asks_and_gets_the_typed_decision(tmp_path: Path) -> None:
    code = readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 10, "the example stays at 10 lines"
    (tmp_path / "workflows").mkdir()
    (tmp_path / "roles.yml").write_text("approvers:\n  members: [user:alice]\n", encoding="utf-8")
    (tmp_path / "example.py").write_text(code, encoding="utf-8")
    port = free_port()
    env = env_for(f"sqlite:///{tmp_path / 's.db'}", tmp_path, port)
    made = cli_json(
        env,
        tmp_path,
        "keys",
        "create",
        "--name",
        "my-agent",
        "--scopes",
        "checkpoints:create,checkpoints:read",
    )
    server = start_server(env, tmp_path)
    try:
        wait_healthy(port, server)
        agent_env = {**os.environ, "SIGNOFF_URL": f"http://127.0.0.1:{port}", "SIGNOFF_API_KEY": made["key"]}
        agent = subprocess.Popen(
            [sys.executable, str(tmp_path / "example.py")], env=agent_env, stdout=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while not (tasks := cli_json(env, tmp_path, "tasks")):
                assert agent.poll() is None, "the example exited before anyone decided"
                assert time.monotonic() < deadline, "the example opened no checkpoint"
                time.sleep(0.2)
            [task] = tasks
            assert (task["prompt"], task["assignees"]) == ("Deploy 42?", ["user:alice"])
            cli(env, tmp_path, "respond", task["id"], "approve", "--as", "alice")
            out, _ = agent.communicate(timeout=60)
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
        assert agent.returncode == 0
        assert out.strip() == "approved id='alice' name=None build=42"
    finally:
        kill(server)


def readme_cli_session() -> str:
    """The bash block that follows the ``readme-cli`` marker."""
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- readme-cli:[^>]*-->\n```bash\n(.*?)```", text, re.S)
    assert found, "README.md lost its readme-cli block"
    return found.group(1)


def test_the_readme_cli_session_runs_as_written(tmp_path: Path) -> None:
    repo = README.parent
    session = readme_cli_session()
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", session), "no fixed dates: they pass"
    assert "..." not in session, "no placeholders: every line runs as written"
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    (tmp_path / "skills").symlink_to(repo / "skills")
    shutil.copytree(repo / "workflows", tmp_path / "workflows")
    shutil.copy(repo / "roles.yml", tmp_path / "roles.yml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "SIGNOFF_"))}
    if "SIGNOFF_SANDBOX" in os.environ:  # .sandbox-env: how this machine sandboxes skill nodes
        env["SIGNOFF_SANDBOX"] = os.environ["SIGNOFF_SANDBOX"]
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-x", "-c", session],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = result.stdout
    assert "ok workflows/refund.yml" in out
    assert "edit recorded; run run_" in out
    assert "is succeeded" in out
    assert "reject recorded; run run_" in out  # the refund's reject edge tells the requester
    assert "cancelled" in out
    assert "dave decides for fiona until" in out
    assert "chain intact" in out
    final = cli_json(env_for(f"sqlite:///{tmp_path / 'signoff.db'}", tmp_path, free_port()), tmp_path, "runs")
    assert [(r["inputs"]["customer"], r["status"]) for r in final] == [
        ("Globex", "cancelled"),
        ("Initech", "succeeded"),
        ("ACME", "waiting"),  # the rerun, asking the manager again
        ("ACME", "succeeded"),
    ]
    rejected = final[1]
    shown = cli_json(
        env_for(f"sqlite:///{tmp_path / 'signoff.db'}", tmp_path, free_port()),
        tmp_path,
        "show",
        rejected["id"],
    )
    assert [d["comment"] for d in shown["decisions"]] == ["paid twice"]
