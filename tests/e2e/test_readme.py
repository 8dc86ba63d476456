"""The README's "Ask a human from your agent" example, run as written against ``signoff serve``."""

from __future__ import annotations

import os
import re
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
