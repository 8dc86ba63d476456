"""Issue 11: reading host files through artifact links, end to end on bwrap and docker.

Each test runs a real workflow on the engine with a real sandbox backend: step ``a`` plants a
link (or a FIFO, a directory, a path that climbs out) in its workspace and prints the artifact
path; step ``b`` lists that path in ``artifacts:`` and ``cat``s it. The host file is a secret in
a temporary folder only root can read; it must never come back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.catalog import WorkflowCatalog
from engine.errors import SkillFailed
from engine.loader import load_workflow_text
from engine.model import RunStatus, Step
from engine.nodes.base import NodeDeps
from engine.ports import Sandbox, SandboxRequest
from engine.service import Engine
from engine.testing import FixedClock, InMemoryRunStore, SeqIds

SECRET = "root-only-secret-91c2"

WORKFLOW = """\
id: escape
inputs: {type: object, properties: {plant: {type: string}, path: {type: string}}}
nodes:
  - id: a
    type: code
    run: [/bin/sh, -c, "{{ inputs.plant }}"]
  - id: b
    type: code
    run: [cat, "{{ inputs.path }}"]
    artifacts: ["{{ nodes.a.data.p }}"]
edges: [{from: a, to: b}]
"""


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A host file outside every workspace that only root can read."""
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    path = folder / "secret.txt"
    path.write_text(SECRET)
    path.chmod(0o400)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The service's workspace root."""
    path = tmp_path / "workspaces"
    path.mkdir()
    return path


async def _escape(sandbox: Sandbox, root: Path, plant: str, artifact: str) -> tuple[RunStatus, list[Step]]:
    wf = load_workflow_text(WORKFLOW, file="escape.yml")
    deps = NodeDeps(clock=FixedClock(), ids=SeqIds(), sandbox=sandbox, workspace_root=root)
    engine = Engine(store=InMemoryRunStore(), catalog=WorkflowCatalog({wf.id: wf}), deps=deps, owner="t")
    # `a` plants the trap, then prints the artifact path that `b` will copy and read
    script = f"{plant}; printf '%s' '{json.dumps({'p': artifact})}'"
    run = await engine.start(wf.id, {"plant": script, "path": artifact}, requester="mallory")
    await engine.drive(run.id)
    steps = await engine.store.list_steps(run.id)
    return (await engine.store.get_run(run.id)).status, steps


def _leaked(steps: list[Step]) -> bool:
    seen = [s.error or "" for s in steps] + [s.output.text for s in steps if s.output is not None]
    return any(SECRET in text for text in seen)


async def test_the_reported_exploit_reads_nothing(sandbox: Sandbox, root: Path, secret: Path) -> None:
    # the review's reproduction: `ln -s / /workspace/root`, artifact `a/root/<root-only file>`
    status, steps = await _escape(sandbox, root, "ln -s / /workspace/root", f"a/root{secret}")
    assert not _leaked(steps)
    assert status is RunStatus.failed
    assert [s.node_id for s in steps] == ["a", "b"]
    assert f"artifact 'a/root{secret}': 'a/root' is a symbolic link" in (steps[1].error or "")


@pytest.mark.parametrize(
    ("plant", "artifact", "message"),
    [
        # a link deeper in the path, and one that climbs out with a relative target
        ("mkdir -p x/y && ln -s / x/y/z", "a/x/y/z{secret}", "'a/x/y/z' is a symbolic link"),
        ("ln -s ../../../../../../../../../../../../.. up", "a/up{secret}", "'a/up' is a symbolic link"),
        # the last component a link to the file itself
        ("ln -s {secret} leak", "a/leak", "'a/leak' is a symbolic link"),
        # paths that leave the workspace without any link
        (
            "true",
            "a/../../../../../../../../../../..{secret}",
            "must be a relative path inside the workspace",
        ),
        ("true", "{secret}", "must be a relative path inside the workspace"),
        # things that are not regular files
        ("mkfifo fifo", "a/fifo", "'a/fifo' is a FIFO; only regular files are copied"),
        ("mkdir d", "a/d", "'a/d' is a directory; only regular files are copied"),
    ],
)
async def test_other_ways_out_are_refused(
    sandbox: Sandbox, root: Path, secret: Path, plant: str, artifact: str, message: str
) -> None:
    path = artifact.format(secret=secret)
    status, steps = await _escape(sandbox, root, plant.format(secret=secret), path)
    assert not _leaked(steps)
    assert status is RunStatus.failed
    assert steps[0].error is None, steps[0].error
    assert message.format(secret=secret) in (steps[1].error or "")


async def test_an_ordinary_artifact_still_travels(sandbox: Sandbox, root: Path, secret: Path) -> None:
    status, steps = await _escape(sandbox, root, "mkdir -p out && echo hello > out/r.txt", "a/out/r.txt")
    assert status is RunStatus.succeeded, [s.error for s in steps]
    assert steps[1].output is not None
    assert steps[1].output.text == "hello\n"


async def test_request_files_are_never_written_through_a_link(
    sandbox: Sandbox, workspace: Path, secret: Path
) -> None:
    # A workspace a previous command used (a retried step, a skill) may hold its links.
    await sandbox.run(SandboxRequest(command=f"ln -s {secret.parent} dir; ln -s {secret} file"), workspace)
    for name in ("dir/planted.txt", "file"):
        with pytest.raises(SkillFailed, match="symbolic link"):
            await sandbox.run(SandboxRequest(command="true", files={name: "pwned"}), workspace)
    assert secret.read_text() == SECRET
    assert sorted(p.name for p in secret.parent.iterdir()) == ["secret.txt"]
