"""Operator controls (issue 14): pause stops a run between steps, resume continues it elsewhere.

Two engines (two "processes", each with its own connection) share one database: SQLite, and
PostgreSQL when ``SIGNOFF_TEST_POSTGRES_URL`` is set. Process A runs a slow HTTP node; the
pause is issued through process B while that node runs, and reaches A only through the
database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from engine.catalog import WorkflowCatalog
from engine.commands import Cancel, Decide, Pause, Resume
from engine.errors import Conflict, NotAllowed
from engine.loader import load_workflow_text
from engine.model import RunStatus
from engine.nodes.base import NodeDeps
from engine.ports import HttpRequest, HttpResponse, RunStore
from engine.roles import Role
from engine.service import Engine
from engine.testing import FixedClock, SeqIds
from tests.conftest import drop_pg_schema, pg_schema_url

CHAIN = """\
id: charge
nodes:
  - id: prepare
    type: set
    data: {amount: 42}
  - id: charge
    type: http
    request: {method: POST, url: "https://billing.test/charges", json: {amount: 42}}
  - id: done
    type: set
    data: {ok: true}
edges:
  - {from: prepare, to: charge}
  - {from: charge, to: done}
"""

APPROVAL = """\
id: approve
nodes:
  - id: ask
    type: human
    prompt: Ship it?
    assignee: user:bob
  - id: ship
    type: set
    data: {shipped: true}
edges:
  - {from: ask, to: ship, when: "response.action == 'approve'"}
"""

ROLES = {"admin": Role(members=["user:olga"], admin=True)}


class SlowHttp:
    """An HttpClient whose calls wait until the test releases them."""

    def __init__(self) -> None:
        self.calls: list[HttpRequest] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def request(self, request: HttpRequest) -> HttpResponse:
        self.calls.append(request)
        self.entered.set()
        await self.release.wait()
        return HttpResponse(status=200, text='{"charged": true}')


class _Ids(SeqIds):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def new(self, prefix: str) -> str:
        return f"{self.prefix}{super().new(prefix)}"


@dataclass
class Pair:
    """Two stores on one database, as two processes have."""

    a: RunStore
    b: RunStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pair]:
    from storage import create_store

    schema = f"signoff_ctl_{uuid.uuid4().hex[:10]}"
    url = f"sqlite:///{tmp_path / 'control.db'}" if request.param == "sqlite" else pg_schema_url(schema)
    a = await asyncio.to_thread(create_store, url)
    b = await asyncio.to_thread(create_store, url)
    yield Pair(a, b)
    await a.close()
    await b.close()
    if request.param == "postgres":
        drop_pg_schema(schema)


def _engine(store: RunStore, clock: FixedClock, http: object, owner: str) -> Engine:
    workflows = [
        load_workflow_text(text, file=f"{n}.yml", roles=ROLES) for n, text in [("c", CHAIN), ("a", APPROVAL)]
    ]
    deps = NodeDeps(clock=clock, ids=_Ids(owner), http=http, roles=ROLES)  # type: ignore[arg-type]
    return Engine(
        store=store,
        catalog=WorkflowCatalog({w.id: w for w in workflows}, roles=ROLES),
        deps=deps,
        owner=owner,
        lease_ttl=timedelta(seconds=600),
    )


async def test_pause_stops_between_steps_and_resume_continues_on_another_process(pair: Pair) -> None:
    clock = FixedClock()
    slow = SlowHttp()
    fast = SlowHttp()
    fast.release.set()
    a = _engine(pair.a, clock, slow, "A")
    b = _engine(pair.b, clock, fast, "B")
    run = await a.start("charge", {}, requester="alice")
    driving = asyncio.create_task(a.drive(run.id))
    await asyncio.wait_for(slow.entered.wait(), 10)

    paused = await b.pause(Pause(run_id=run.id, actor="alice", reason="checking the amount"))
    assert paused.paused_by == "alice"
    slow.release.set()
    stopped = await asyncio.wait_for(driving, 10)
    assert stopped is not None
    assert not stopped.status.final

    after = await pair.b.get_run(run.id)
    steps = {s.node_id: s.status.value for s in await pair.b.list_steps(run.id)}
    assert steps == {"prepare": "succeeded", "charge": "succeeded"}, "the step in flight committed, no other"
    assert after.pending == ["done"]
    assert after.lease_owner is None, "A released the paused run"
    assert after.paused_at is not None

    # nobody picks up a paused run
    assert run.id not in await pair.b.runnable_runs(clock.now())
    assert await b.drive(run.id) is None
    assert await b.recover() == 0
    assert len(await pair.b.list_steps(run.id)) == 2

    with pytest.raises(Conflict, match="paused by alice"):
        await b.pause(Pause(run_id=run.id, actor="alice"))
    with pytest.raises(NotAllowed, match="can resume"):
        await b.resume(Resume(run_id=run.id, actor="mallory"))

    resumed = await b.resume(Resume(run_id=run.id, actor="olga"))  # an admin
    assert resumed.paused_at is None
    done = await b.drive(run.id)
    assert done is not None
    assert done.status is RunStatus.succeeded
    final = {s.node_id: s for s in await pair.a.list_steps(run.id)}
    assert final["done"].id.startswith("B"), "process B ran the rest"
    assert len(slow.calls) == 1
    assert fast.calls == [], "the committed charge never ran again"

    events = [(e.kind, e.actor, e.channel) for e in await pair.a.audit_events(run_id=run.id)]
    assert ("run.paused", "alice", "cli") in events
    assert ("run.resumed", "olga", "cli") in events
    with pytest.raises(Conflict, match="already ended"):
        await a.resume(Resume(run_id=run.id, actor="alice"))


async def test_a_paused_run_takes_decisions_but_does_not_advance(pair: Pair) -> None:
    clock = FixedClock()
    a = _engine(pair.a, clock, SlowHttp(), "A")
    b = _engine(pair.b, clock, SlowHttp(), "B")
    run = await a.start("approve", {}, requester="alice")
    waiting = await a.drive(run.id)
    assert waiting is not None
    assert waiting.status is RunStatus.waiting
    with pytest.raises(NotAllowed, match="can pause"):
        await a.pause(Pause(run_id=run.id, actor="bob"))
    await a.pause(Pause(run_id=run.id, actor="alice"))

    (cp,) = await pair.b.list_checkpoints(run_id=run.id)
    decision = await b.decide(Decide(checkpoint_id=cp.id, action="approve", actor="bob"))
    assert decision is not None
    held = await pair.a.get_run(run.id)
    assert held.pending == ["ship"]
    assert not held.status.final
    assert "ship" not in {s.node_id for s in await pair.a.list_steps(run.id)}
    assert await a.recover() == 0

    await a.resume(Resume(run_id=run.id, actor="alice"))
    done = await b.drive(run.id)
    assert done is not None
    assert done.status is RunStatus.succeeded


async def test_a_paused_run_can_be_cancelled(pair: Pair) -> None:
    clock = FixedClock()
    a = _engine(pair.a, clock, SlowHttp(), "A")
    run = await a.start("approve", {}, requester="alice")
    await a.drive(run.id)
    await a.pause(Pause(run_id=run.id, actor="alice"))
    cancelled = await a.cancel(Cancel(run_id=run.id, actor="alice"))
    assert cancelled.status is RunStatus.cancelled
    assert cancelled.paused_at is None, "an ended run is not paused"
    with pytest.raises(Conflict, match="already ended"):
        await a.resume(Resume(run_id=run.id, actor="alice"))
