"""The engine's shared state and helpers (private: use ``engine.service.Engine``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from engine.agents import is_agent
from engine.catalog import WorkflowCatalog
from engine.errors import NotFound
from engine.events import EventType, event_delivery
from engine.gate import Gate
from engine.limits import ExecutionLimits, Layer
from engine.model import (
    Checkpoint,
    Delivery,
    Limits,
    Run,
)
from engine.nodes.base import NodeDeps
from engine.observers import EngineEvent, Observer, emit
from engine.ports import AuditDraft, Claimed, RunStore
from engine.sensitive import Redactor, run_redactor

__all__ = ["EngineCore"]


class EngineCore:
    """Ports, settings and the helpers every part of the engine uses."""

    def __init__(
        self,
        *,
        store: RunStore,
        catalog: WorkflowCatalog,
        deps: NodeDeps,
        owner: str,
        lease_ttl: timedelta = timedelta(seconds=30),
        on_change: Callable[[str], None] | None = None,
        delegation_max: timedelta = timedelta(days=30),
        webhook_events: bool = False,
        limits: Limits | None = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.deps = deps
        if deps.store is None:
            deps.store = store
        self.clock = deps.clock
        self.ids = deps.ids
        self.owner = owner
        self.lease_ttl = lease_ttl
        self.delegation_max = delegation_max
        self.on_change = on_change
        # production processes queue webhook events (bot.wiring turns this on); engine unit
        # tests leave their outboxes as they were
        self.webhook_events = webhook_events
        # metrics, logs and traces (bot/telemetry); they watch and never change a run
        self.observers: list[Observer] = list(observers)
        self._published: set[str] = set()
        self._held: dict[str, Claimed] = {}
        # leases being given back in the background (a decision cut short after it claimed)
        self._releasing: set[asyncio.Task[None]] = set()
        # shutting down: no node starts, a run about to be driven is released (engine._draining)
        self.draining = False
        self._driving: dict[str, asyncio.Task[object] | None] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self.gate = Gate(roles=catalog.roles, deps=deps, store=store)
        # asked before every node; ``limits`` are the deployment's (SIGNOFF_MAX_*), which each
        # workflow's own ``limits:`` may tighten
        self.limits = ExecutionLimits(limits)
        self.layers: list[Layer] = [self.limits]

    async def redactor(self, run: Run) -> Redactor:
        """What every surface masks when it shows ``run``: the values its workflow's inputs schema
        and its checkpoints' response schemas mark sensitive (``engine.sensitive``)."""
        try:
            workflow = await self.catalog.pinned(run.workflow_hash, self.store)
            schema: Any = workflow.inputs
        except NotFound:
            schema = {}
        return await run_redactor(self.store, run, schema)

    # ------------------------------------------------------------------ helpers

    def _audit(
        self,
        kind: str,
        actor: str,
        channel: str,
        run_id: str | None,
        checkpoint_id: str | None = None,
        *,
        payload: dict[str, Any] | None = None,
    ) -> AuditDraft:
        return AuditDraft(
            at=self.clock.now(),
            actor=actor,
            channel=channel,
            kind=kind,
            run_id=run_id,
            checkpoint_id=checkpoint_id,
            payload=payload or {},
        )

    def emit(self, event: EngineEvent) -> None:
        """Tell the observers (metrics, logs, traces) of a change that has been committed."""
        emit(self.observers, event)

    def changed(self, run_id: str) -> None:
        """Tell the process's observers (outbox, scheduler, App Home) that a run changed."""
        self._changed(run_id)

    def _changed(self, run_id: str) -> None:
        if self.on_change is not None:
            self.on_change(run_id)

    def _notices(self, run: Run, text: str, detail: str | None, *, retry: bool = False) -> list[Delivery]:
        """The notice to the run's requester; none when an agent asked (it reads the API and
        its webhooks, there is nobody to message). ``retry``: it offers a rerun (a failed run)."""
        if is_agent(run.requester):
            return []
        now = self.clock.now()
        return [
            Delivery(
                id=self.ids.new("dlv_"),
                run_id=run.id,
                kind="requester_notice",
                target=f"user:{run.requester}",
                payload={
                    "text": text,
                    "detail": detail,
                    "origin": run.origin,
                    **({"retry": True} if retry else {}),
                },
                next_attempt_at=now,
                created_at=now,
            )
        ]

    def _events(self, event: EventType, run_id: str, checkpoint_id: str | None = None) -> list[Delivery]:
        """The outbox row of a webhook event, queued with the change it reports (none when this
        engine queues no webhook events)."""
        if not self.webhook_events:
            return []
        return [event_delivery(self.ids, self.clock.now(), event, run_id, checkpoint_id)]

    def _update_delivery(self, cp: Checkpoint, now: Any) -> Delivery:
        return Delivery(
            id=self.ids.new("dlv_"),
            run_id=cp.run_id,
            checkpoint_id=cp.id,
            kind="checkpoint_update",
            target=f"checkpoint:{cp.id}",
            next_attempt_at=now,
            created_at=now,
        )
