"""The ``code`` node on the real subprocess sandbox (and a scripted one for limit kills)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.catalog import WorkflowCatalog
from engine.commands import Cancel, Decide
from engine.errors import InvalidWorkflow
from engine.loader import load_workflow_text
from engine.model import Step, StepStatus
from engine.nodes.base import NodeDeps
from engine.nodes.code import parse_size
from engine.ports import Sandbox, SandboxRequest, SandboxResult
from engine.service import Engine
from engine.testing import FixedClock, InMemoryRunStore, SeqIds
from skills.sandbox import SubprocessSandbox


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """No isolation: these tests check the node, the isolation is tested with bwrap elsewhere."""
    monkeypatch.setenv("SIGNOFF_SANDBOX", "subprocess")
    return SubprocessSandbox()


@pytest.fixture
def root() -> Iterator[Path]:
    """A workspace root that a command running under its own uid (as root does) can reach."""
    path = Path(tempfile.mkdtemp(prefix="signoff-code-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class ScriptedSandbox:
    """Returns one scripted result and keeps the request."""

    name = "scripted"

    def __init__(self, result: SandboxResult) -> None:
        self.result = result
        self.requests: list[SandboxRequest] = []

    async def run(self, request: SandboxRequest, workspace: Path) -> SandboxResult:
        self.requests.append(request)
        return self.result


async def _run(
    text: str, sandbox: Sandbox | None, root: Path, inputs: dict[str, Any] | None = None
) -> list[Step]:
    wf = load_workflow_text(text, file="t.yml")
    deps = NodeDeps(clock=FixedClock(), ids=SeqIds(), sandbox=sandbox, workspace_root=root)
    engine = Engine(store=InMemoryRunStore(), catalog=WorkflowCatalog({wf.id: wf}), deps=deps, owner="t")
    run = await engine.start(wf.id, inputs or {}, requester="alice")
    await engine.drive(run.id)
    return await engine.store.list_steps(run.id)


REPORT = """\
id: rep
inputs: {type: object, properties: {rows: {type: string}, fmt: {type: string}}}
nodes:
  - id: report
    type: code
    run: [python3, script.py, "{{ inputs.fmt }}"]
    stdin: "{{ inputs.rows }}"
    files:
      script.py: |
        import json, os, sys
        rows = open("input.csv").read().splitlines()
        os.makedirs("out", exist_ok=True)
        open("out/summary.txt", "w").write(f"{len(rows)} rows")
        print(json.dumps({"rows": len(rows), "stdin": sys.stdin.read(), "arg": sys.argv[1],
                          "key": os.environ["SIGNOFF_IDEMPOTENCY_KEY"], "region": os.environ["REGION"],
                          "meta": json.load(open("meta.json"))}))
      input.csv: "{{ inputs.rows }}"
      meta.json: "{{ inputs }}"
    env: {REGION: "eu-{{ inputs.fmt }}"}
    timeout: 20s
    limits: {memory: 512MB, cpu: 10s, processes: 32, output: 64KB}
  - id: reuse
    type: code
    run: "cat report/out/summary.txt; ls"
    artifacts: ["{{ nodes.report.files }}"]
edges: [{from: report, to: reuse}]
"""


async def test_files_stdin_args_env_and_artifacts(sandbox: Sandbox, root: Path) -> None:
    steps = await _run(REPORT, sandbox, root, {"rows": "a,1\nb,2", "fmt": "json"})
    report = steps[0]
    assert report.status is StepStatus.succeeded, report.error
    assert report.output is not None
    data = report.output.data
    assert (data["rows"], data["stdin"], data["arg"], data["region"]) == (2, "a,1\nb,2", "json", "eu-json")
    assert data["key"].startswith("so-")
    assert report.output.files == ["report/out/summary.txt"]
    assert data["meta"] == {"rows": "a,1\nb,2", "fmt": "json"}
    reuse = steps[1]
    assert reuse.status is StepStatus.succeeded, reuse.error
    assert reuse.output is not None
    assert reuse.output.text.startswith("2 rows")
    assert reuse.output.data == {}
    assert reuse.output.files == []
    assert not (root / "run_1").exists(), "the run ended, so its workspace is gone"


WAITS = """\
id: w
nodes:
  - {id: make, type: code, run: "echo kept > note.txt"}
  - {id: ok, type: human, prompt: "Ship it?", assignee: "user:mia", options: [approve, reject]}
  - {id: use, type: code, run: "cat make/note.txt", artifacts: "{{ nodes.make.files }}"}
