"""RunStore contract: the outbox (deliveries queued in transactions, marked after sending)."""

from __future__ import annotations

import pytest

from engine.errors import NotFound
from engine.model import DeliveryStatus
from engine.ports import RunStore
from tests.contract import _data as d
from tests.contract._data import T0, at


async def test_add_list_and_due_in_creation_order(store: RunStore) -> None:
    first = d.delivery("dl_b", next_attempt_at=at(10))
    second = d.delivery("dl_a", run_id="run_2", checkpoint_id="cp_2", next_attempt_at=at(5))
    third = d.delivery("dl_c", checkpoint_id=None, run_id=None, kind="app_home", next_attempt_at=at(1))
    await store.add_deliveries([first, second], [d.draft("delivery.queued")])
    await store.add_deliveries([third], [])
    assert await store.list_deliveries() == [first, second, third]
    assert await store.list_deliveries(checkpoint_id="cp_2") == [second]
    assert await store.list_deliveries(run_id="run_1") == [first]
    assert await store.due_deliveries(T0) == []
    assert [x.id for x in await store.due_deliveries(at(5))] == ["dl_a", "dl_c"]
    assert [x.id for x in await store.due_deliveries(at(10))] == ["dl_b", "dl_a", "dl_c"]
    assert [x.id for x in await store.due_deliveries(at(10), limit=2)] == ["dl_b", "dl_a"]
    assert [e.kind for e in await store.audit_events()] == ["delivery.queued"]


async def test_mark_records_attempts_and_where_it_landed(store: RunStore) -> None:
    await store.add_deliveries([d.delivery()], [])
    await store.mark_delivery(
        "dl_1", status=DeliveryStatus.pending, attempts=1, next_attempt_at=at(30), error="ratelimited"
    )
    (retry,) = await store.list_deliveries()
    assert (retry.status, retry.attempts, retry.next_attempt_at, retry.error) == (
        DeliveryStatus.pending,
        1,
        at(30),
        "ratelimited",
    )
    assert await store.due_deliveries(at(29)) == []
    await store.mark_delivery(
        "dl_1",
        status=DeliveryStatus.sent,
        attempts=2,
        next_attempt_at=at(30),
        channel_ref="D123",
        message_ts="1700000000.000100",
        audit=[d.draft("delivery.sent")],
    )
    await store.mark_delivery("dl_1", status=DeliveryStatus.sent, attempts=3, next_attempt_at=at(40))
    (sent,) = await store.list_deliveries()
    assert (sent.status, sent.attempts, sent.error, sent.channel_ref, sent.message_ts) == (
        DeliveryStatus.sent,
        3,
        None,
        "D123",
        "1700000000.000100",
    )
    assert await store.due_deliveries(at(100)) == []
    assert [e.kind for e in await store.audit_events()] == ["delivery.sent"]


async def test_mark_unknown_delivery_is_not_found(store: RunStore) -> None:
    with pytest.raises(NotFound):
        await store.mark_delivery("dl_404", status=DeliveryStatus.failed, attempts=1, next_attempt_at=T0)
