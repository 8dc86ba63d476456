"""A decision that resumes its run takes the run's lease in the decision's own transaction
(``RunStore.resolve_and_claim``): the driver that follows needs no claim of its own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from engine.commands import Decide
from engine.model import Checkpoint, RunStatus
from engine.ports import CheckpointUpdate, Claimed
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


async def _waiting(make_world: Callable[..., World]) -> tuple[World, CountingStore, str]:
    """An engine on a counting store, its run waiting at ``ask``; no claim counted yet."""
    world = make_world(GATE)
    store = CountingStore()
    world.engine.store = store
    world.store = store
    run = await world.engine.start("gate", {}, requester="user:rex")
    await world.engine.drive(run.id)
    [cp] = await store.list_checkpoints(run_id=run.id, open_only=True)
    store.claims.clear()
    return world, store, cp.id


async def test_the_decision_claims_the_run_and_the_driver_uses_that_claim(
    make_world: Callable[..., World],
) -> None:
    world, store, cp_id = await _waiting(make_world)
    await world.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="user:mia"))
    run = (await store.list_runs())[0]
    assert run.status is RunStatus.succeeded
    assert run.lease_owner is None, "released at the end"
    assert store.claims == [f"resolve_and_claim {cp_id}"], "no second claim before the next node"


async def test_a_draining_engine_records_the_decision_and_leaves_the_run_for_another(
    make_world: Callable[..., World],
) -> None:
    world, store, cp_id = await _waiting(make_world)
    world.engine.draining = True
    await world.engine.decide(Decide(checkpoint_id=cp_id, action="approve", actor="user:mia"))
    run = (await store.list_runs())[0]
    assert (run.status, run.lease_owner, run.pending) == (RunStatus.queued, None, ["ship"])
    assert all(not c.startswith("resolve_and_claim") for c in store.claims)
