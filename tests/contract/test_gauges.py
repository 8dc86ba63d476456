"""GaugeSource contract: the counts behind the gauges of ``/metrics``, on every store."""

from __future__ import annotations

from engine.model import CheckpointOutcome, DeliveryStatus, RunStatus, StepStatus
from engine.observers import Gauges, GaugeSource
from engine.ports import CheckpointUpdate, RunChange, RunStore
from tests.contract import _data as d
from tests.contract._data import at


def _source(store: RunStore) -> GaugeSource:
    assert isinstance(store, GaugeSource), f"{type(store).__name__} counts no gauges"
    return store


async def test_empty_store_counts_nothing(store: RunStore) -> None:
    assert await _source(store).gauges(at(0)) == Gauges(
        open_checkpoints=0, overdue_checkpoints=0, outbox_pending=0
    )


async def test_open_overdue_and_pending_are_counted_as_of_now(store: RunStore) -> None:
    lease = await d.started(store)
    await store.commit(
        lease,
        RunChange(
            at=at(1),
            checkpoints=[
                d.checkpoint("cp_1", due_at=at(100)),
                d.checkpoint("cp_2", due_at=at(200)),
                d.checkpoint("cp_3", due_at=None),
            ],
            deliveries=[d.delivery("dl_1"), d.delivery("dl_2"), d.delivery("dl_3")],
            status=RunStatus.waiting,
        ),
    )
    gauges = _source(store)
    assert await gauges.gauges(at(50)) == Gauges(open_checkpoints=3, overdue_checkpoints=0, outbox_pending=3)
    assert (await gauges.gauges(at(100))).overdue_checkpoints == 1, "due at exactly now is overdue"
    assert (await gauges.gauges(at(500))).overdue_checkpoints == 2, "no deadline is never overdue"

    await store.mark_delivery("dl_1", status=DeliveryStatus.sent, attempts=1, next_attempt_at=at(2))
    await store.mark_delivery("dl_2", status=DeliveryStatus.failed, attempts=8, next_attempt_at=at(2))
    await store.mark_delivery(
        "dl_3", status=DeliveryStatus.pending, attempts=1, next_attempt_at=at(900), error="ratelimited"
    )
    await store.update_checkpoint(
        CheckpointUpdate(
            checkpoint_id="cp_1",
            expected_version=0,
            at=at(60),
            resolve=True,
            outcome=CheckpointOutcome.approved,
            decision=d.decision("dec_1"),
            step=d.step("step_h", node_id="approve", node_type="human", status=StepStatus.succeeded),
        )
    )
    assert await gauges.gauges(at(500)) == Gauges(open_checkpoints=2, overdue_checkpoints=1, outbox_pending=1)
