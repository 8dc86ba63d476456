"""Podman from the tests: the options .ci/sandbox-setup.sh and deploy/build-image.sh use here."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
from pathlib import Path

__all__ = ["environment", "podman", "remove", "start"]

_OPTIONS = ["--runtime=runc", "--storage-driver=vfs", "--cgroup-manager=cgroupfs"]


def environment() -> dict[str, str]:
    """The process environment, with a containers.conf without default ulimits (refused here)."""
    env = dict(os.environ)
    if not env.get("CONTAINERS_CONF"):
        conf = Path(tempfile.gettempdir()) / "signoff-test-containers.conf"
        conf.write_text("[containers]\ndefault_ulimits = []\n")
        env["CONTAINERS_CONF"] = str(conf)
    return env


def argv(*args: str) -> list[str]:
    """A podman command line."""
    return ["podman", *_OPTIONS, *args]


async def podman(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a podman command to its end, off the event loop (fakes answer from this loop)."""
    return await asyncio.to_thread(
        subprocess.run,
        argv(*args),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``podman run ARGS`` in the background, its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(argv("run", *args), env=environment(), stdout=out, stderr=subprocess.STDOUT)


def remove(name: str) -> None:
    """Remove a container this test started, whatever its state."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            argv("rm", "--force", "--time", "0", name),
            env=environment(),
            capture_output=True,
            timeout=120,
            check=False,
        )
