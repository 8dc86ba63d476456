"""Run leases (issue 6 §1): one process at a time, take-over after the TTL, stale commits refused.

Two engines (two "processes") share one store: in memory, SQLite and PostgreSQL. Process A runs
a slow HTTP node; the test controls when that call returns and what time it is.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.catalog import WorkflowCatalog
from engine.errors import LeaseLost
from engine.loader import load_workflow_text
from engine.model import RunStatus
from engine.nodes.base import NodeDeps
from engine.ports import HttpRequest, HttpResponse, Lease, RunChange, RunStore
from engine.service import Engine
from engine.testing import FixedClock, InMemoryRunStore, SeqIds
from tests.conftest import drop_pg_schema, pg_schema_url

WORKFLOW = """\
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


class WallClock:
    """Real time, for the heartbeat test that must really wait."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Spy:
    """Wraps a store and records the commits it refused with LeaseLost."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.refused: list[LeaseLost] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def commit(self, lease: Lease, change: RunChange) -> object:
        try:
            return await self.store.commit(lease, change)
        except LeaseLost as exc:
            self.refused.append(exc)
            raise


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunStore]:
    if request.param == "memory":
        yield InMemoryRunStore()
        return
    from storage import create_store

    schema = f"signoff_lease_{uuid.uuid4().hex[:10]}"
    url = f"sqlite:///{tmp_path / 'leases.db'}" if request.param == "sqlite" else pg_schema_url(schema)
    sql = await asyncio.to_thread(create_store, url)
    yield sql
    await sql.close()
    if request.param == "postgres":
        drop_pg_schema(schema)


def _engine(store: object, clock: object, http: object, owner: str, ttl: timedelta) -> Engine:
    wf = load_workflow_text(WORKFLOW, file="charge.yml", roles={})
    deps = NodeDeps(clock=clock, ids=SeqIds() if owner == "A" else _Ids(owner), http=http, roles={})  # type: ignore[arg-type]
    return Engine(
        store=store,  # type: ignore[arg-type]
        catalog=WorkflowCatalog({wf.id: wf}, roles={}),
        deps=deps,
        owner=owner,
        lease_ttl=ttl,
    )


class _Ids(SeqIds):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def new(self, prefix: str) -> str:
        return f"{self.prefix}{super().new(prefix)}"


async def _steps(store: RunStore, run_id: str) -> collections.Counter[str]:
    shown = await store.list_steps(run_id)
    return collections.Counter(f"{s.node_id}:{s.status.value}" for s in shown)


async def test_stuck_process_loses_its_run_and_its_commit_is_refused(store: RunStore) -> None:
    clock = FixedClock()
    slow, fast = SlowHttp(), SlowHttp()
    fast.release.set()
    spy = Spy(store)
    # the TTL is fake time; the heartbeat waits a third of it in real time, i.e. never in this test:
    # process A is frozen (GC pause, SIGSTOP, a hung host) and renews nothing
    a = _engine(spy, clock, slow, "A", timedelta(seconds=600))
    b = _engine(store, clock, fast, "B", timedelta(seconds=600))
    run = await a.start("charge", {}, requester="alice")
    driving = asyncio.create_task(a.drive(run.id))
    await asyncio.wait_for(slow.entered.wait(), 5)
    assert await b.drive(run.id) is None, "A holds the lease"

    clock.advance(601)
    taken = await b.drive(run.id)
    assert taken is not None
    assert taken.status is RunStatus.succeeded

    slow.release.set()
    assert await asyncio.wait_for(driving, 5) is None, "A noticed it lost the run"
    assert len(spy.refused) == 1
    assert "lease of A" in str(spy.refused[0])
    final = await store.get_run(run.id)
    assert final.status is RunStatus.succeeded
    assert await _steps(store, run.id) == {"prepare:succeeded": 1, "charge:succeeded": 1, "done:succeeded": 1}
    assert len(slow.calls) == 1
    assert len(fast.calls) == 1, "B re-ran the uncommitted call (at-least-once, with its idempotency key)"
    keys = {c.headers["Idempotency-Key"] for c in [*slow.calls, *fast.calls]}
    assert len(keys) == 1, "the same key both times, so the billing side can deduplicate"


async def test_heartbeat_keeps_a_slow_node_s_lease(store: RunStore) -> None:
    clock = WallClock()
    slow = SlowHttp()
    ttl = timedelta(seconds=0.3)
    a = _engine(store, clock, slow, "A", ttl)
    b = _engine(store, clock, SlowHttp(), "B", ttl)
    run = await a.start("charge", {}, requester="alice")
    driving = asyncio.create_task(a.drive(run.id))
    await asyncio.wait_for(slow.entered.wait(), 5)
    for _ in range(8):  # 1.2 s: four TTLs
        await asyncio.sleep(0.15)
        assert await b.drive(run.id) is None, "the lease was renewed while the node ran"
    slow.release.set()
    done = await asyncio.wait_for(driving, 5)
    assert done is not None
    assert done.status is RunStatus.succeeded
    assert await _steps(store, run.id) == {"prepare:succeeded": 1, "charge:succeeded": 1, "done:succeeded": 1}


async def test_heartbeat_that_finds_the_lease_taken_cancels_the_node(store: RunStore) -> None:
    clock = FixedClock()
    slow = SlowHttp()
    ttl = timedelta(seconds=0.3)  # beat every 0.1 s of real time
    a = _engine(store, clock, slow, "A", ttl)
    run = await a.start("charge", {}, requester="alice")
    driving = asyncio.create_task(a.drive(run.id))
    await asyncio.wait_for(slow.entered.wait(), 5)
    clock.advance(1)  # A's lease expired in the database's eyes; B claims it first
    claimed = await store.claim(run.id, "B", clock.now(), timedelta(seconds=60))
    assert claimed is not None
    assert await asyncio.wait_for(driving, 5) is None
    assert await _steps(store, run.id) == {"prepare:succeeded": 1, "charge:running": 1}
    assert len(slow.calls) == 1, "the node was cancelled, never released"
