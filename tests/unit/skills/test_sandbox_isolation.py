"""Invariant 19 against every isolating backend (bwrap and docker), with real processes.

Commands are plain shell so that they run in busybox as well as on the host's system dirs.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.ports import Sandbox, SandboxLimits, SandboxRequest

SECRET = "hunter2-do-not-leak"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP socket listening on the host's loopback that sandboxed code must not reach."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.setblocking(False)
    yield srv
    srv.close()


def _accepted(srv: socket.socket) -> bool:
    try:
        conn, _ = srv.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


async def test_no_network(sandbox: Sandbox, workspace: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    cmd = (
        f"nc -w 2 127.0.0.1 {port} </dev/null && echo LOCAL_OK; "
        "nc -w 2 1.1.1.1 53 </dev/null && echo REMOTE_OK; "
        "cat /proc/net/dev"
    )
    if sandbox.name == "bwrap":  # the host may have no nc; python3 from /usr/bin will do
        probe = (
            "import socket,sys\ntry: socket.create_connection((sys.argv[1], int(sys.argv[2])), 2); "
            "print('{}_OK')\nexcept OSError as e: print(e)"
        )
        cmd = (
            f'python3 -c "{probe.format("LOCAL")}" 127.0.0.1 {port}; '
            f'python3 -c "{probe.format("REMOTE")}" 1.1.1.1 53; cat /proc/net/dev'
        )
    res = await sandbox.run(SandboxRequest(command=cmd), workspace)
    assert "LOCAL_OK" not in res.stdout
    assert "REMOTE_OK" not in res.stdout
    assert not _accepted(listener)
    interfaces = [line.split(":")[0].strip() for line in res.stdout.splitlines() if ":" in line]
    assert interfaces == ["lo"], res.stdout


async def test_host_environment_and_homes_are_invisible(
    sandbox: Sandbox, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNOFF_TEST_SECRET", SECRET)
    repo = Path(__file__).resolve().parents[3]
    cmd = f"env; cat /proc/1/environ; ls -a /root; ls -a /home; ls {repo}; cat {repo}/pyproject.toml; ls /"
    res = await sandbox.run(SandboxRequest(command=cmd, env={"ALLOWED": "yes"}), workspace)
    assert SECRET not in res.stdout + res.stderr
    assert "ALLOWED=yes" in res.stdout
    assert "signoff" not in res.stdout  # neither the repo listing nor pyproject.toml
    top = set(res.stdout.split())
    assert "root" not in top
    assert "work" not in top


async def test_system_is_read_only_and_tmp_is_private(sandbox: Sandbox, workspace: Path) -> None:
    cmd = "touch /usr/x /etc/x /x 2>/dev/null && echo WROTE; echo t > /tmp/t && cat /tmp/t; ls /tmp"
    res = await sandbox.run(SandboxRequest(command=cmd), workspace)
    assert "WROTE" not in res.stdout
    assert res.stdout.split() == ["t", "t"]


async def test_memory_limit_kills(sandbox: Sandbox, workspace: Path) -> None:
    cmd = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}"
    limits = SandboxLimits(memory_bytes=48 * 1024 * 1024, wall_seconds=20)
    res = await sandbox.run(SandboxRequest(command=cmd, limits=limits), workspace)
    assert res.exit_code != 0
    assert "200000000" not in res.stdout
    assert res.killed == "memory"


async def test_wall_time_limit_kills(sandbox: Sandbox, workspace: Path) -> None:
    res = await sandbox.run(
        SandboxRequest(command="sleep 30", limits=SandboxLimits(wall_seconds=1)), workspace
    )
    assert res.timed_out
    assert res.killed == "wall_time"
    assert res.duration_ms < 10_000


async def test_cpu_limit_kills(sandbox: Sandbox, workspace: Path) -> None:
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=20)
    res = await sandbox.run(SandboxRequest(command="while :; do :; done", limits=limits), workspace)
    assert res.killed == "cpu_time"
    assert not res.timed_out
    assert res.duration_ms < 10_000


async def test_output_cap(sandbox: Sandbox, workspace: Path) -> None:
    limits = SandboxLimits(max_output_bytes=4096, wall_seconds=20)
    res = await sandbox.run(SandboxRequest(command="yes signoff", limits=limits), workspace)
    assert res.killed == "output"
    assert res.output_truncated
    assert len(res.stdout.encode()) + len(res.stderr.encode()) <= 4096
    assert res.stdout.startswith("signoff\n")


async def test_fork_bomb_is_contained(sandbox: Sandbox, workspace: Path) -> None:
    # bounded on purpose: it would need 100 processes and is allowed 10
    cmd = "i=0; while [ $i -lt 100 ]; do sleep 2 & i=$((i+1)); done; echo spawned $i"
    limits = SandboxLimits(max_processes=10, wall_seconds=20)
    res = await sandbox.run(SandboxRequest(command=cmd, limits=limits), workspace)
    assert "spawned 100" not in res.stdout
    assert res.exit_code != 0
    assert res.duration_ms < 15_000


async def test_runs_cannot_see_each_other(sandbox: Sandbox, runs_dir: Path) -> None:
    first, second = runs_dir / "run_a" / "ws", runs_dir / "run_b" / "ws"
    await sandbox.run(SandboxRequest(command="echo $0 > mine.txt", files={"secret.txt": SECRET}), first)
    cmd = (
        f"ls -a /workspace/.. {first} {runs_dir}; cat {first}/secret.txt; find / -name secret.txt 2>/dev/null"
    )
    res = await sandbox.run(SandboxRequest(command=cmd), second)
    assert SECRET not in res.stdout
    assert "secret.txt" not in res.stdout
    assert "run_a" not in res.stdout


async def test_files_become_artifacts(sandbox: Sandbox, workspace: Path) -> None:
    files = {"in.txt": "one\n", "keep.txt": "same\n", "sub/data.csv": "a,b\n"}
    cmd = "echo two >> in.txt && mkdir -p out && echo x > out/a.txt && cat sub/data.csv"
    cmd += " && ln -s /etc/passwd link"  # a symlink is not an artifact
    res = await sandbox.run(SandboxRequest(command=cmd, files=files), workspace)
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "a,b\n"
    assert res.files == ["in.txt", "out/a.txt"]
    assert (workspace / "in.txt").read_text() == "one\ntwo\n"


async def test_stdin_env_and_exit_code(sandbox: Sandbox, workspace: Path) -> None:
    req = SandboxRequest(
        command='cat; echo "$GREETING"; pwd; echo "$HOME"; exit 7',
        stdin="hi\nthere\n",
        env={"GREETING": "hello"},
    )
    res = await sandbox.run(req, workspace)
    assert res.exit_code == 7
    assert res.killed is None
    assert res.stdout == "hi\nthere\nhello\n/workspace\n/workspace\n"


async def test_argv_command_and_stderr(sandbox: Sandbox, workspace: Path) -> None:
    res = await sandbox.run(
        SandboxRequest(command=["/bin/sh", "-c", "echo out; echo err >&2", "x"]), workspace
    )
    assert (res.exit_code, res.stdout, res.stderr) == (0, "out\n", "err\n")


async def test_skill_folder_is_read_only_at_skill(sandbox: Sandbox, workspace: Path, tmp_path: Path) -> None:
    skill = tmp_path / "skills" / "demo" / "1.0.0"
    skill.mkdir(parents=True)
    (skill / "main.sh").write_text("echo from skill\n")
    skill.chmod(0o755)
    (skill / "main.sh").chmod(0o644)
    cmd = "pwd; sh main.sh; touch /skill/new 2>/dev/null && echo WROTE; ls /workspace"
    req = SandboxRequest(command=cmd, readonly_dir=str(skill), cwd_skill=True, files={"input.json": "{}"})
    res = await sandbox.run(req, workspace)
    assert res.stdout == "/skill\nfrom skill\ninput.json\n"
    assert not (skill / "new").exists()
