"""RunStore contract: ``claim_delivery``, the compare-and-set that lets one process send a row."""

from __future__ import annotations

import asyncio

from engine.model import DeliveryStatus
from engine.ports import RunStore
from tests.contract import _data as d
from tests.contract._data import T0, at


async def test_one_claim_wins_and_moves_the_next_attempt(store: RunStore) -> None:
    await store.add_deliveries([d.delivery("dl_1", next_attempt_at=T0)], [])
    won = await store.claim_delivery("dl_1", attempts=0, now=at(1), until=at(61))
    assert won is not None
    assert (won.attempts, won.next_attempt_at, won.status) == (1, at(61), DeliveryStatus.pending)
    assert await store.claim_delivery("dl_1", attempts=0, now=at(1), until=at(61)) is None, "same read"
    assert await store.claim_delivery("dl_1", attempts=1, now=at(2), until=at(62)) is None, "not due"
    assert await store.due_deliveries(at(60)) == []
    assert [x.id for x in await store.due_deliveries(at(61))] == ["dl_1"], "a crashed sender's row"
    again = await store.claim_delivery("dl_1", attempts=1, now=at(61), until=at(121))
    assert again is not None
    assert again.attempts == 2


async def test_sent_failed_and_unknown_rows_are_not_claimed(store: RunStore) -> None:
    await store.add_deliveries([d.delivery("dl_1", next_attempt_at=T0)], [])
    await store.mark_delivery("dl_1", status=DeliveryStatus.sent, attempts=1, next_attempt_at=T0)
    assert await store.claim_delivery("dl_1", attempts=1, now=at(5), until=at(65)) is None
    assert await store.claim_delivery("dl_404", attempts=0, now=at(5), until=at(65)) is None


async def test_concurrent_claims_of_one_row_have_one_winner(store: RunStore) -> None:
    await store.add_deliveries([d.delivery(f"dl_{i}", next_attempt_at=T0) for i in range(5)], [])
    tries = [
        store.claim_delivery(f"dl_{i}", attempts=0, now=at(1), until=at(61))
        for i in range(5)
        for _ in range(4)
    ]
    won = [c for c in await asyncio.gather(*tries) if c is not None]
    assert sorted(c.id for c in won) == [f"dl_{i}" for i in range(5)]
