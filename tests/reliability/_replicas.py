"""Two ``signoff serve`` replicas on one database (issue 6 §3), shared by the CI test and
``bench/replicas.py``.

Runs are started through both replicas; each pauses at a checkpoint with two assignees. Every
decision is then delivered three times: the click to one replica, the same payload again as a
redelivery (``X-Slack-Retry-Num: 1``) to the other, and a second click of the same person (a
double click) to either. The figures count what must be exactly one each.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from bot.blocks.checkpoint import APPROVE
from engine.model import DeliveryStatus, RunStatus
from tests.reliability._cluster import MANAGER, Cluster, Server, card_posts, has_buttons

T = TypeVar("T")


@dataclass
class ReplicaFigures:
    """Counts after the load; every ``*_duplicates`` must be 0 and the rest equal ``runs``."""

    runs: int
    requests: int
    decisions: int
    resumes: int
    succeeded: int
    step_duplicates: int
    decision_duplicates: int
    card_duplicates: int
    update_duplicates: int
    message_duplicates: int
    cards_not_final: int
    deliveries_unsent: int
    seconds: float

    def as_json(self) -> str:
        """One line of JSON."""
        return json.dumps(asdict(self))


async def _bounded(jobs: Sequence[Awaitable[T]], limit: int) -> list[T]:
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))


async def _all_waiting(cluster: Cluster, runs: int) -> list[tuple[str, str]] | None:
    cps = await cluster.store.list_checkpoints(open_only=True, limit=runs * 2)
    if len(cps) < runs:
        return None
    posted = [
        d
        for d in await cluster.store.list_deliveries()
        if d.kind == "checkpoint" and d.target.startswith("user:") and d.message_ts
    ]
    return [(c.id, c.run_id) for c in cps] if len(posted) >= 2 * runs else None


async def _all_settled(cluster: Cluster, run_ids: list[str]) -> bool:
    runs = {r.id: r for r in await cluster.store.list_runs(limit=len(run_ids) * 2)}
    if not all(runs[r].status.final for r in run_ids):
        return False
    return all(d.status is not DeliveryStatus.pending for d in await cluster.store.list_deliveries())


async def replica_load(cluster: Cluster, runs: int, *, concurrency: int = 16) -> ReplicaFigures:
    """Start two replicas, drive ``runs`` runs through them, and count (see module docstring)."""
    began = time.monotonic()
    a = await cluster.start(name="replica-a")
    b = await cluster.start(name="replica-b")
    pair = (a, b)
    commands = [
        cluster.command(pair[i % 2], f"run refund customer=C{i:05d} amount={i % 500 + 1}")
        for i in range(runs)
    ]
    assert set(await _bounded(commands, concurrency)) == {200}
    waiting = await cluster.until(lambda: _all_waiting(cluster, runs), timeout=60 + runs * 0.2)

    def deliveries(i: int, cp_id: str) -> list[Awaitable[int]]:
        first, other = pair[i % 2], pair[(i + 1) % 2]
        click = cluster.click_payload(APPROVE, cp_id, MANAGER)
        again = cluster.click_payload(APPROVE, cp_id, MANAGER)
        return [
            cluster.interact(first, click),
            cluster.interact(
                other, click, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
            ),
            cluster.interact(pair[i % 3 % 2], again),
        ]

    sent = [job for i, (cp_id, _) in enumerate(waiting) for job in deliveries(i, cp_id)]
    statuses = await _bounded(sent, concurrency)
    assert set(statuses) == {200}, collections.Counter(statuses)
    run_ids = [run_id for _, run_id in waiting]
    await cluster.until(lambda: _all_settled(cluster, run_ids), timeout=60 + runs * 0.3)
    return await _count(cluster, run_ids, len(sent), time.monotonic() - began)


async def _count(cluster: Cluster, run_ids: list[str], requests: int, seconds: float) -> ReplicaFigures:
    store = cluster.store
    decisions = await store.list_decisions()
    per_cp = collections.Counter(d.checkpoint_id for d in decisions)
    events = await store.audit_events()
    done = collections.Counter(
        (e.run_id, e.payload.get("node")) for e in events if e.kind in {"step.succeeded", "checkpoint.opened"}
    )
    recorded = collections.Counter(e.checkpoint_id for e in events if e.kind == "decision.recorded")
    runs = [await store.get_run(r) for r in run_ids]
    fake = cluster.fake
    posts = fake.calls_to("chat.postMessage")
    cards = collections.Counter(
        (c.params.get("channel"), _header(c.params.get("blocks")))
        for c in posts
        if _header(c.params.get("blocks"))
    )
    texts = collections.Counter(
        (c.params.get("channel"), c.params.get("text")) for c in posts if not _header(c.params.get("blocks"))
    )
    updates = collections.Counter(
        (c.params.get("channel"), c.params.get("ts")) for c in fake.calls_to("chat.update")
    )
    unsent = [d for d in await store.list_deliveries() if d.status is not DeliveryStatus.sent]
    return ReplicaFigures(
        runs=len(run_ids),
        requests=requests,
        decisions=len(decisions),
        resumes=sum(1 for (_, node), n in done.items() if node == "send" for _ in range(n)),
        succeeded=sum(r.status is RunStatus.succeeded for r in runs),
        step_duplicates=sum(n - 1 for n in done.values()),
        decision_duplicates=sum(n - 1 for n in per_cp.values()) + sum(n - 1 for n in recorded.values()),
        card_duplicates=sum(n - 1 for n in cards.values()),
        update_duplicates=sum(n - 1 for n in updates.values()),
        message_duplicates=sum(n - 1 for n in texts.values()),
        cards_not_final=sum(has_buttons(m) for m in card_posts(fake)),
        deliveries_unsent=len(unsent),
        seconds=round(seconds, 1),
    )


def _header(raw: Any) -> str | None:
    blocks = json.loads(raw) if isinstance(raw, str) else raw
    for block in blocks or []:
        block_id = str(block.get("block_id", ""))
        if block_id.startswith("header:v"):
            return block_id
    return None


__all__ = ["ReplicaFigures", "Server", "replica_load"]
