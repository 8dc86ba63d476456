"""A decision that resumes its run takes the run's lease in the decision's own transaction
(``RunStore.resolve_and_claim``): the driver that follows needs no claim of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

import pytest

from engine.commands import Decide
from engine.model import Checkpoint, Run, RunStatus
from engine.ports import CheckpointUpdate, Claimed, Lease, RunChange
from engine.testing import InMemoryRunStore
from tests.unit.engine.conftest import World

GATE = """\
id: gate
inputs: {type: object, properties: {}}
nodes:
  - {id: ask, type: human, prompt: "Ship it?", assignee: "user:mia"}
  - {id: ship, type: set, data: {shipped: true}}
edges:
  - {from: ask, to: ship}
"""


class CountingStore(InMemoryRunStore):
    """The in-memory store, counting the calls that take a run's lease."""

    def __init__(self) -> None:
        super().__init__()
        self.claims: list[str] = []

    async def claim(self, run_id: str, owner: str, now: datetime, ttl: timedelta) -> Claimed | None:
        self.claims.append(f"claim {run_id}")
        return await super().claim(run_id, owner, now, ttl)

    async def resolve_and_claim(
        self, update: CheckpointUpdate, owner: str, ttl: timedelta
    ) -> tuple[Checkpoint, Claimed | None]:
        self.claims.append(f"resolve_and_claim {update.checkpoint_id}")
        return await super().resolve_and_claim(update, owner, ttl)


S = TypeVar("S", bound=InMemoryRunStore)


async def _waiting(make_world: Callable[..., World], store_for: Callable[[World], S]) -> tuple[World, S, str]:
    """An engine on the store ``store_for`` makes, its run waiting at ``ask``."""
    world = make_world(GATE)
    store = store_for(world)
    world.engine.store = store
    world.store = store
    run = await world.engine.start("gate", {}, requester="user:rex")
    await world.engine.drive(run.id)
    [cp] = await store.list_checkpoints(run_id=run.id, open_only=True)
    return world, store, cp.id


async def test_the_decision_claims_the_run_and_the_driver_uses_that_claim(
    make_world: Callable[..., World],
) -> None:
    world, store, cp_id = await _waiting(make_world, lambda _: CountingStore())
    store.claims.clear()
    await world.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="user:mia"))
    run = (await store.list_runs())[0]
    assert run.status is RunStatus.succeeded
    assert run.lease_owner is None, "released at the end"
    assert store.claims == [f"resolve_and_claim {cp_id}"], "no second claim before the next node"


async def test_a_draining_engine_records_the_decision_and_leaves_the_run_for_another(
    make_world: Callable[..., World],
) -> None:
    world, store, cp_id = await _waiting(make_world, lambda _: CountingStore())
    store.claims.clear()
    world.engine.draining = True
    await world.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="user:mia"))
    run = (await store.list_runs())[0]
    assert (run.status, run.lease_owner, run.pending) == (RunStatus.queued, None, ["ship"])
    assert all(not c.startswith("resolve_and_claim") for c in store.claims)


class AnswersLate(InMemoryRunStore):
    """Commits a decision at once and answers only when ``answer`` is set: what the SQL stores
    do while the caller waits for the database thread (the thread commits even if the caller
    is cancelled meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.committed = asyncio.Event()
        self.answer = asyncio.Event()

    async def resolve_and_claim(
        self, update: CheckpointUpdate, owner: str, ttl: timedelta
    ) -> tuple[Checkpoint, Claimed | None]:
        result = await super().resolve_and_claim(update, owner, ttl)
        self.committed.set()
        await asyncio.shield(self.answer.wait())
        return result


async def test_a_decision_cut_short_after_its_commit_gives_the_lease_back(
    make_world: Callable[..., World],
) -> None:
    world, store, cp_id = await _waiting(make_world, lambda _: AnswersLate())
    [run] = await store.list_runs()
    deciding = asyncio.ensure_future(
        world.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="user:mia"))
    )
    await asyncio.wait_for(store.committed.wait(), 10)
    deciding.cancel()  # a shutdown, a request cut short
    with pytest.raises(asyncio.CancelledError):
        await deciding
    store.answer.set()
    deadline = asyncio.get_running_loop().time() + 10
    while (await store.get_run(run.id)).lease_owner is not None:
        assert asyncio.get_running_loop().time() < deadline, "the lease stayed with a decider that stopped"
        await asyncio.sleep(0.01)
    assert (await store.get_run(run.id)).pending == ["ship"], "decided"
    assert await store.runnable_runs(world.clock.now()) == [run.id], "any process may resume it now"


class LapsesBeforeDriving(CountingStore):
    """After the decision claims the run, time passes (a slow model check of the answer) and
    another process takes the lapsed lease over."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.commits_by: list[str] = []

    async def resolve_and_claim(
        self, update: CheckpointUpdate, owner: str, ttl: timedelta
    ) -> tuple[Checkpoint, Claimed | None]:
        result = await super().resolve_and_claim(update, owner, ttl)
        self.world.clock.advance(ttl.total_seconds() + 1)
        assert await super().claim(result[0].run_id, "other-process", self.world.clock.now(), ttl)
        return result

    async def commit(self, lease: Lease, change: RunChange) -> Run:
        self.commits_by.append(lease.owner)
        return await super().commit(lease, change)


async def test_no_node_runs_under_a_claim_that_lapsed_before_driving(
    make_world: Callable[..., World],
) -> None:
    world, store, cp_id = await _waiting(make_world, LapsesBeforeDriving)
    [run] = await store.list_runs()
    store.commits_by.clear()
    await world.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="user:mia"))
    assert store.commits_by == [], "the decider checked its lease before the next node, and stopped"
    stored = await store.get_run(run.id)
    assert (stored.lease_owner, stored.pending) == ("other-process", ["ship"])
