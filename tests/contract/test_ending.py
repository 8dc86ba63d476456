"""RunStore contract: a run that ends leaves nothing to decide."""

from __future__ import annotations

import pytest

from engine.errors import Conflict
from engine.model import CheckpointOutcome, CheckpointStatus, RunStatus
from engine.ports import CheckpointUpdate, RunChange, RunStore
from tests.contract import _data as d
from tests.contract._data import at


async def test_finishing_a_run_closes_its_open_checkpoints(store: RunStore) -> None:
    lease = await d.started(store)
    await store.commit(lease, RunChange(at=at(1), checkpoints=[d.checkpoint()], pending_remove=["draft"]))
    await store.commit(
        lease,
        RunChange(at=at(2), status=RunStatus.failed, reason="boom", finished=True, release=True),
    )
    cp = await store.get_checkpoint("cp_1")
    assert (cp.status, cp.outcome, cp.version) == (CheckpointStatus.resolved, CheckpointOutcome.cancelled, 1)


async def test_no_decision_on_an_ended_run(store: RunStore) -> None:
    lease = await d.started(store)
    await store.commit(lease, RunChange(at=at(1), checkpoints=[d.checkpoint()], pending_remove=["draft"]))
    # an ended run whose checkpoint was somehow left open: the compare-and-set must still refuse
    await store.commit(lease, RunChange(at=at(2), status=RunStatus.failed, reason="boom", release=True))
    update = CheckpointUpdate(
        checkpoint_id="cp_1",
        expected_version=0,
        at=at(3),
        resolve=True,
        outcome=CheckpointOutcome.approved,
        decision=d.decision(),
    )
    with pytest.raises(Conflict, match="already ended"):
        await store.update_checkpoint(update)
    assert await store.list_decisions(checkpoint_id="cp_1") == []
    assert (await store.get_checkpoint("cp_1")).status is CheckpointStatus.open


async def test_cancel_queues_its_message_updates_in_the_same_transaction(store: RunStore) -> None:
    lease = await d.started(store)
    await store.commit(lease, RunChange(at=at(1), checkpoints=[d.checkpoint()], pending_remove=["draft"]))
    update = d.delivery("dl_upd", kind="checkpoint_update", target="checkpoint:cp_1")
    await store.cancel_run("run_1", at(2), "stop", [], [update])
    assert [x.id for x in await store.list_deliveries(checkpoint_id="cp_1")] == ["dl_upd"]
    assert (await store.get_checkpoint("cp_1")).outcome is CheckpointOutcome.cancelled
