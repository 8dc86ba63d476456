"""Helpers every backend shares: workspace files, output capping, artifacts, limits, uids."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.errors import SkillFailed
from engine.ports import SandboxLimits, SandboxRequest, SandboxResult
from engine.workspace import relative_parts, write_beneath

#: PATH inside every sandbox; the host's PATH may point into home directories.
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
KillReason = Literal["wall_time", "cpu_time", "memory", "output", "workspace"] | None

# Messages that runtimes print when an allocation fails under RLIMIT_AS or a cgroup limit.
_MEMORY_HINTS = re.compile(r"MemoryError|Cannot allocate memory|out of memory|ENOMEM|bad_alloc", re.I)
_SIGKILL_EXIT = 128 + 9
# Under RLIMIT_AS a failed stack or heap growth often ends in SIGSEGV rather than an error.
_SIGSEGV_EXIT = 128 + 11
_SIGXCPU_EXIT = 128 + 24

# A file's identity for change detection: size, mtime and (for the inputs) a content digest.
Fingerprint = tuple[int, int, str]


def base_env(request: SandboxRequest, home: str) -> dict[str, str]:
    """The whole environment of a sandboxed command: nothing is inherited from the host."""
    env = {"PATH": SANDBOX_PATH, "HOME": home, "LANG": "C.UTF-8"}
    env.update(request.env)
    return env


def file_size_limit(limits: SandboxLimits) -> int:
    """RLIMIT_FSIZE: the per-file cap, and never more than the whole workspace may hold."""
    return min(limits.max_file_bytes, limits.max_workspace_bytes)


def prepare_workspace(request: SandboxRequest, workspace: Path, owner: int | None) -> dict[str, Fingerprint]:
    """Create the workspace, write the request's files and return their fingerprints.

    Args:
        request: whose ``files`` are written (UTF-8).
        workspace: the per-step directory on the host; created when missing.
        owner: uid (and gid) that the sandboxed command runs as, or None to keep ours.

    Raises:
        SkillFailed: a file name is absolute or climbs out of the workspace, or a symbolic
            link (or anything but a regular file) left in the workspace is in its way.
    """
    for name in request.files:
        relative_parts(name, "sandbox file name")
    workspace.mkdir(parents=True, exist_ok=True)
    workspace.chmod(0o700)
    for name, content in request.files.items():
        # A reused workspace may hold links left by sandboxed code: never write through one.
        write_beneath(workspace, name, content.encode("utf-8"), what="sandbox file")
    if owner is not None:
        _chown_tree(workspace, owner)
    return snapshot(workspace, digest=True)


def _chown_tree(root: Path, uid: int) -> None:
    os.chown(root, uid, uid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)


def _regular_files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    # Symlinks are neither followed nor reported: a link to /etc/shadow is not an artifact.
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                st = os.stat(path, follow_symlinks=False)
                if os.path.isfile(path) and not os.path.islink(path):
                    yield os.path.relpath(path, root).replace(os.sep, "/"), st


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with contextlib.suppress(OSError), path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def snapshot(workspace: Path, *, digest: bool = False) -> dict[str, Fingerprint]:
    """Fingerprints of the regular files under ``workspace``, keyed by relative POSIX path."""
    return {
        rel: (st.st_size, st.st_mtime_ns, _digest(workspace / rel) if digest else "")
        for rel, st in _regular_files(workspace)
    }


def artifacts(workspace: Path, before: dict[str, Fingerprint]) -> list[str]:
    """Files created or changed in ``workspace`` since ``before`` was taken, sorted."""
    changed = []
    for rel, (size, mtime, _) in snapshot(workspace).items():
        old = before.get(rel)
        if old is None or ((size, mtime) != old[:2] and _digest(workspace / rel) != old[2]):
            changed.append(rel)
    return sorted(changed)


@dataclass
class OutputCap:
    """Collects stdout and stderr until their combined size reaches ``limit`` bytes."""

    limit: int
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def add(self, stream: str, data: bytes) -> bool:
        """Append ``data`` to ``stream`` ("stdout"/"stderr"); False once the cap is exceeded."""
        room = self.limit - len(self.stdout) - len(self.stderr)
        buf = self.stdout if stream == "stdout" else self.stderr
        buf += data[: max(room, 0)]
        if len(data) > room:
            self.truncated = True
        return not self.truncated

    def text(self, stream: str) -> str:
        """The captured stream decoded as UTF-8, undecodable bytes replaced."""
        return bytes(self.stdout if stream == "stdout" else self.stderr).decode("utf-8", "replace")


def prlimit_args(prlimit: str, limits: SandboxLimits, extra_processes: int = 0) -> list[str]:
    """An argv prefix that applies the request's rlimits and then execs the rest of the argv.

    ``prlimit`` is used instead of ``preexec_fn`` because forking Python code in a process that
    runs threads (``asyncio.to_thread``) can deadlock the child. The hard CPU limit is one second
    above the soft one so a process that ignores SIGXCPU is still killed.
    """
    cpu = max(1, math.ceil(limits.cpu_seconds))
    return [
        prlimit,
        f"--cpu={cpu}:{cpu + 1}",
        f"--as={limits.memory_bytes}",
        f"--nproc={limits.max_processes + extra_processes}",
        f"--fsize={file_size_limit(limits)}",
        "--core=0",
        "--",
    ]


def classify(exit_code: int, stderr: str, limits: SandboxLimits, duration_s: float) -> KillReason:
    """Why a command the sandbox did not kill itself ended abnormally (best effort)."""
    if exit_code == _SIGXCPU_EXIT:
        return "cpu_time"
    if exit_code == _SIGKILL_EXIT and duration_s >= limits.cpu_seconds:
        return "cpu_time"  # the hard RLIMIT_CPU sends SIGKILL to a process that ignored SIGXCPU
    if exit_code in (_SIGKILL_EXIT, _SIGSEGV_EXIT) or _MEMORY_HINTS.search(stderr):
        return "memory"
    return None


def result(
    *,
    exit_code: int,
    cap: OutputCap,
    killed: KillReason,
    limits: SandboxLimits,
    duration_s: float,
    files: list[str],
) -> SandboxResult:
    """Build the SandboxResult, inferring a limit when the sandbox did not kill the command."""
    stderr = cap.text("stderr")
    reason = killed or (classify(exit_code, stderr, limits, duration_s) if exit_code else None)
    return SandboxResult(
        exit_code=exit_code,
        stdout=cap.text("stdout"),
        stderr=stderr,
        timed_out=reason == "wall_time",
        killed=reason,
        output_truncated=cap.truncated,
        files=files,
        duration_ms=round(duration_s * 1000, 3),
    )


class UidPool:
    """Hands out distinct unprivileged uids to concurrent runs.

    RLIMIT_NPROC counts every process of a uid on the host and is not enforced for root, so a
    process limit only holds when each running command has a uid of its own.
    """

    def __init__(self, base: int, size: int) -> None:
        """Use uids ``base`` .. ``base + size - 1``; none of them may belong to a real user."""
        if base <= 0 or size <= 0:
            raise ValueError("uid pool needs a positive base and size")
        self._free = list(range(base + size - 1, base - 1, -1))
        self._lock = threading.Lock()

    def take(self) -> int:
        """A uid no other running command holds. Raises SkillFailed when all are busy."""
        with self._lock:
            if not self._free:
                raise SkillFailed("too many sandboxed commands at once", retryable=True)
            return self._free.pop()

    def give(self, uid: int) -> None:
        """Return a uid once its command and all its processes are gone."""
        with self._lock:
            self._free.append(uid)
