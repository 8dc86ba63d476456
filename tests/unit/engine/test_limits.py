"""Execution limits (issue 14): per workflow and per deployment, enforced before every node."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from engine.catalog import WorkflowCatalog
from engine.errors import InvalidWorkflow
from engine.loader import load_workflow_text
from engine.model import Limits, RunStatus
from engine.nodes.base import NodeDeps
from engine.ports import HttpRequest, HttpResponse, LLMRequest, LLMResponse
from engine.service import Engine
from engine.testing import FixedClock, InMemoryRunStore, SeqIds
from tests.unit.engine.conftest import World


def _chain(length: int, limits: str = "") -> str:
    nodes = "".join(f"  - {{id: n{i}, type: set, data: {{i: {i}}}}}\n" for i in range(length))
    edges = "".join(f"  - {{from: n{i}, to: n{i + 1}}}\n" for i in range(length - 1))
    return f"id: chain\n{limits}nodes:\n{nodes}edges:\n{edges}"


async def test_max_steps_stops_a_chain_longer_than_the_limit(make_world: Callable[..., World]) -> None:
    w = make_world(_chain(8, "limits: {max_steps: 3}\n"))
    run = await w.engine.start("chain", {}, requester="alice")
    ended = await w.engine.drive(run.id)
    assert ended is not None
    assert ended.status is RunStatus.failed
    assert ended.reason == (
        "execution limit max_steps reached: 3 node executions, the limit is 3 (stopped before node 'n3')"
    )
    assert ended.pending == []
    assert [s.node_id for s in await w.store.list_steps(run.id)] == ["n0", "n1", "n2"]
    failed = [e for e in await w.store.audit_events(run_id=run.id) if e.kind == "run.failed"]
    assert len(failed) == 1
    assert "max_steps" in failed[0].payload["reason"]
    notices = [d for d in w.store._deliveries.values() if d.kind == "requester_notice"]
    assert any("max_steps" in str(d.payload.get("detail")) for d in notices), "the requester is told why"


async def test_a_chain_within_its_limit_succeeds(make_world: Callable[..., World]) -> None:
    w = make_world(_chain(3, "limits: {max_steps: 3, max_wall_time: 1h, max_tokens: 10, max_cost: 0.5}\n"))
    run = await w.engine.start("chain", {}, requester="alice")
    ended = await w.engine.drive(run.id)
    assert ended is not None
    assert ended.status is RunStatus.succeeded


class HangingHttp:
    """An HttpClient whose calls never return: the process is killed while the node runs."""

    def __init__(self) -> None:
        self.calls: list[HttpRequest] = []
        self.entered = asyncio.Event()

    async def request(self, request: HttpRequest) -> HttpResponse:
        self.calls.append(request)
        self.entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


CRASHING = """\
id: crashing
limits: {max_steps: 3}
nodes:
  - id: call
    type: http
    request: {method: POST, url: "https://hangs.test/x"}
