"""Copying artifacts between step workspaces never follows a link (engine/workspace.py).

The workspaces here are laid out by hand the way sandboxed code could leave them; the attacks
through real sandboxes are in tests/unit/skills/test_sandbox_escape.py.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import engine.workspace
from engine.errors import SkillFailed
from engine.nodes.code import _fresh_workspace
from engine.workspace import copy_beneath, relative_parts, write_beneath

SECRET = "root-only-secret-7f3a"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A host file outside every workspace, readable by its owner only."""
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    path = folder / "secret.txt"
    path.write_text(SECRET)
    path.chmod(0o600)
    return path


@pytest.fixture
def run_ws(tmp_path: Path) -> Path:
    """A run's workspace whose step ``a`` left ``a/ok.txt`` behind."""
    path = tmp_path / "runs" / "run_1"
    (path / "a").mkdir(parents=True)
    (path / "a" / "ok.txt").write_text("public")
    return path


def _copy(run_ws: Path, name: str) -> Path:
    target = run_ws / "b"
    _fresh_workspace(target, run_ws, [name])
    return target


def test_a_regular_file_is_copied(run_ws: Path) -> None:
    assert (_copy(run_ws, "a/ok.txt") / "a" / "ok.txt").read_text() == "public"


def test_a_link_in_an_intermediate_component_is_refused(run_ws: Path, secret: Path) -> None:
    (run_ws / "a" / "root").symlink_to("/")
    (run_ws / "a" / "deep" / "er").mkdir(parents=True)
    (run_ws / "a" / "deep" / "er" / "up").symlink_to("../../../../../../../../../../../../../..")
    for name in (f"a/root{secret}", f"a/deep/er/up{secret}"):
        with pytest.raises(SkillFailed, match="is a symbolic link, and links are never followed"):
            _copy(run_ws, name)
    assert not any(SECRET in p.read_text() for p in (run_ws / "b").rglob("*") if p.is_file())


def test_a_link_as_the_last_component_is_refused(run_ws: Path, secret: Path) -> None:
    (run_ws / "a" / "leak").symlink_to(secret)
    with pytest.raises(SkillFailed, match="'a/leak' is a symbolic link"):
        _copy(run_ws, "a/leak")


@pytest.mark.parametrize("name", ["../../private/secret.txt", "a/../../x", "/etc/x", "a//ok.txt", "./a", ""])
def test_paths_must_stay_relative(run_ws: Path, name: str) -> None:
    with pytest.raises(SkillFailed, match="must be a relative path inside the workspace"):
        _copy(run_ws, name)


def test_fifo_socket_device_and_directory_are_refused(run_ws: Path) -> None:
    a = run_ws / "a"
    os.mkfifo(a / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(a / "sock"))
    os.mknod(a / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # as /dev/null (the suite runs as root)
    (a / "dir").mkdir()
    try:
        kinds = {"fifo": "a FIFO", "sock": "a socket", "null": "a character device", "dir": "a directory"}
        for name, kind in kinds.items():
            with pytest.raises(SkillFailed, match=f"'a/{name}' is {kind}; only regular files are copied"):
                _copy(run_ws, f"a/{name}")
    finally:
        sock.close()


def test_a_regular_file_in_the_way_of_a_directory(run_ws: Path) -> None:
    with pytest.raises(SkillFailed, match=r"'a/ok\.txt' is a regular file, not a directory"):
        _copy(run_ws, "a/ok.txt/x")


def test_copies_stop_at_the_budget(run_ws: Path, tmp_path: Path) -> None:
    (run_ws / "a" / "big").write_bytes(b"x" * 5000)
    small, exact = tmp_path / "small", tmp_path / "exact"
    small.mkdir()
    exact.mkdir()
    with pytest.raises(SkillFailed, match="does not fit in this step's workspace size limit"):
        copy_beneath(run_ws, "a/big", small, what="artifact", budget=4999)
    assert copy_beneath(run_ws, "a/big", exact, what="artifact", budget=5000) == 5000


def test_public_api_is_pinned() -> None:
    assert engine.workspace.__all__ == ["copy_beneath", "relative_parts", "write_beneath"]


def test_relative_parts() -> None:
    assert relative_parts("a/b/c.txt", "artifact") == ("a", "b", "c.txt")


# A separate process (no GIL between it and the copy) swaps ``a/f`` between a regular file and
# a link to the secret as fast as it can, for as long as the test runs.
_SWAPPER = """
import os, sys
folder, secret = sys.argv[1], sys.argv[2]
target, link, plain = (os.path.join(folder, n) for n in ("f", ".link", ".plain"))
while True:
    os.symlink(secret, link)
    os.replace(link, target)
    with open(plain, "w") as fh:
        fh.write("public")
    os.replace(plain, target)
"""


@pytest.fixture
def swapper(run_ws: Path, secret: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The racing process, stopped (by its pid) when the test ends."""
    (run_ws / "a" / "f").write_text("public")
    proc = subprocess.Popen([sys.executable, "-c", _SWAPPER, str(run_ws / "a"), str(secret)])
    yield proc
    proc.kill()
    proc.wait()


def test_a_link_swapped_in_after_the_check_is_never_followed(
    run_ws: Path, swapper: subprocess.Popen[bytes]
) -> None:
    outcomes = {"copied": 0, "refused": 0, "leaked": 0}
    deadline = time.monotonic() + 60
    # Enough attempts that both states of the file were seen many times over.
    while time.monotonic() < deadline and (outcomes["copied"] < 300 or outcomes["refused"] < 300):
        try:
            content = (_copy(run_ws, "a/f") / "a" / "f").read_text()
        except SkillFailed:
            outcomes["refused"] += 1
            continue
        outcomes["leaked" if content == SECRET else "copied"] += 1
        if outcomes["leaked"]:
            break
    assert swapper.poll() is None, "the swapping process died"
    assert outcomes["leaked"] == 0, outcomes
    assert outcomes["copied"] >= 300, outcomes
    assert outcomes["refused"] >= 300, outcomes


def test_writes_never_go_through_a_link(tmp_path: Path, secret: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "dir").symlink_to(secret.parent)
    (ws / "file").symlink_to(secret)
    with pytest.raises(SkillFailed, match="'dir' is a symbolic link"):
        write_beneath(ws, "dir/new.txt", b"x", what="sandbox file")
    with pytest.raises(SkillFailed, match="'file' is already in the workspace as a symbolic link"):
        write_beneath(ws, "file", b"pwned", what="sandbox file")
    assert secret.read_text() == SECRET
    assert sorted(p.name for p in secret.parent.iterdir()) == ["secret.txt"]
    write_beneath(ws, "sub/dir/new.txt", b"ok", what="sandbox file")
    write_beneath(ws, "sub/dir/new.txt", b"replaced", what="sandbox file")
    assert (ws / "sub" / "dir" / "new.txt").read_bytes() == b"replaced"
