"""Graceful shutdown, engine side: no node starts, runs are finished or released, a cut-short
send hands its outbox row back. Before, a stopping process kept its leases until they expired
and its claimed rows until the claim ran out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from engine.model import Delivery, DeliveryStatus, RunStatus, StepStatus
from engine.nodes.base import NodeDeps
from engine.outbox import Outbox
from engine.ports import HttpRequest, HttpResponse, SendResult
from engine.service import Engine
from engine.testing import SeqIds
from tests.unit.engine.conftest import ROLES, RecordingSender, World

CALL = """\
id: call
inputs: {type: object, properties: {}}
nodes:
  - id: prepare
    type: set
    data: {n: 1}
  - id: call
    type: http
    request: {method: POST, url: "https://billing.test/refunds", json: {n: 1}}
  - id: book
    type: set
    data: {booked: true}
edges:
  - {from: prepare, to: call}
  - {from: call, to: book}
"""

ASK = """\
id: ask
inputs: {type: object, properties: {}}
nodes:
  - id: ask
    type: human
    prompt: "Ship it?"
    assignee: user:mia
"""


class HeldHttp:
    """An HttpClient that answers only once ``release`` is set."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def request(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        self.started.set()
        await self.release.wait()
        return HttpResponse(status=200, text='{"id": "re_1"}')


def other_engine(w: World, http: HeldHttp) -> Engine:
    """A second process on the same store."""
    deps = NodeDeps(clock=w.clock, ids=SeqIds(), http=http, roles=ROLES)
    return Engine(store=w.store, catalog=w.catalog, deps=deps, owner="test-2")


async def test_a_node_cut_short_releases_its_run_and_another_process_continues_it(
    make_world: Callable[..., World],
) -> None:
    w = make_world(CALL)
    http = HeldHttp()
    w.engine.deps.http = http
    run = await w.engine.start("call", {}, requester="alice")
    driving = asyncio.create_task(w.engine.drive(run.id))
    await asyncio.wait_for(http.started.wait(), 10)
    assert w.engine.driving == [run.id]

    assert await w.engine.finish_driving(0.05) == [run.id]

    with pytest.raises(asyncio.CancelledError):
        await driving
    held = await w.store.get_run(run.id)
    assert (held.lease_owner, held.lease_expires_at) == (None, None)
    assert held.pending == ["call"]
    assert w.engine.driving == []
    assert await w.store.runnable_runs(w.clock.now()) == [run.id]

    http.release.set()
    done = await other_engine(w, http).drive(run.id)
    assert done is not None
    assert done.status is RunStatus.succeeded
    calls = [s for s in await w.store.list_steps(run.id) if s.node_id == "call"]
    assert [(s.status, s.attempt) for s in calls] == [(StepStatus.succeeded, 2)]
    first, second = http.requests
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]


async def test_a_node_that_ends_in_time_is_committed_and_the_next_one_is_left(
    make_world: Callable[..., World],
) -> None:
    w = make_world(CALL)
    http = HeldHttp()
    w.engine.deps.http = http
    run = await w.engine.start("call", {}, requester="alice")
    driving = asyncio.create_task(w.engine.drive(run.id))
    await asyncio.wait_for(http.started.wait(), 10)
    finishing = asyncio.create_task(w.engine.finish_driving(30))
    await asyncio.sleep(0)
    http.release.set()

    assert await finishing == []
    released = await driving
    assert released is not None
    held = await w.store.get_run(run.id)
    assert (held.lease_owner, held.pending) == (None, ["book"])
    assert {s.node_id: s.status for s in await w.store.list_steps(run.id)} == {
        "prepare": StepStatus.succeeded,
        "call": StepStatus.succeeded,
    }


async def test_a_run_started_while_draining_is_not_driven_but_released(
    make_world: Callable[..., World],
) -> None:
    w = make_world(CALL)
    run = await w.engine.start("call", {}, requester="alice")  # leased to this engine
    assert await w.engine.finish_driving(1) == []
    assert await w.engine.drive(run.id) is None
    held = await w.store.get_run(run.id)
    assert (held.lease_owner, held.status, await w.store.list_steps(run.id)) == (None, RunStatus.queued, [])


class HeldSender(RecordingSender):
    """A sender whose call does not return until cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.calling = asyncio.Event()

    async def send(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        self.calling.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_send_cut_short_hands_its_row_back_at_once(make_world: Callable[..., World]) -> None:
    w = make_world(ASK)
    run = await w.engine.start("ask", {}, requester="alice")
    await w.engine.drive(run.id)
    sender = HeldSender()
    outbox = Outbox(w.store, sender, w.clock)
    sending = asyncio.create_task(outbox.dispatch_due())
    await asyncio.wait_for(sender.calling.wait(), 10)
    outbox.stopping = True
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending

    [row] = await w.store.list_deliveries(run_id=run.id)
    assert (row.status, row.attempts) == (DeliveryStatus.pending, 1)
    assert row.next_attempt_at <= w.clock.now(), "the claim must not outlive the process"
    other = RecordingSender()
    assert await Outbox(w.store, other, w.clock).dispatch_due() == 1
    assert [d.id for d in other.sent] == [row.id]


async def test_a_stopping_outbox_finishes_its_row_and_starts_no_other(
    make_world: Callable[..., World],
) -> None:
    w = make_world(ASK)
    for _ in range(3):
        run = await w.engine.start("ask", {}, requester="alice")
        await w.engine.drive(run.id)
    sender = RecordingSender()
    outbox = Outbox(w.store, sender, w.clock)

    class StopAfterOne(RecordingSender):
        async def send(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
            outbox.stopping = True
            return await sender.send(delivery, related)

    outbox.sender = StopAfterOne()
    assert await outbox.dispatch_due() == 1
    statuses = sorted(d.status.value for d in await w.store.list_deliveries())
    assert statuses == ["pending", "pending", "sent"]
