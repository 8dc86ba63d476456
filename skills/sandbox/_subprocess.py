"""Plain subprocess backend (rlimits only, unsafe) and the limited-process runner bwrap reuses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError, SkillFailed
from engine.ports import SandboxLimits, SandboxRequest, SandboxResult
from skills.sandbox import _common, _quota

_CHUNK = 1 << 16
# After the command exits, a stray descendant may still hold the pipes open; stop reading then.
_DRAIN_GRACE_S = 1.0


@dataclass(frozen=True)
class Outcome:
    """What happened to a limited process on the host."""

    exit_code: int
    cap: _common.OutputCap
    killed: _common.KillReason
    duration_s: float


async def outcome_result(
    out: Outcome, request: SandboxRequest, workspace: Path, before: dict[str, _common.Fingerprint]
) -> SandboxResult:
    """The result of a host-run command: its outcome plus the files it left in the workspace."""
    return _common.result(
        exit_code=out.exit_code,
        cap=out.cap,
        killed=out.killed,
        limits=request.limits,
        duration_s=out.duration_s,
        files=await asyncio.to_thread(_common.artifacts, workspace, before),
    )


def find_prlimit() -> str:
    """The path of util-linux ``prlimit``. Raises EngineError when it is missing."""
    path = shutil.which("prlimit", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if path is None:
        raise EngineError("the sandbox needs `prlimit` (apt-get install util-linux)")
    return path


def argv_of(command: str | list[str]) -> list[str]:
    """A request's command as an argv: a string runs under ``/bin/sh -c``."""
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    if not command:
        raise SkillFailed("sandbox command is empty")
    return list(command)


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Tells the moment the process exits, even while a descendant still holds its pipes.

    ``Process.wait()`` also waits for the pipes to close, which a leftover grandchild can
    postpone forever.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=_CHUNK, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


async def _pump(stream: asyncio.StreamReader, name: str, cap: _common.OutputCap, over: asyncio.Event) -> None:
    # Keep draining after the cap: a full pipe buffer would hide the end of the stream.
    while chunk := await stream.read(_CHUNK):
        if not cap.add(name, chunk):
            over.set()


async def _feed(proc: asyncio.subprocess.Process, data: str | None) -> None:
    if proc.stdin is None:
        return
    # The command may exit or close stdin without reading it; that is not our error.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            proc.stdin.write(data.encode("utf-8"))
            await proc.stdin.drain()
        proc.stdin.close()


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run_limited(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    stdin: str | None,
    limits: SandboxLimits,
    workspace: Path,
    uid: int | None = None,
    pass_fds: tuple[int, ...] = (),
) -> Outcome:
    """Run ``argv`` in a new session, enforce wall time and the output cap, capture output.

    Args:
        argv: the full argv, rlimit wrapper included.
        env: the complete environment of the child.
        cwd: its working directory on the host.
        stdin: text delivered on stdin, then closed.
        limits: wall time, output cap and workspace size are enforced here; the rest by the
            argv's wrapper.
        workspace: the step's workspace on the host, whose total size is watched.
        uid: run as this uid and gid with no supplementary groups (root only), or None.
        pass_fds: descriptors the child inherits (e.g. bwrap's seccomp program).
    """
    cap = _common.OutputCap(limits.max_output_bytes)
    over = asyncio.Event()
    ids = {"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    transport, protocol = await loop.subprocess_exec(
        lambda: _Protocol(loop),
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
        close_fds=True,
        pass_fds=pass_fds,
        **ids,  # type: ignore[arg-type]  # typeshed's overloads do not spell out user/group
    )
    proc = asyncio.subprocess.Process(transport, protocol, loop)
    # PIPE was requested for both, so neither is None; the asserts narrow the types.
    assert proc.stdout is not None
    assert proc.stderr is not None
    pumps = [
        asyncio.create_task(_pump(proc.stdout, "stdout", cap, over)),
        asyncio.create_task(_pump(proc.stderr, "stderr", cap, over)),
    ]
    feeder = asyncio.create_task(_feed(proc, stdin))
    waiter = asyncio.create_task(protocol.exited.wait())
    capped = asyncio.create_task(over.wait())
    full = asyncio.create_task(_quota.watch(workspace, limits.max_workspace_bytes))
    killed: _common.KillReason = None
    try:
        done, _ = await asyncio.wait(
            {waiter, capped, full}, timeout=limits.wall_seconds, return_when="FIRST_COMPLETED"
        )
        if waiter not in done:
            killed = "output" if capped in done else "workspace" if full in done else "wall_time"
            _kill_group(proc)
        await waiter
    finally:
        _kill_group(proc)  # descendants that outlived the command are not allowed to linger
        capped.cancel()
        full.cancel()
        _, pending = await asyncio.wait([*pumps, feeder], timeout=_DRAIN_GRACE_S)
        for task in pending:
            task.cancel()
        waiter.cancel()
        code = transport.get_returncode()
        transport.close()
    code = -signal.SIGKILL if code is None else code
    if killed is None and await _quota.over(workspace, limits.max_workspace_bytes):
        killed = "workspace"  # filled between two scans, then exited
    return Outcome(
        exit_code=128 - code if code < 0 else code,
        cap=cap,
        killed=killed or ("output" if cap.truncated else None),
        duration_s=time.monotonic() - started,
    )


async def reap_uid(uid: int) -> None:
    """Kill every process left running as ``uid`` (e.g. a daemon that left the session).

    ``kill -9 -1`` from a process of that uid reaches exactly the processes of that uid.
    """
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        "kill -9 -1",
        env={"PATH": _common.SANDBOX_PATH},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        user=uid,
        group=uid,
        extra_groups=[],
    )
    await proc.wait()


class SubprocessSandbox:
    """Runs commands as plain host processes with rlimits only: no isolation at all.

    For development machines without bubblewrap or a container engine. Only the environment
    is scrubbed; the command can read whatever the service's user can. ``choose_sandbox``
    refuses it unless ``SIGNOFF_SANDBOX=subprocess`` is set explicitly.
    """

    name = "subprocess"

    def __init__(self, *, uid_pool: _common.UidPool | None = None) -> None:
        """Create the backend.

        Args:
            uid_pool: uids to run commands as when the service runs as root; defaults to a
                private range so that ``max_processes`` is enforced.
        """
        self._prlimit = find_prlimit()
        self._uids = uid_pool or (_common.UidPool(2_100_000, 1000) if os.geteuid() == 0 else None)

    async def run(self, request: SandboxRequest, workspace: Path) -> SandboxResult:
        """Run ``request`` with ``workspace`` as HOME and working directory.

        Raises:
            SkillFailed: a bad file name or command, or a failure to start the process.
        """
        uid = self._uids.take() if self._uids else None
        try:
            before = await asyncio.to_thread(_common.prepare_workspace, request, workspace, uid)
            cwd = Path(request.readonly_dir) if request.cwd_skill and request.readonly_dir else workspace
            argv = _common.prlimit_args(self._prlimit, request.limits) + argv_of(request.command)
            env = _common.base_env(request, str(workspace))
            try:
                out = await run_limited(
                    argv,
                    env=env,
                    cwd=cwd,
                    stdin=request.stdin,
                    limits=request.limits,
                    workspace=workspace,
                    uid=uid,
                )
            except OSError as e:
                raise SkillFailed(f"could not start sandboxed command: {e}") from e
        finally:
            if uid is not None and self._uids:
                await reap_uid(uid)
                self._uids.give(uid)
        return await outcome_result(out, request, workspace, before)
