"""The subprocess backend, backend selection, and the shared helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import skills.sandbox
from engine.errors import EngineError, SkillFailed
from engine.ports import SandboxLimits, SandboxRequest
from skills.sandbox import BwrapSandbox, DockerSandbox, SubprocessSandbox, choose_sandbox
from skills.sandbox._common import OutputCap, UidPool
from tests.unit.skills.conftest import Engine


def test_public_api_is_pinned() -> None:
    assert skills.sandbox.__all__ == ["BwrapSandbox", "DockerSandbox", "SubprocessSandbox", "choose_sandbox"]


async def test_subprocess_basics(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_TEST_SECRET", "leak-me-not")
    req = SandboxRequest(
        command='cat; echo "$NAME"; env; echo made > out.txt; exit 4',
        stdin="in\n",
        env={"NAME": "bob"},
        files={"a.txt": "a"},
    )
    res = await SubprocessSandbox().run(req, workspace)
    assert res.exit_code == 4
    assert res.stdout.startswith("in\nbob\n")
    assert "leak-me-not" not in res.stdout
    assert f"HOME={workspace}" in res.stdout
    assert res.files == ["out.txt"]


async def test_subprocess_limits(workspace: Path) -> None:
    backend = SubprocessSandbox()
    slow = await backend.run(
        SandboxRequest(command="sleep 30", limits=SandboxLimits(wall_seconds=0.5)), workspace
    )
    assert (slow.killed, slow.timed_out) == ("wall_time", True)
    loud = await backend.run(
        SandboxRequest(command="yes", limits=SandboxLimits(max_output_bytes=100)), workspace
    )
    assert (loud.killed, loud.output_truncated, len(loud.stdout)) == ("output", True, 100)


async def test_subprocess_runs_in_the_skill_folder(workspace: Path, tmp_path: Path) -> None:
    skill = tmp_path / "skill"
    skill.mkdir()
    skill.chmod(0o755)
    req = SandboxRequest(command=["pwd"], readonly_dir=str(skill), cwd_skill=True)
    assert (await SubprocessSandbox().run(req, workspace)).stdout == f"{skill}\n"


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "a/../../b", ""])
async def test_file_names_must_stay_in_the_workspace(workspace: Path, name: str) -> None:
    with pytest.raises(SkillFailed, match="relative path inside the workspace"):
        await SubprocessSandbox().run(SandboxRequest(command="true", files={name: "x"}), workspace)


def test_subprocess_is_refused_unless_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNOFF_SANDBOX", raising=False)
    with pytest.raises(EngineError, match="SIGNOFF_SANDBOX=subprocess"):
        choose_sandbox("subprocess")
    monkeypatch.setenv("SIGNOFF_SANDBOX", "auto")
    with pytest.raises(EngineError, match="does not isolate"):
        choose_sandbox("subprocess")
    monkeypatch.setenv("SIGNOFF_SANDBOX", "subprocess")
    assert isinstance(choose_sandbox("subprocess"), SubprocessSandbox)


def test_choose_bwrap_and_auto() -> None:
    assert isinstance(choose_sandbox("bwrap"), BwrapSandbox)
    assert isinstance(choose_sandbox("auto"), BwrapSandbox)


def test_choose_rejects_unknown_and_unconfigured_docker() -> None:
    with pytest.raises(EngineError, match="is not one of"):
        choose_sandbox("chroot")
    with pytest.raises(EngineError, match="needs a docker image"):
        choose_sandbox("docker")


def test_choose_docker(
    docker_engine: Engine, docker_sandbox: DockerSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_engine.url)
    assert isinstance(choose_sandbox("docker", docker_image=docker_engine.image), DockerSandbox)
    with pytest.raises(EngineError, match="does not answer"):
        choose_sandbox("docker", docker_image="localhost/no-such-image:0")


def test_output_cap_counts_both_streams() -> None:
    cap = OutputCap(10)
    assert cap.add("stdout", b"12345")
    assert not cap.add("stderr", b"abcdefgh")
    assert (cap.text("stdout"), cap.text("stderr"), cap.truncated) == ("12345", "abcde", True)
    assert not cap.add("stdout", b"more")
    assert cap.text("stdout") == "12345"


def test_output_is_decoded_with_replacement() -> None:
    cap = OutputCap(100)
    cap.add("stdout", b"ok \xff")
    assert cap.text("stdout") == "ok \ufffd"


def test_uid_pool_hands_out_distinct_uids() -> None:
    pool = UidPool(5000, 2)
    first, second = pool.take(), pool.take()
    assert first != second
    with pytest.raises(SkillFailed) as err:
        pool.take()
    assert err.value.retryable
    pool.give(first)
    assert pool.take() == first


@pytest.mark.skipif(os.geteuid() != 0, reason="uid switching needs root")
async def test_each_run_gets_a_private_uid(workspace: Path) -> None:
    res = await BwrapSandbox().run(SandboxRequest(command="id -u; cat /proc/self/status"), workspace)
    uid = int(res.stdout.split()[0])
    assert uid >= 2_000_000
    assert "CapEff:\t0000000000000000" in res.stdout
    assert "NoNewPrivs:\t1" in res.stdout
