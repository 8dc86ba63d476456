"""Helpers to run ``signoff`` as real processes: the server and the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SIGNOFF = str(Path(sys.executable).parent / "signoff")


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def env_for(database_url: str, workdir: Path, port: int, **extra: str) -> dict[str, str]:
    """Environment of a Signoff process working in ``workdir`` (no Slack, no LLM)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "SIGNOFF_"))}
    env.update(
        SIGNOFF_DATABASE_URL=database_url,
        SIGNOFF_PORT=str(port),
        SIGNOFF_WORKFLOWS_DIR=str(workdir / "workflows"),
        SIGNOFF_SKILLS_DIR=str(workdir / "no-skills"),
        SIGNOFF_ROLES_FILE=str(workdir / "roles.yml"),
        SIGNOFF_SANDBOX="auto",
    )
    env.update(extra)
    return env


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> dict[str, Any]:
    """Poll /healthz until it answers 200; fail if the process exits first."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/healthz"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"server exited with {proc.returncode}:\n{out}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    body: dict[str, Any] = json.loads(response.read())
                    return body
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def start_server(
    env: dict[str, str], cwd: Path, argv: Sequence[str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``signoff serve`` (or ``argv``) in its own process group."""
    return subprocess.Popen(
        list(argv or [SIGNOFF, "serve"]),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the whole process group and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(timeout=30)
    if proc.stdout:
        proc.stdout.close()


def cli(
    env: dict[str, str], cwd: Path, *args: str, check: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """Run ``signoff ARGS``; assert the exit code when ``check`` is not None."""
    result = subprocess.run(
        [SIGNOFF, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if check is not None:
        assert result.returncode == check, (
            f"signoff {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def cli_json(env: dict[str, str], cwd: Path, *args: str) -> Any:
    """Run a ``--json`` command and parse its output."""
    return json.loads(cli(env, cwd, *args, "--json").stdout)
