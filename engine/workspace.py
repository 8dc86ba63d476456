"""Files in run workspaces, opened without ever following a symbolic link.

A workspace is written by sandboxed code, so every name in it is untrusted: a step can leave
``root -> /`` behind and hope that the host resolves ``report/root/etc/shadow`` later. Here a
path is walked one component at a time from a directory file descriptor, each component
opened with ``O_NOFOLLOW`` (a link anywhere in the path is refused, not resolved), every
directory must be on the workspace's own file system, and a file is read from the descriptor
that was opened and checked, so nothing can be swapped in between the check and the copy.

Plain ``os`` calls (Linux and other POSIX systems); the engine stays free of I/O libraries.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from engine.errors import SkillFailed

__all__ = ["copy_beneath", "relative_parts", "write_beneath"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in after the lstat must not block the open.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
_KINDS = {
    stat.S_IFREG: "a regular file",
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def relative_parts(name: str, what: str) -> tuple[str, ...]:
    """The components of a workspace-relative POSIX path, or SkillFailed naming ``what``.

    Refused: empty, absolute, ``.`` or ``..`` components, empty components (``a//b``), NUL.
    """
    parts = tuple(name.split("/"))
    if not name or "\0" in name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise SkillFailed(
            f"{what} {name!r} must be a relative path inside the workspace, like report/summary.md "
            "(no leading /, no . or .. components)"
        )
    return parts


@contextlib.contextmanager
def _fd(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _refusal(what: str, name: str, shown: str, exc: OSError, dir_fd: int, part: str) -> SkillFailed:
    if exc.errno == errno.ENOENT:
        return SkillFailed(f"{what} {name!r} does not exist in this run's workspace")
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        try:
            mode = os.stat(part, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except OSError:
            mode = 0
        if stat.S_ISLNK(mode):
            return SkillFailed(f"{what} {name!r}: {shown!r} is a symbolic link, and links are never followed")
        return SkillFailed(f"{what} {name!r}: {shown!r} is {_kind(mode)}, not a directory")
    return SkillFailed(f"{what} {name!r} cannot be opened: {exc.strerror}")


def _walk(root: Path, parts: tuple[str, ...], name: str, what: str, *, create: bool) -> int:
    """An fd of the directory ``root/parts`` (created when ``create``), links refused."""
    fd = os.open(root, _DIR_FLAGS)
    device = os.fstat(fd).st_dev
    for i, part in enumerate(parts):
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            refusal = _refusal(what, name, "/".join(parts[: i + 1]), exc, fd, part)
            os.close(fd)
            raise refusal from exc
        os.close(fd)
        fd = child
        if os.fstat(fd).st_dev != device:
            os.close(fd)
            raise SkillFailed(f"{what} {name!r} crosses into another file system")
    return fd


def _open_regular(dir_fd: int, part: str, name: str, what: str, device: int) -> int:
    try:
        before = os.stat(part, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        raise _refusal(what, name, name, exc, dir_fd, part) from exc
    # Checked before the open: opening a device or a FIFO can have effects of its own.
    if not stat.S_ISREG(before.st_mode):
        raise SkillFailed(f"{what} {name!r} is {_kind(before.st_mode)}; only regular files are copied")
    try:
        fd = os.open(part, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise _refusal(what, name, name, exc, dir_fd, part) from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise SkillFailed(f"{what} {name!r} changed while it was being opened")
    if st.st_dev != device:
        os.close(fd)
        raise SkillFailed(f"{what} {name!r} crosses into another file system")
    return fd


def _create(dst_root: Path, parts: tuple[str, ...], name: str, what: str, mode: int) -> int:
    with _fd(_walk(dst_root, parts[:-1], name, what, create=True)) as dir_fd:
        try:
            return os.open(parts[-1], _CREATE_FLAGS, mode, dir_fd=dir_fd)
        except FileExistsError as exc:
            raise SkillFailed(f"{what} {name!r} is already in the workspace") from exc
        except OSError as exc:
            raise _refusal(what, name, name, exc, dir_fd, parts[-1]) from exc


def copy_beneath(src_root: Path, name: str, dst_root: Path, *, what: str, budget: int) -> int:
    """Copy the regular file ``src_root/name`` to ``dst_root/name``; return its size.

    No component of ``name`` may be a symbolic link (in either tree), the source must be a
    regular file on ``src_root``'s file system, the target must not exist yet, and the copy
    stops with SkillFailed once it passes ``budget`` bytes. Blocking: call it in a thread.

    Raises:
        SkillFailed: a bad name, a link, a missing file, a FIFO, device, socket or directory,
            a file on another file system, or more than ``budget`` bytes.
    """
    parts = relative_parts(name, what)
    device = os.stat(src_root).st_dev
    with _fd(_walk(src_root, parts[:-1], name, what, create=False)) as dir_fd:
        source = _open_regular(dir_fd, parts[-1], name, what, device)
    with _fd(source), _fd(_create(dst_root, parts, name, what, 0o644)) as target:
        copied = 0
        while chunk := os.read(source, _CHUNK):
            copied += len(chunk)
            if copied > budget:
                raise SkillFailed(f"{what} {name!r} does not fit in this step's workspace size limit")
            view = memoryview(chunk)
            while view:
                view = view[os.write(target, view) :]
    return copied


def write_beneath(root: Path, name: str, data: bytes, *, what: str) -> None:
    """Write ``data`` to ``root/name``, creating directories, never through a link.

    An existing regular file is replaced; an existing link, FIFO, device or directory at
    ``name`` (or a link on the way to it) is refused. Blocking: call it in a thread.

    Raises:
        SkillFailed: a bad name, or a link or non-regular file in the way.
    """
    parts = relative_parts(name, what)
    with _fd(_walk(root, parts[:-1], name, what, create=True)) as dir_fd:
        leaf = parts[-1]
        with contextlib.suppress(FileNotFoundError):
            mode = os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False).st_mode
            if not stat.S_ISREG(mode):
                raise SkillFailed(f"{what} {name!r} is already in the workspace as {_kind(mode)}")
            os.unlink(leaf, dir_fd=dir_fd)
        try:
            fd = os.open(leaf, _CREATE_FLAGS, 0o644, dir_fd=dir_fd)
        except OSError as exc:
            raise _refusal(what, name, name, exc, dir_fd, leaf) from exc
    with _fd(fd):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
