"""The total size of a step's workspace is limited, on bwrap and docker, and in a workflow.

Files are written in 10 MB pieces so that the per-file limit (RLIMIT_FSIZE) never stops the
command first: only the workspace total can.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.catalog import WorkflowCatalog
from engine.loader import load_workflow_text
from engine.model import RunStatus
from engine.nodes.base import NodeDeps
from engine.ports import Sandbox, SandboxLimits, SandboxRequest
from engine.service import Engine
from engine.testing import FixedClock, InMemoryRunStore, SeqIds
from skills.sandbox import BwrapSandbox

MB = 1024 * 1024
LIMITS = SandboxLimits(max_workspace_bytes=20 * MB, wall_seconds=120, cpu_seconds=60)


def _writer(megabytes: int) -> str:
    pieces = megabytes // 10
    loop = "do head -c 10485760 /dev/zero > f$i || exit 1; i=$((i+1)); done"
    return f"i=0; while [ $i -lt {pieces} ]; {loop}; echo wrote"


def _on_disk(workspace: Path) -> int:
    return sum(p.stat().st_size for p in workspace.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.mark.parametrize("megabytes", [200, 2048])
async def test_writing_far_past_the_limit_is_stopped(
    sandbox: Sandbox, workspace: Path, megabytes: int
) -> None:
    res = await sandbox.run(SandboxRequest(command=_writer(megabytes), limits=LIMITS), workspace)
    assert res.killed == "workspace", (res.exit_code, res.stderr)
    assert "wrote" not in res.stdout
    # stopped on the way, not after the fact: far less than was attempted reached the disk
    assert _on_disk(workspace) < min(megabytes * MB // 2, 1024 * MB)


async def test_within_the_limit_nothing_happens(sandbox: Sandbox, workspace: Path) -> None:
    res = await sandbox.run(SandboxRequest(command=_writer(10), limits=LIMITS), workspace)
    assert (res.killed, res.exit_code, res.stdout) == (None, 0, "wrote\n")
    assert res.files == ["f0"]


async def test_sparse_files_and_floods_of_empty_files_count(sandbox: Sandbox, workspace: Path) -> None:
    # sparse: no blocks on disk, but 30 MB each once an artifact copy writes them out
    sparse = await sandbox.run(
        SandboxRequest(command="truncate -s 15M s1 && truncate -s 15M s2 && sleep 30", limits=LIMITS),
        workspace,
    )
    assert sparse.killed == "workspace"
    small = SandboxLimits(max_workspace_bytes=MB)
    # far more empty files than the limit allows: only the workspace watcher can stop this
    # (how many were made before it looked depends on the machine's speed, so no count)
    flood = "i=0; while [ $i -lt 200000 ]; do : > e$i; i=$((i+1)); done; echo flooded; sleep 30"
    res = await sandbox.run(SandboxRequest(command=flood, limits=small), workspace.parent / "flood")
    assert res.killed == "workspace", (res.exit_code, res.stderr)
    assert "flooded" not in res.stdout
    assert len(os.listdir(workspace.parent / "flood")) < 200000


FILL = f"""\
id: fill
nodes:
  - id: fill
    type: code
    run: [/bin/sh, -c, "{_writer(200)}"]
    timeout: 120s
    limits: {{workspace: 20MB, cpu: 60s}}
edges: []
"""

HANDOFF = """\
id: handoff
nodes:
  - id: big
    type: code
    run: [/bin/sh, -c, "head -c 15000000 /dev/zero > big.bin"]
    limits: {workspace: 20MB}
  - id: small
    type: code
    run: [cat, big/big.bin]
    artifacts: [big/big.bin]
    limits: {workspace: 10MB}
edges: [{from: big, to: small}]
"""


@pytest.mark.parametrize(
    ("text", "node", "error"),
    [
        (FILL, "fill", "killed: workspace size 20MB exceeded"),
        (HANDOFF, "small", "artifact 'big/big.bin' does not fit in this step's workspace size limit"),
    ],
)
async def test_a_code_step_says_which_limit_stopped_it(
    bwrap_sandbox: BwrapSandbox, tmp_path: Path, text: str, node: str, error: str
) -> None:
    wf = load_workflow_text(text, file="t.yml")
    deps = NodeDeps(clock=FixedClock(), ids=SeqIds(), sandbox=bwrap_sandbox, workspace_root=tmp_path)
    engine = Engine(store=InMemoryRunStore(), catalog=WorkflowCatalog({wf.id: wf}), deps=deps, owner="t")
    run = await engine.start(wf.id, {}, requester="alice")
    await engine.drive(run.id)
    steps = await engine.store.list_steps(run.id)
    assert [(s.node_id, s.error) for s in steps][-1] == (node, error)
    assert all(s.error is None for s in steps[:-1])
    assert (await engine.store.get_run(run.id)).status is RunStatus.failed
