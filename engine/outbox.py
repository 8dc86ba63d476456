"""The outbox dispatcher: sends queued deliveries after their transaction committed.

Retries with exponential back-off, honours ``Retry-After``, and gives up (with an audit
event) only after ``max_attempts`` or on a permanent error, so nothing is silently lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from engine.errors import EngineError
from engine.faults import fault
from engine.model import Delivery, DeliveryStatus
from engine.observers import DeliveryFailed, Observer, bound_ids, emit
from engine.ports import AuditDraft, Clock, RunStore, Sender, SendResult

__all__ = ["Outbox", "Route", "same_message"]

# what tells two rows of one kind apart as different messages: a later reminder or escalation
# level is a new message to the same person, not one already sent
_MESSAGE_KEYS = ("index", "escalation", "level", "attempt")


def same_message(a: Delivery, b: Delivery) -> bool:
    """Whether ``b`` carries the same message as ``a`` (to whomever): same kind, same reminder
    index, escalation level and attempt. A fan-out skips only people sent this very message."""
    return a.kind == b.kind and all(a.payload.get(k) == b.payload.get(k) for k in _MESSAGE_KEYS)


log = logging.getLogger("signoff.outbox")


@dataclass(frozen=True)
class Route:
    """Where rows of one kind go instead of the default sender, and when they are retried.

    ``delays`` are the waits after each failed attempt (the n-th failure waits ``delays[n-1]``;
    a ``Retry-After`` wins); after the last one the row is marked failed.
    """

    sender: Sender
    delays: tuple[float, ...]


class Outbox:
    """Drains due deliveries through a Sender."""

    def __init__(
        self,
        store: RunStore,
        sender: Sender,
        clock: Clock,
        *,
        max_attempts: int = 8,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        claim_ttl: timedelta = timedelta(seconds=60),
        routes: Mapping[str, Route] | None = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        self.store = store
        self.routes = dict(routes or {})
        self.claim_ttl = claim_ttl
        self.sender = sender
        self.clock = clock
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        # shutting down: the row being sent is finished, no other row is started
        self.stopping = False
        self.observers = observers

    async def dispatch_due(self, limit: int = 50) -> int:
        """Send every due delivery once; returns how many were attempted."""
        due = await self.store.due_deliveries(self.clock.now(), limit)
        sent = 0
        for delivery in due:
            if self.stopping:
                break
            # the sender's log lines name the run and checkpoint the row is about
            with bound_ids(run_id=delivery.run_id, checkpoint_id=delivery.checkpoint_id, node_id=None):
                await self._send(delivery)
            sent += 1
        return sent

    async def drain(self, rounds: int = 20) -> None:
        """Dispatch until nothing is due (bounded), for tests and the CLI."""
        for _ in range(rounds):
            if not await self.dispatch_due():
                return

    def _delay(self, route: Route | None, attempts: int, result: SendResult) -> float | None:
        """How long to wait before the next attempt; None when this was the last one."""
        if route is not None:
            if attempts > len(route.delays):
                return None
            return result.retry_after or route.delays[attempts - 1]
        if attempts >= self.max_attempts:
            return None
        return result.retry_after or min(self.base_delay * 2 ** (attempts - 1), self.max_delay)

    async def _send(self, due: Delivery) -> None:
        # another replica may have read the same due row: only the one whose claim wins sends it
        now = self.clock.now()
        delivery = await self.store.claim_delivery(
            due.id, attempts=due.attempts, now=now, until=now + self.claim_ttl
        )
        if delivery is None:
            return
        try:
            result = await self._attempt(delivery)
        except asyncio.CancelledError:
            # cut short (shutdown): hand the claim back so that another process sends it now
            # rather than when the claim expires (the sender finds a copy a cut call left)
            await asyncio.shield(self._unclaim(delivery))
            raise
        if delivery.kind not in self.routes:  # the crash points count messages to people (Slack)
            fault("during_slack_call")
        attempts = delivery.attempts
        now = self.clock.now()
        if result.ok:
            await self.store.mark_delivery(
                delivery.id,
                status=DeliveryStatus.sent,
                attempts=attempts,
                next_attempt_at=now,
                channel_ref=result.channel_ref or delivery.channel_ref,
                message_ts=result.message_ts or delivery.message_ts,
            )
            return
        delay = self._delay(self.routes.get(delivery.kind), attempts, result)
        self._failed(delivery, result, final=not (result.retryable and delay is not None))
        if result.retryable and delay is not None:
            log.warning("delivery %s failed (%s); retrying in %.1fs", delivery.id, result.error, delay)
            await self.store.mark_delivery(
                delivery.id,
                status=DeliveryStatus.pending,
                attempts=attempts,
                next_attempt_at=now + timedelta(seconds=delay),
                error=result.error,
            )
            return
        log.error("delivery %s failed for good: %s", delivery.id, result.error)
        audit = AuditDraft(
            at=now,
            actor="engine",
            channel="outbox",
            kind="delivery.failed",
            run_id=delivery.run_id,
            checkpoint_id=delivery.checkpoint_id,
            payload={
                "delivery": delivery.id,
                "target": delivery.target,
                "kind": delivery.kind,
                "error": result.error,
            },
        )
        await self.store.mark_delivery(
            delivery.id,
            status=DeliveryStatus.failed,
            attempts=attempts,
            next_attempt_at=now,
            error=result.error,
            audit=[audit],
        )

    def _failed(self, delivery: Delivery, result: SendResult, *, final: bool) -> None:
        event = DeliveryFailed(
            at=self.clock.now(),
            delivery_id=delivery.id,
            delivery_kind=delivery.kind,
            method=result.method or delivery.kind,
            retryable=result.retryable,
            final=final,
        )
        emit(self.observers, event)

    async def _attempt(self, delivery: Delivery) -> SendResult:
        route = self.routes.get(delivery.kind)
        related: list[Delivery] = []
        if delivery.checkpoint_id is not None and route is None:
            related = [
                d
                for d in await self.store.list_deliveries(checkpoint_id=delivery.checkpoint_id)
                if d.id != delivery.id
            ]
        if route is None:  # the crash points count messages to people (Slack), not webhooks
            fault("after_outbox_row")
        sender = self.sender if route is None else route.sender
        try:
            return await sender.send(delivery, related)
        except EngineError as exc:
            return SendResult(ok=False, error=str(exc), retryable=True)

    async def _unclaim(self, delivery: Delivery) -> None:
        now = self.clock.now()
        if delivery.next_attempt_at <= now:
            return  # the claim already ran out: another process may own the row by now
        await self.store.mark_delivery(
            delivery.id,
            status=DeliveryStatus.pending,
            attempts=delivery.attempts,
            next_attempt_at=now,
            error="interrupted by a shutdown",
        )
        log.info("delivery %s handed back at shutdown", delivery.id)
