"""Docker backend (any Docker-compatible engine, e.g. Podman's API) through the docker SDK."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import Ulimit

from engine.errors import EngineError, SkillFailed
from engine.ports import SandboxLimits, SandboxRequest, SandboxResult
from skills.sandbox import _common, _quota
from skills.sandbox._subprocess import argv_of

_STDIN_DIR = "/run/signoff"
_DRAIN_GRACE_S = 2.0
# Podman raises unspecified rlimits to its defaults, which an unprivileged host refuses, so
# every rlimit it touches is given explicitly; pids_limit (a cgroup) is the real process cap.
_NOFILE = 1024
_NPROC = 4096


def _ulimits(limits: SandboxLimits) -> list[Ulimit]:
    cpu = max(1, int(limits.cpu_seconds + 0.999))
    return [
        Ulimit(name="cpu", soft=cpu, hard=cpu + 1),
        Ulimit(name="fsize", soft=_common.file_size_limit(limits), hard=_common.file_size_limit(limits)),
        Ulimit(name="nofile", soft=_NOFILE, hard=_NOFILE),
        Ulimit(name="nproc", soft=_NPROC, hard=_NPROC),
        Ulimit(name="core", soft=0, hard=0),
    ]


class _Pumps:
    """Reads both log streams in threads into one cap; kills the container when it overflows."""

    def __init__(self, container: Container, cap: _common.OutputCap, on_over: Any) -> None:
        self._container = container
        self._cap = cap
        self._on_over = on_over
        self._lock = threading.Lock()
        self._streams: list[Any] = []
        self._closed = False

    def pump(self, stream: str) -> None:
        flags = {"stdout": stream == "stdout", "stderr": stream == "stderr"}
        try:
            logs = self._container.logs(stream=True, follow=True, **flags)
            with self._lock:
                self._streams.append(logs)
                if self._closed:
                    logs.close()
            for chunk in logs:
                with self._lock:
                    ok = self._cap.add(stream, chunk)
                if not ok:
                    with contextlib.suppress(docker.errors.DockerException):
                        self._container.kill()
                    self._on_over()
                    return
        except Exception:  # a stream closed by close() or by the engine ends the pump: never unretrieved
            return

    def close(self) -> None:
        """Close the streams still open: some engines never end a follow on a removed container."""
        with self._lock:
            self._closed = True
            streams = list(self._streams)
        for logs in streams:
            with contextlib.suppress(Exception):
                logs.close()


class DockerSandbox:
    """Runs each command in a fresh container that is removed afterwards.

    The container has no network, a read-only root file system, a private ``/tmp`` (tmpfs), the
    workspace bind-mounted read-write at ``/workspace`` (its HOME and working directory), the
    skill folder read-only at ``/skill``, all capabilities dropped, and memory, CPU, pids and
    rlimits set. The image needs ``/bin/sh`` when a request has stdin or a string command.
    """

    name = "docker"

    def __init__(
        self, image: str, *, client: docker.DockerClient | None = None, user: str | None = None
    ) -> None:
        """Create the backend; no engine call happens here.

        Args:
            image: the image every command runs in; it must already be present.
            client: a docker client; ``docker.from_env()`` (DOCKER_HOST) when omitted.
            user: ``uid:gid`` inside the container; by default nobody (65534) when the
                service runs as root, else the service's own uid so it can share the workspace.
        """
        try:
            self._client = client or docker.from_env(timeout=30)
        except docker.errors.DockerException as e:
            raise EngineError(f"docker sandbox: no engine configured (set DOCKER_HOST): {e}") from e
        self._image = image
        self._user = user or ("65534:65534" if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}")
        self._owner = int(self._user.split(":")[0]) if os.geteuid() == 0 else None

    def ping(self) -> str | None:
        """None when the engine answers and has the image, else why not (blocking; start-up only)."""
        try:
            self._client.ping()
            self._client.images.get(self._image)
        except docker.errors.DockerException as e:
            return str(e)
        return None

    async def run(self, request: SandboxRequest, workspace: Path) -> SandboxResult:
        """Run ``request`` in a new container and remove it afterwards.

        Raises:
            SkillFailed: the engine failed or the image is missing (retryable when the engine
                may recover), or a bad file name.
        """
        before = await asyncio.to_thread(_common.prepare_workspace, request, workspace, self._owner)
        stdin_dir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="signoff-stdin-"))
        try:
            host_ws = await asyncio.to_thread(workspace.resolve)
            cap, code, killed, duration = await self._execute(request, host_ws, stdin_dir)
        except docker.errors.ImageNotFound as e:
            raise SkillFailed(f"docker sandbox image {self._image!r} is not present: {e}") from e
        except docker.errors.DockerException as e:
            raise SkillFailed(f"docker sandbox failed: {e}", retryable=True) from e
        finally:
            shutil.rmtree(stdin_dir, ignore_errors=True)
        return _common.result(
            exit_code=code,
            cap=cap,
            killed=killed,
            limits=request.limits,
            duration_s=duration,
            files=await asyncio.to_thread(_common.artifacts, workspace, before),
        )

    def _create_args(self, request: SandboxRequest, workspace: Path, stdin_dir: Path) -> dict[str, Any]:
        limits = request.limits
        argv = argv_of(request.command)
        volumes = {str(workspace): {"bind": "/workspace", "mode": "rw"}}
        if request.readonly_dir:
            volumes[str(Path(request.readonly_dir).resolve())] = {"bind": "/skill", "mode": "ro"}
        if request.stdin is not None:
            # Attaching stdin is unreliable across engines; a read-only file redirect is not.
            (stdin_dir / "stdin").write_text(request.stdin, encoding="utf-8")
            stdin_dir.chmod(0o755)
            (stdin_dir / "stdin").chmod(0o644)
            volumes[str(stdin_dir)] = {"bind": _STDIN_DIR, "mode": "ro"}
            argv = ["/bin/sh", "-c", f'exec "$@" < {_STDIN_DIR}/stdin', "sh", *argv]
        return {
            "image": self._image,
            "command": argv,
            "detach": True,
            "network_mode": "none",
            "read_only": True,
            # podman ignores mode= here but copies the image's /tmp mode, so images want 1777
            "tmpfs": {"/tmp": "rw,nosuid,nodev,size=64m,mode=1777"},  # noqa: S108  # container's own
            "volumes": volumes,
            "working_dir": "/skill" if request.cwd_skill and request.readonly_dir else "/workspace",
            "environment": _common.base_env(request, "/workspace"),
            "user": self._user,
            "hostname": "sandbox",
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "mem_limit": limits.memory_bytes,
            "memswap_limit": limits.memory_bytes,
            "nano_cpus": 1_000_000_000,
            "pids_limit": limits.max_processes,
            "ulimits": _ulimits(limits),
            "labels": {"signoff.sandbox": "1"},
        }

    async def _execute(
        self, request: SandboxRequest, workspace: Path, stdin_dir: Path
    ) -> tuple[_common.OutputCap, int, _common.KillReason, float]:
        args = await asyncio.to_thread(self._create_args, request, workspace, stdin_dir)
        container: Container = await asyncio.to_thread(self._client.containers.create, **args)
        try:
            return await self._supervise(container, request.limits, workspace)
        finally:
            with contextlib.suppress(docker.errors.DockerException):
                await asyncio.to_thread(container.remove, force=True)

    async def _supervise(
        self, container: Container, limits: SandboxLimits, workspace: Path
    ) -> tuple[_common.OutputCap, int, _common.KillReason, float]:
        loop = asyncio.get_running_loop()
        cap = _common.OutputCap(limits.max_output_bytes)
        over = asyncio.Event()
        pumps = _Pumps(container, cap, lambda: loop.call_soon_threadsafe(over.set))
        started = time.monotonic()
        await asyncio.to_thread(container.start)
        readers = [asyncio.ensure_future(asyncio.to_thread(pumps.pump, s)) for s in ("stdout", "stderr")]
        waiter = asyncio.ensure_future(asyncio.to_thread(container.wait))
        capped = asyncio.ensure_future(over.wait())
        full = asyncio.ensure_future(_quota.watch(workspace, limits.max_workspace_bytes))
        killed: _common.KillReason = None
        try:
            done, _ = await asyncio.wait(
                {waiter, capped, full}, timeout=limits.wall_seconds, return_when="FIRST_COMPLETED"
            )
            if waiter not in done:
                killed = "output" if capped in done else "workspace" if full in done else "wall_time"
                with contextlib.suppress(docker.errors.DockerException):
                    await asyncio.to_thread(container.kill)
            status = await waiter
        finally:
            capped.cancel()
            full.cancel()
            _, stuck = await asyncio.wait(readers, timeout=_DRAIN_GRACE_S)
            if stuck:
                await asyncio.to_thread(pumps.close)
                await asyncio.wait(stuck)
        duration = time.monotonic() - started
        code = int(status.get("StatusCode", -1))
        if killed is None and cap.truncated:
            killed = "output"
        if killed is None and await _quota.over(workspace, limits.max_workspace_bytes):
            killed = "workspace"  # filled between two scans, then exited
        if killed is None:
            await asyncio.to_thread(container.reload)
            if container.attrs.get("State", {}).get("OOMKilled"):
                killed = "memory"
        return cap, code, killed, duration
