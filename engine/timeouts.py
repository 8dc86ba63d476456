"""Deadlines, reminders and escalation chains of checkpoints.

The checkpoint's ``due_at`` is the source of truth; schedulers only decide *when* to call
``fire_deadline`` / ``send_reminder``, and both are idempotent: a deadline that fires twice, late,
or after a person decided changes nothing (compare-and-set on the checkpoint's version), and a
reminder has a deterministic delivery id, so it is queued at most once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from engine.commands import Decide
from engine.errors import Conflict, InvalidInput
from engine.escalation import Step, TimerPlan, escalates_to, escalation_steps, step_at, timer_plan
from engine.faults import fault
from engine.model import Checkpoint, CheckpointStatus, Delivery, HumanConfig
from engine.observers import TimerFired
from engine.policy import assignee_principals, card_targets
from engine.ports import AuditDraft, CheckpointUpdate
from engine.service import Engine

__all__ = ["Step", "Timeouts", "TimerPlan", "escalation_steps", "timer_plan"]

log = logging.getLogger("signoff.timeouts")


class Timeouts:
    """Applies deadlines and reminders through the engine."""

    def __init__(self, engine: Engine, *, queue_channel: str | None = None) -> None:
        self.engine = engine
        self.store = engine.store
        self.queue_channel = queue_channel

    async def config_of(self, cp: Checkpoint) -> HumanConfig:
        """The human node's config in the run's pinned workflow version."""
        run = await self.store.get_run(cp.run_id)
        return await self.config_in(run.workflow_hash, cp.node_id)

    async def config_in(self, workflow_hash: str, node_id: str) -> HumanConfig:
        """The human node's config in that workflow version (compiled once per process)."""
        workflow = await self.engine.catalog.pinned(workflow_hash, self.store)
        config = workflow.nodes[node_id].config
        assert isinstance(config, HumanConfig)
        return config

    async def fire_deadline(self, checkpoint_id: str, level: int | None = None) -> str:
        """Apply the next escalation step if the deadline has really passed; returns what happened."""
        cp = await self.store.get_checkpoint(checkpoint_id)
        now = self.engine.clock.now()
        if cp.status is not CheckpointStatus.open:
            return "closed"
        if level is not None and cp.escalation_level != level:
            return "stale"
        if cp.due_at is None or cp.due_at > now:
            return "not due"
        self.engine.emit(TimerFired(at=now, checkpoint_id=cp.id, timer="deadline", due_at=cp.due_at))
        config = await self.config_of(cp)
        step = step_at(config, cp.escalation_level, escalates_to(config, self.engine.catalog.roles))
        fault("during_deadline")
        try:
            if step.action in {"auto_approve", "auto_reject"}:
                await self._resolve(cp, step.action)
            else:
                await self._reassign(cp, step, config, now)
        except Conflict:
            return "lost race"
        return step.action

    async def _resolve(self, cp: Checkpoint, action: str) -> None:
        comment = f"no decision before the deadline ({cp.due_at:%Y-%m-%d %H:%M} UTC)" if cp.due_at else None
        command = Decide(
            checkpoint_id=cp.id,
            action="approve" if action == "auto_approve" else "reject",
            actor=f"policy:{action}",
            channel="scheduler",
            resolved_by="timeout",
            rule=action,
            comment=comment,
        )
        try:
            await self.engine.decide(command)
        except InvalidInput as exc:
            if action != "auto_approve":
                raise
            # the proposal cannot be approved as it stands (required fields missing): a timeout
            # must still end the checkpoint, so it is rejected by policy, saying why
            reason = f"auto_approve impossible ({exc}: {exc.errors}); rejected instead"
            await self.engine.decide(
                command.model_copy(
                    update={
                        "action": "reject",
                        "actor": "policy:auto_reject",
                        "rule": "auto_reject",
                        "comment": reason,
                    }
                )
            )

    async def _reassign(self, cp: Checkpoint, step: Step, config: HumanConfig, now: datetime) -> None:
        if step.action == "retry":
            assignees = cp.assignees
        elif step.action == "queue":
            target = step.to or (f"channel:{self.queue_channel}" if self.queue_channel else None)
            assignees = [target] if target else cp.assignees
        else:
            assignees = assignee_principals(step.to, cp.requester) or cp.assignees
        waited = (now - cp.created_at).total_seconds()
        due = now + step.timeout if step.timeout else None
        ids = self.engine.ids
        deliveries = [
            Delivery(
                id=ids.new("dlv_"),
                run_id=cp.run_id,
                checkpoint_id=cp.id,
                kind="checkpoint",
                target=target,
                payload={
                    "role": "assignee",
                    "escalation": step.action,
                    "from": cp.assignees,
                    "waited_s": round(waited),
                    "level": cp.escalation_level + 1,
                    "attempt": step.attempt,
                },
                next_attempt_at=now,
                created_at=now,
            )
            for target in assignees
        ]
        deliveries.append(
            Delivery(
                id=ids.new("dlv_"),
                run_id=cp.run_id,
                checkpoint_id=cp.id,
                kind="checkpoint_update",
                target=f"checkpoint:{cp.id}",
                next_attempt_at=now,
                created_at=now,
            )
        )
        audit = AuditDraft(
            at=now,
            actor=f"policy:{step.action}",
            channel="scheduler",
            kind=f"checkpoint.{'escalated' if step.action == 'escalate' else step.action}",
            run_id=cp.run_id,
            checkpoint_id=cp.id,
            payload={
                "from": cp.assignees,
                "to": assignees,
                "waited_s": round(waited),
                "level": cp.escalation_level + 1,
                "due_at": due.isoformat() if due else None,
            },
        )
        await self.store.update_checkpoint(
            CheckpointUpdate(
                checkpoint_id=cp.id,
                expected_version=cp.version,
                at=now,
                assignees=assignees,
                due_at=due,
                clear_due=due is None,
                escalation_level=cp.escalation_level + 1,
                deliveries=deliveries,
                audit=[audit],
            )
        )
        self.engine.changed(cp.run_id)

    async def send_reminder(self, checkpoint_id: str, index: int) -> bool:
        """Queue reminder ``index`` to the current assignees, at most once; False when not applicable."""
        cp = await self.store.get_checkpoint(checkpoint_id)
        if cp.status is not CheckpointStatus.open or cp.escalation_level != 0:
            return False
        now = self.engine.clock.now()
        left = (cp.due_at - now).total_seconds() if cp.due_at else None
        deliveries = [
            Delivery(
                id=f"rem_{cp.id}_{index}_{n}",
                run_id=cp.run_id,
                checkpoint_id=cp.id,
                kind="reminder",
                target=target,
                payload={"index": index, "left_s": None if left is None else round(left)},
                next_attempt_at=now,
                created_at=now,
            )
            for n, target in enumerate(card_targets(cp.assignees, cp.delegations))
        ]
        audit = AuditDraft(
            at=now,
            actor="policy:reminder",
            channel="scheduler",
            kind="checkpoint.reminded",
            run_id=cp.run_id,
            checkpoint_id=cp.id,
            payload={"index": index, "to": cp.assignees},
        )
        try:
            await self.store.add_deliveries(deliveries, [audit])
        except Conflict:
            return False
        self.engine.changed(cp.run_id)
        return True

    async def overdue(self) -> list[Checkpoint]:
        """Open checkpoints whose deadline has passed."""
        now = self.engine.clock.now()
        return [
            cp
            for cp in await self.store.list_checkpoints(open_only=True, limit=100_000)
            if cp.due_at and cp.due_at <= now
        ]