"""


async def test_max_steps_stops_a_node_that_keeps_being_rerun_after_a_crash() -> None:
    wf = load_workflow_text(CRASHING, file="crashing.yml")
    store, clock, http = InMemoryRunStore(), FixedClock(), HangingHttp()
    engine = Engine(
        store=store,
        catalog=WorkflowCatalog({wf.id: wf}),
        deps=NodeDeps(clock=clock, ids=SeqIds(), http=http),
        owner="p",
    )
    run = await engine.start("crashing", {}, requester="alice")
    for attempt in range(1, 4):
        # the process dies while the node runs; the run is handed back and run again
        http.entered.clear()
        driving = asyncio.create_task(engine.drive(run.id))
        await asyncio.wait_for(http.entered.wait(), 5)
        driving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await driving
        (step,) = await store.list_steps(run.id)
        assert step.attempt == attempt
    ended = await engine.drive(run.id)
    assert ended is not None
    assert ended.status is RunStatus.failed
    assert ended.reason is not None
    assert ended.reason.startswith("execution limit max_steps reached: 3 node executions")
    assert len(http.calls) == 3, "the looping node was not started a fourth time"


async def test_the_deployment_limit_applies_and_a_workflow_may_only_tighten_it() -> None:
    loose = load_workflow_text(_chain(6, "limits: {max_steps: 5}\n"), file="c.yml")
    engine = Engine(
        store=InMemoryRunStore(),
        catalog=WorkflowCatalog({loose.id: loose}),
        deps=NodeDeps(clock=FixedClock(), ids=SeqIds()),
        owner="p",
        limits=Limits(max_steps=2),
    )
    run = await engine.start("chain", {}, requester="alice")
    ended = await engine.drive(run.id)
    assert ended is not None
    assert ended.status is RunStatus.failed
    assert ended.reason is not None
    assert "the limit is 2 " in ended.reason
    assert engine.limits.of(loose) == Limits(max_steps=2)
    strict = Limits(max_steps=1, max_cost=1.0)
    assert Limits(max_steps=4, max_wall_time=timedelta(seconds=9)).within(strict) == Limits(
        max_steps=1, max_wall_time=timedelta(seconds=9), max_cost=1.0
    )


async def test_max_wall_time_counts_from_the_start(make_world: Callable[..., World]) -> None:
    w = make_world(_chain(2, "limits: {max_wall_time: 30m}\n"))
    run = await w.engine.start("chain", {}, requester="alice")
    w.clock.advance(31 * 60)
    ended = await w.engine.drive(run.id)
    assert ended is not None
    assert ended.status is RunStatus.failed
    assert ended.reason == (
        "execution limit max_wall_time reached: 1860s since the start, the limit is 1800s"
        " (stopped before node 'n0')"
    )


class CountingLLM:
    """The LLM port: each answer uses 600 tokens and costs $0.02."""

    def __init__(self) -> None:
        self.requests: list[LLMRequest] = []

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        return LLMResponse(text="ok", model=request.model, input_tokens=500, output_tokens=100, cost_usd=0.02)


def _llm_chain(limits: str) -> str:
    nodes = "".join(f"  - {{id: n{i}, type: llm, prompt: 'step {i}'}}\n" for i in range(5))
    edges = "".join(f"  - {{from: n{i}, to: n{i + 1}}}\n" for i in range(4))
    return f"id: talk\nlimits: {limits}\nnodes:\n{nodes}edges:\n{edges}"


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ("{max_tokens: 1500}", "execution limit max_tokens reached: 1800 tokens, the limit is 1500"),
        ("{max_cost: 0.05}", "execution limit max_cost reached: $0.0600, the limit is $0.0500"),
    ],
)
async def test_tokens_and_cost_stop_a_run(limits: str, reason: str) -> None:
    wf = load_workflow_text(_llm_chain(limits), file="t.yml", llm_available=True)
    llm = CountingLLM()
    deps = NodeDeps(clock=FixedClock(), ids=SeqIds(), llm=llm, default_model="claude-test")
    engine = Engine(store=InMemoryRunStore(), catalog=WorkflowCatalog({wf.id: wf}), deps=deps, owner="t")
    run = await engine.start(wf.id, {}, requester="alice")
    ended = await engine.drive(run.id)
    assert ended is not None
    assert ended.status is RunStatus.failed
    assert ended.reason == f"{reason} (stopped before node 'n3')"
    assert len(llm.requests) == 3


def test_bad_limits_are_located_load_errors() -> None:
    text = _chain(
        2,
        "limits:\n  max_steps: 0\n  max_wall_time: soon\n  max_tokens: many\n"
        "  max_cost: -1\n  max_loops: 3\n",
    )
    with pytest.raises(InvalidWorkflow) as caught:
        load_workflow_text(text, file="chain.yml")
    shown = [str(i) for i in caught.value.issues]
    assert shown == [
        "chain.yml:3: field 'limits.max_steps': must be a whole number of steps, 1 or more, not 0",
        "chain.yml:4: field 'limits.max_wall_time': bad duration 'soon': use a number with a unit,"
        " like 30s, 30m, 4h or 7d",
        "chain.yml:5: field 'limits.max_tokens': must be a whole number of tokens, 1 or more, not 'many'",
        "chain.yml:6: field 'limits.max_cost': must be a positive amount in USD, like 0.50, not -1",
        "chain.yml:7: field 'limits.max_loops': unknown limit 'max_loops' (allowed: max_steps,"
        " max_wall_time, max_tokens, max_cost)",
    ]
    with pytest.raises(InvalidWorkflow, match="'limits' must be a mapping"):
        load_workflow_text(_chain(2, "limits: 5\n"), file="chain.yml")
