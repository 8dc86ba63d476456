"""Bubblewrap backend: namespaces, no network, read-only system dirs, one workspace, rlimits."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from engine.errors import EngineError, SkillFailed
from engine.ports import SandboxRequest, SandboxResult
from skills.sandbox import _common, _seccomp
from skills.sandbox._subprocess import Outcome, argv_of, find_prlimit, outcome_result, run_limited

# System paths made visible read-only. Everything else on the host (home directories, /work,
# /var, /srv, the rest of /etc with its secrets and configuration) does not exist inside.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_GLOBS = (
    "/etc/alternatives",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/ssl",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/python3*",
)
# bwrap keeps a monitor process and an init process in the sandbox's pid namespace.
_BWRAP_OWN_PROCESSES = 2
_SETPRIV = "/usr/bin/setpriv"
_TMP_BYTES = 64 * 1024 * 1024
# What setpriv needs to drop to the command's uid; it clears all of them before the exec.
_SETPRIV_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_DAC_READ_SEARCH")


def _system_mounts() -> list[str]:
    args: list[str] = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for pattern in _ETC_GLOBS:
        for path in sorted(glob.glob(pattern)):
            args += ["--ro-bind", path, path]
    return args


def bwrap_argv(
    bwrap: str, request: SandboxRequest, workspace: Path, uid: int | None, seccomp_fd: int | None = None
) -> list[str]:
    """The bwrap command line (without the rlimit wrapper) for ``request``.

    With ``uid`` (the service runs as root) bwrap runs as root without a user namespace, so
    that it may mount a workspace whose host path only root can walk, and ``setpriv`` drops
    to ``uid`` with no capabilities before the command starts. RLIMIT_NPROC then counts that
    uid's processes only. Without ``uid`` bwrap runs unprivileged in a user namespace. With
    ``seccomp_fd`` bwrap loads the BPF program it reads there before it starts the command.
    """
    has_skill = request.readonly_dir is not None
    args = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if uid is None:
        # no nested user namespaces: they widen the kernel surface the command can reach
        args += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    else:
        args += ["--cap-drop", "ALL", *(x for cap in _SETPRIV_CAPS for x in ("--cap-add", cap))]
    args += [
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
        *_system_mounts(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",  # bwrap may run as root, and the command's uid must be able to use /tmp
        "--size",
        str(_TMP_BYTES),
        "--tmpfs",
        "/tmp",  # noqa: S108  # a private tmpfs inside the sandbox, not the host's /tmp
        "--bind",
        str(workspace.resolve()),
        "/workspace",
    ]
    if has_skill:
        args += ["--ro-bind", str(Path(str(request.readonly_dir)).resolve(strict=True)), "/skill"]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    args += [
        "--remount-ro",
        "/",
        "--chdir",
        "/skill" if request.cwd_skill and has_skill else "/workspace",
        "--",
    ]
    if uid is not None:
        args += [_SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        args += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return [*args, *argv_of(request.command)]


class BwrapSandbox:
    """Runs each command under bubblewrap.

    The command sees read-only system directories, a private ``/tmp``, its workspace at
    ``/workspace`` (also its HOME and working directory), the skill folder read-only at
    ``/skill``, no network and no host environment. Limits: rlimits for CPU time, address
    space, processes and file size; wall time and the output cap from the parent. When the
    service runs as root each command runs as its own unprivileged uid (see UidPool).
    """

    name = "bwrap"

    def __init__(
        self, *, bwrap: str | None = None, uid_pool: _common.UidPool | None = None, seccomp: bool = True
    ) -> None:
        """Create the backend.

        Args:
            bwrap: path of the bwrap binary; found on PATH when omitted.
            uid_pool: uids to run commands as when the service runs as root; by default
                2_000_000 .. 2_000_999, which no login user has.
            seccomp: install the seccomp filter (``_seccomp.DENIED``) in every sandbox. When
                it cannot be built this fails: the sandbox never runs without it silently.

        Raises:
            EngineError: bubblewrap or prlimit is not installed, or the seccomp filter cannot
                be built (libseccomp or pyseccomp missing).
        """
        found = bwrap or shutil.which("bwrap")
        if found is None:
            raise EngineError("the bwrap sandbox needs bubblewrap (apt-get install bubblewrap)")
        if os.geteuid() == 0 and not os.access(_SETPRIV, os.X_OK):
            raise EngineError("the bwrap sandbox needs setpriv when run as root (apt-get install util-linux)")
        self._bwrap = found
        self._prlimit = find_prlimit()
        self._seccomp = _seccomp.build_filter() if seccomp else None
        self._uids = uid_pool or (_common.UidPool(2_000_000, 1000) if os.geteuid() == 0 else None)

    def probe(self) -> str | None:
        """Try a trivial sandbox once; None when it works, else bwrap's complaint.

        Blocking: meant for start-up (``choose_sandbox``), not for the request path.
        """
        uid = self._uids.take() if self._uids else None
        fds = self._filter_fds()
        try:
            with tempfile.TemporaryDirectory(prefix="signoff-probe-") as tmp:
                _common.prepare_workspace(SandboxRequest(command="true"), Path(tmp), uid)
                request = SandboxRequest(command=["/bin/true"])
                argv = bwrap_argv(self._bwrap, request, Path(tmp), uid, fds[0] if fds else None)
                done = subprocess.run(
                    argv, capture_output=True, timeout=10, check=False, env={}, cwd="/", pass_fds=fds
                )
        except (OSError, subprocess.SubprocessError) as e:
            return str(e)
        finally:
            for fd in fds:
                os.close(fd)
            if uid is not None and self._uids:
                self._uids.give(uid)
        if done.returncode != 0:
            return done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
        return None

    async def run(self, request: SandboxRequest, workspace: Path) -> SandboxResult:
        """Run ``request`` in a fresh sandbox whose only writable place is ``workspace``.

        Raises:
            SkillFailed: a bad file name, command or skill folder, or bwrap could not start.
        """
        uid = self._uids.take() if self._uids else None
        try:
            before = await asyncio.to_thread(_common.prepare_workspace, request, workspace, uid)
            out = await self._run_in(request, workspace, uid)
        finally:
            if uid is not None and self._uids:
                self._uids.give(uid)
        return await outcome_result(out, request, workspace, before)

    def _filter_fds(self) -> tuple[int, ...]:
        return () if self._seccomp is None else (_seccomp.filter_fd(self._seccomp),)

    async def _run_in(self, request: SandboxRequest, workspace: Path, uid: int | None) -> Outcome:
        fds = self._filter_fds()
        try:
            try:
                inner = await asyncio.to_thread(
                    bwrap_argv, self._bwrap, request, workspace, uid, fds[0] if fds else None
                )
            except OSError as e:
                raise SkillFailed(f"skill folder {request.readonly_dir!r} cannot be opened: {e}") from e
            extra = _BWRAP_OWN_PROCESSES if uid is None else 0  # as root, bwrap's own are not counted
            argv = _common.prlimit_args(self._prlimit, request.limits, extra) + inner
            env = _common.base_env(request, "/workspace")
            try:
                return await run_limited(
                    argv,
                    env=env,
                    cwd=Path("/"),
                    stdin=request.stdin,
                    limits=request.limits,
                    workspace=workspace,
                    pass_fds=fds,
                )
            except OSError as e:
                raise SkillFailed(f"could not start bwrap: {e}") from e
        finally:
            for fd in fds:
                os.close(fd)