edges: [{from: make, to: ok}, {from: ok, to: use, when: "response.action == 'approve'"}]
"""


@pytest.mark.parametrize("end", ["approve", "cancel"])
async def test_a_workspace_lives_while_the_run_can_use_it(sandbox: Sandbox, root: Path, end: str) -> None:
    wf = load_workflow_text(WAITS, file="t.yml")
    deps = NodeDeps(clock=FixedClock(), ids=SeqIds(), sandbox=sandbox, workspace_root=root)
    engine = Engine(store=InMemoryRunStore(), catalog=WorkflowCatalog({wf.id: wf}), deps=deps, owner="t")
    run = await engine.start(wf.id, {}, requester="alice")
    await engine.drive(run.id)
    assert (root / run.id / "make" / "note.txt").read_text() == "kept\n", "kept while the run waits"
    if end == "approve":
        (cp,) = await engine.store.list_checkpoints(open_only=True)
        await engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))
        steps = await engine.store.list_steps(run.id)
        assert [s.output.text for s in steps if s.node_id == "use" and s.output] == ["kept\n"]
    else:
        await engine.cancel(Cancel(run_id=run.id, actor="alice"))
    assert (await engine.store.get_run(run.id)).status.final
    assert not (root / run.id).exists()
    assert root.exists(), "only the run's own directory is removed"


async def test_non_zero_exit_fails_with_the_stderr_tail(sandbox: Sandbox, root: Path) -> None:
    node = '{id: c, type: code, run: "echo start; echo broken input >&2; exit 3"}'
    text = f"id: t\nnodes:\n  - {node}\nedges: []\n"
    (step,) = await _run(text, sandbox, root)
    assert step.status is StepStatus.failed
    assert step.error == "command exited with code 3: broken input"


async def test_json_that_is_not_an_object_is_wrapped(sandbox: Sandbox, root: Path) -> None:
    text = "id: t\nnodes:\n  - {id: c, type: code, run: \"echo '[1, 2]'\"}\nedges: []\n"
    (step,) = await _run(text, sandbox, root)
    assert step.output is not None
    assert step.output.data == {"value": [1, 2]}


async def test_a_rerun_starts_from_a_clean_workspace(sandbox: Sandbox, root: Path) -> None:
    stale = root / "run_1" / "c" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("from a lost attempt")
    text = 'id: t\nnodes:\n  - {id: c, type: code, run: "ls"}\nedges: []\n'
    (step,) = await _run(text, sandbox, root)
    assert step.output is not None
    assert "stale" not in step.output.text


@pytest.mark.parametrize(
    ("killed", "message"),
    [
        ("wall_time", "killed: wall time 2s exceeded"),
        ("cpu_time", "killed: CPU time 1s exceeded"),
        ("memory", "killed: memory 64MB exceeded"),
        ("output", "killed: output 1KB exceeded"),
        ("workspace", "killed: workspace size 20MB exceeded"),
    ],
)
async def test_limit_kills_say_which_limit(tmp_path: Path, killed: Any, message: str) -> None:
    fake = ScriptedSandbox(SandboxResult(exit_code=137, stdout="", stderr="", killed=killed))
    text = (
        "id: t\nnodes:\n  - {id: c, type: code, run: x, timeout: 2s,"
        " limits: {cpu: 1s, memory: 64MB, output: 1KB, processes: 4, workspace: 20MB}}\nedges: []\n"
    )
    (step,) = await _run(text, fake, tmp_path)
    assert step.error == message
    limits = fake.requests[0].limits
    assert (limits.wall_seconds, limits.cpu_seconds, limits.memory_bytes) == (2, 1, 64 * 1024**2)
    assert (limits.max_output_bytes, limits.max_processes) == (1024, 4)
    assert limits.max_workspace_bytes == 20 * 1024**2


async def test_no_sandbox_is_a_clear_failure(tmp_path: Path) -> None:
    text = "id: t\nnodes:\n  - {id: c, type: code, run: ls}\nedges: []\n"
    (step,) = await _run(text, None, tmp_path)
    assert "no sandbox is configured" in (step.error or "")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../../etc/passwd", "must be a relative path inside the workspace"),
        ("/etc/passwd", "must be a relative path inside the workspace"),
        ("c/./x", "must be a relative path inside the workspace"),
        ("nothing/here.txt", "does not exist in this run's workspace"),
    ],
)
async def test_bad_or_missing_artifact_fails_the_step(
    sandbox: Sandbox, root: Path, path: str, message: str
) -> None:
    text = (
        "id: t\ninputs: {type: object, properties: {p: {type: string}}}\nnodes:\n"
        '  - {id: c, type: code, run: ls, artifacts: ["{{ inputs.p }}"]}\nedges: []\n'
    )
    steps = await _run(text, sandbox, root, {"p": path})
    assert message in (steps[0].error or "")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('run: "echo {{ inputs.x }}"', "cannot hold templates; use an argv list"),
        ("run: []", "needs at least the program"),
        ("run: ls, files: {/etc/x: y}", "must be a relative path inside the workspace"),
        ("run: ls, artifacts: [../../etc/passwd]", "artifact '../../etc/passwd' must be a relative path"),
        ("run: ls, artifacts: /etc/passwd", "artifact '/etc/passwd' must be a relative path"),
        ("run: ls, limits: {workspace: huge}", "bad size 'huge'"),
        ("run: ls, env: {1BAD: y}", "not a valid environment variable name"),
        ("run: ls, limits: {memory: lots}", "bad size 'lots'"),
        ("run: ls, limits: {cpu: forever}", "bad duration 'forever'"),
        ("run: ls, timeout: soon", "bad duration 'soon'"),
    ],
)
def test_load_time_checks(config: str, message: str) -> None:
    text = f"id: t\nnodes:\n  - {{id: c, type: code, {config}}}\nedges: []\n"
    with pytest.raises(InvalidWorkflow) as err:
        load_workflow_text(text, file="t.yml")
    assert message in str(err.value)


def test_sizes() -> None:
    assert parse_size("256MB") == 256 * 1024**2
    assert parse_size("1.5k") == 1536
    assert parse_size(4096) == 4096
