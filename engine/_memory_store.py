"""InMemoryRunStore: the RunStore port in plain Python, for fast engine tests.

It follows the same contract as the SQL store (tests/contract runs one suite on both): every
method is atomic (no ``await`` inside), values are copied in and out so callers cannot change
stored state by mutating what they passed or got, and audit events are chained exactly as the
SQL store chains them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel

from engine._memory_clients import InMemoryClients
from engine._memory_installations import InMemoryInstallations
from engine._memory_people import InMemoryPeople
from engine.audit import GENESIS_HASH, PURGED, event_hash, purge_payload, purged_comment, sha256_of
from engine.errors import Conflict, LeaseLost, NotFound
from engine.model import (
    AuditEvent,
    Checkpoint,
    CheckpointOutcome,
    CheckpointStatus,
    Decision,
    Delegation,
    Deliverable,
    Delivery,
    DeliveryStatus,
    Run,
    RunStatus,
    Step,
    WorkflowPublication,
    WorkflowVersion,
)
from engine.observers import Gauges
from engine.ports import (
    AuditDraft,
    CheckpointTimes,
    CheckpointUpdate,
    Claimed,
    Lease,
    PurgeReport,
    RunChange,
    TimerQuery,
    conflict_message,
    merge_pending,
)
from engine.versions import published_event

__all__ = ["InMemoryRunStore"]

M = TypeVar("M", bound=BaseModel)


_PURGED = "(removed by the retention policy)"


def _marker(value: Any) -> dict[str, Any]:
    return {PURGED: sha256_of(_as_stored(value))}


def _copy(model: M) -> M:
    # times read back in UTC, like a timestamptz column
    utc = {
        k: v.astimezone(UTC)
        for k, v in model
        if isinstance(v, datetime) and v.tzinfo is not None and v.utcoffset() != timedelta(0)
    }
    return model.model_copy(update=utc, deep=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        at = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _as_stored(payload: dict[str, Any]) -> dict[str, Any]:
    # what a JSON column gives back: the SQL store hashes and returns exactly this
    result: dict[str, Any] = json.loads(json.dumps(payload, default=_json_default))
    return result


class InMemoryRunStore(InMemoryPeople, InMemoryClients, InMemoryInstallations):
    """A ``RunStore`` (and ``PeopleStore`` and ``ClientStore``) kept in dictionaries.

    Insertion order is creation order.
    """

    def __init__(self) -> None:
        self._workflows: dict[str, WorkflowVersion] = {}
        self._publications: list[WorkflowPublication] = []
        self._runs: dict[str, Run] = {}
        self._steps: dict[str, Step] = {}
        self._checkpoints: dict[str, Checkpoint] = {}
        self._decisions: dict[str, Decision] = {}
        self._deliveries: dict[str, Delivery] = {}
        self._audit: list[AuditEvent] = []
        self._delegations: list[Delegation] = []

    # ------------------------------------------------------------------ helpers

    def _run(self, run_id: str) -> Run:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFound(f"run {run_id} not found")
        return run

    def _set_run(self, run: Run, **changes: Any) -> Run:
        updated = run.model_copy(update=changes)
        self._runs[run.id] = updated
        return updated

    def _append(self, drafts: list[AuditDraft]) -> None:
        prev = self._audit[-1].hash if self._audit else GENESIS_HASH
        for draft in drafts:
            seq = len(self._audit) + 1
            payload = _as_stored(draft.payload)
            fields = draft.model_dump(exclude={"payload"})
            digest = event_hash(seq=seq, payload=payload, prev_hash=prev, sealed=True, **fields)
            self._audit.append(
                AuditEvent(seq=seq, payload=payload, prev_hash=prev, hash=digest, sealed=True, **fields)
            )
            prev = digest

    def _add_deliveries(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            if d.id in self._deliveries:
                raise Conflict(f"delivery {d.id} already exists")
        for d in deliveries:
            self._deliveries[d.id] = _copy(d)

    @staticmethod
    def _check_lease(run: Run, lease: Lease) -> None:
        if run.lease_owner != lease.owner or run.lease_epoch != lease.epoch:
            raise LeaseLost(
                f"run {run.id}: lease of {lease.owner} (epoch {lease.epoch}) is lost; "
                f"now held by {run.lease_owner or 'nobody'} (epoch {run.lease_epoch})"
            )

    # ------------------------------------------------------------------ workflows and runs

    async def publish_workflow(self, version: WorkflowVersion) -> None:
        """Store a workflow version; publishing the same hash again is a no-op."""
        self._workflows.setdefault(version.content_hash, _copy(version))

    async def get_workflow_version(self, content_hash: str) -> WorkflowVersion:
        """The pinned source of a workflow version. Raises NotFound."""
        if content_hash not in self._workflows:
            raise NotFound(f"workflow version {content_hash} not found")
        return _copy(self._workflows[content_hash])

    async def publish_version(
        self, version: WorkflowVersion, *, label: str, note: str, actor: str, channel: str | None = None
    ) -> tuple[WorkflowPublication, bool]:
        """Store the source and publish it under the next number unless it is the newest."""
        await self.publish_workflow(version)
        mine = [p for p in self._publications if p.workflow_id == version.workflow_id]
        if mine and mine[-1].content_hash == version.content_hash:
            return mine[-1], False
        publication = WorkflowPublication(
            workflow_id=version.workflow_id,
            version=len(mine) + 1,
            content_hash=version.content_hash,
            label=label,
            note=note,
            actor=actor,
            published_at=version.created_at,
        )
        self._publications.append(publication)
        if channel is not None:
            self._append([published_event(publication, channel)])
        return publication, True

    async def list_publications(self, workflow_id: str | None = None) -> list[WorkflowPublication]:
        """Publications oldest first: of one workflow, or of all (by id, then number)."""
        found = [p for p in self._publications if workflow_id is None or p.workflow_id == workflow_id]
        return sorted(found, key=lambda p: (p.workflow_id, p.version))

    async def create_run(self, run: Run, audit: list[AuditDraft], steps: list[Step] | None = None) -> None:
        """Insert a new run (and the steps it starts with). Raises Conflict when the id exists."""
        if run.id in self._runs:
            raise Conflict(f"run {run.id} already exists")
        self._runs[run.id] = _copy(run)
        for step in steps or []:
            self._steps[step.id] = _copy(step)
        self._append(audit)

    async def reopen_run(self, run_id: str, at: datetime, steps: list[Step], audit: list[AuditDraft]) -> Run:
        """Queue a failed run again with ``steps`` pending. Raises Conflict or NotFound."""
        run = self._run(run_id)
        if run.status is not RunStatus.failed:
            raise Conflict(f"run {run_id} is {run.status.value}, not failed")
        for step in steps:
            self._steps[step.id] = _copy(step)
        updated = self._set_run(
            run,
            status=RunStatus.queued,
            reason=None,
            finished_at=None,
            updated_at=at,
            pending=[s.node_id for s in steps],
            lease_owner=None,
            lease_expires_at=None,
        )
        self._append(audit)
        return _copy(updated)

    async def reruns_of(self, run_id: str) -> list[Run]:
        """The runs that rerun ``run_id``, oldest first."""
        return [_copy(r) for r in self._runs.values() if r.rerun_of == run_id]

    async def claim_run(self, run_id: str, owner: str, now: datetime, ttl: timedelta) -> Lease | None:
        """Take the lease of a non-final run when free or expired; None otherwise."""
        return self._claim(run_id, owner, now, ttl)

    def _claim(self, run_id: str, owner: str, now: datetime, ttl: timedelta) -> Lease | None:
        run = self._run(run_id)
        held = (
            run.lease_owner is not None and run.lease_expires_at is not None and run.lease_expires_at >= now
        )
        if run.status.final or held or run.paused_at is not None:
            return None
        status = RunStatus.running if run.status is RunStatus.queued else run.status
        epoch = run.lease_epoch + 1
        self._set_run(
            run,
            lease_owner=owner,
            lease_epoch=epoch,
            lease_expires_at=now + ttl,
            status=status,
            updated_at=now,
        )
        return Lease(run_id=run_id, owner=owner, epoch=epoch, expires_at=now + ttl)

    async def claim(self, run_id: str, owner: str, now: datetime, ttl: timedelta) -> Claimed | None:
        """``claim_run`` plus the run and its steps, atomically."""
        return self._claim_with_steps(run_id, owner, now, ttl)

    def _claim_with_steps(self, run_id: str, owner: str, now: datetime, ttl: timedelta) -> Claimed | None:
        lease = self._claim(run_id, owner, now, ttl)
        if lease is None:
            return None
        return Claimed(lease=lease, run=_copy(self._runs[run_id]), steps=self._steps_of(run_id))

    async def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        """Extend a held lease. Raises LeaseLost."""
        run = self._run(lease.run_id)
        self._check_lease(run, lease)
        self._set_run(run, lease_expires_at=now + ttl)
        return lease.model_copy(update={"expires_at": now + ttl})

    async def commit(self, lease: Lease, change: RunChange) -> Run:
        """Apply a step's results atomically. Raises LeaseLost under a stale lease."""
        run = self._run(lease.run_id)
        self._check_lease(run, lease)
        for c in change.checkpoints:
            if c.id in self._checkpoints:
                raise Conflict(f"checkpoint {c.id} already exists")
        if any(d.id in self._deliveries for d in change.deliveries):
            raise Conflict("delivery already exists")
        for step in change.steps:
            self._steps[step.id] = _copy(step)
        for c in change.checkpoints:
            self._checkpoints[c.id] = _copy(c)
        changes: dict[str, Any] = {
            "updated_at": change.at,
            "rejected": run.rejected or change.rejected,
            "pending": merge_pending(run.pending, change.pending_remove, change.pending_add),
        }
        if change.status is not None:
            changes["status"] = change.status
        if change.reason is not None:
            changes["reason"] = change.reason
        if change.finished:
            changes["finished_at"] = change.at
            self._close_checkpoints(run.id, change.at)
        if change.release:
            changes.update(lease_owner=None, lease_expires_at=None)
        updated = self._set_run(run, **changes)
        self._add_deliveries(change.deliveries)
        self._append(change.audit)
        return _copy(updated)

    async def update_checkpoint(self, update: CheckpointUpdate) -> Checkpoint:
        """Compare-and-set on the checkpoint version. Raises Conflict or NotFound."""
        current = self._checkpoints.get(update.checkpoint_id)
        if current is None:
            raise NotFound(f"checkpoint {update.checkpoint_id} not found")
        if current.status is not CheckpointStatus.open or current.version != update.expected_version:
            raise self._conflict(current, update)
        owner = self._run(current.run_id)
        if owner.status.final:
            raise Conflict(
                f"run {owner.id} already ended ({owner.status.value}); nothing is decided any more"
            )
        if update.resolve and update.decision is not None and update.decision.id in self._decisions:
            raise Conflict(f"decision {update.decision.id} already exists")
        if any(d.id in self._deliveries for d in update.deliveries):
            raise Conflict("delivery already exists")
        changes: dict[str, Any] = {"version": current.version + 1}
        if update.resolve:
            changes.update(status=CheckpointStatus.resolved, outcome=update.outcome, resolved_at=update.at)
        for name in (
            "approvals",
            "assignees",
            "escalation_level",
            "priority",
            "due_at",
            "proposed",
            "editors",
            "shown_hash",
            "content_version",
        ):
            if getattr(update, name) is not None:
                changes[name] = getattr(update, name)
        if update.clear_due:
            changes["due_at"] = None
        checkpoint = current.model_copy(update=changes, deep=True)
        self._checkpoints[checkpoint.id] = checkpoint
        if update.resolve and update.decision is not None:
            self._decisions[update.decision.id] = _copy(update.decision)
        if update.step is not None:
            self._steps[update.step.id] = _copy(update.step)
        run = self._run(current.run_id)
        run_changes: dict[str, Any] = {}
        if update.pending_add:
            run_changes["pending"] = merge_pending(run.pending, [], update.pending_add)
        if update.rejected and not run.rejected:
            run_changes["rejected"] = True
        if update.resolve and run.status is RunStatus.waiting:
            run_changes["status"] = RunStatus.queued
        if run_changes:
            self._set_run(run, updated_at=update.at, **run_changes)
        self._add_deliveries(update.deliveries)
        self._append(update.audit)
        return _copy(checkpoint)

    async def resolve_and_claim(
        self, update: CheckpointUpdate, owner: str, ttl: timedelta
    ) -> tuple[Checkpoint, Claimed | None]:
        """``update_checkpoint`` then ``claim`` of its run, with no await between: atomic here."""
        checkpoint = await self.update_checkpoint(update)
        return checkpoint, self._claim_with_steps(checkpoint.run_id, owner, update.at, ttl)

    def _conflict(self, current: Checkpoint, update: CheckpointUpdate) -> Conflict:
        if current.status is CheckpointStatus.resolved:
            won = next((d for d in self._decisions.values() if d.checkpoint_id == current.id), None)
            if won is not None:
                text = conflict_message(current.id, current.outcome, won.actor, won.created_at, won.action)
                return Conflict(text, winner=won.actor, at=won.created_at, action=won.action)
            action = current.outcome.value if current.outcome is not None else None
            text = conflict_message(current.id, current.outcome, None, current.resolved_at, None)
            return Conflict(text, at=current.resolved_at, action=action)
        return Conflict(
            f"checkpoint {current.id} changed concurrently "
            f"(version {current.version}, expected {update.expected_version}): reload and try again"
        )

    def _close_checkpoints(self, run_id: str, at: datetime) -> None:
        for c in list(self._checkpoints.values()):
            if c.run_id == run_id and c.status is CheckpointStatus.open:
                self._checkpoints[c.id] = c.model_copy(
                    update={
                        "status": CheckpointStatus.resolved,
                        "outcome": CheckpointOutcome.cancelled,
                        "resolved_at": at,
                        "version": c.version + 1,
                    }
                )

    async def cancel_run(
        self,
        run_id: str,
        at: datetime,
        reason: str,
        audit: list[AuditDraft],
        deliveries: list[Delivery] | None = None,
    ) -> Run:
        """Cancel a non-final run. Raises Conflict (already final) or NotFound."""
        run = self._run(run_id)
        if run.status.final:
            raise Conflict(f"run {run_id} already {run.status.value}")
        if any(d.id in self._deliveries for d in deliveries or []):
            raise Conflict("delivery already exists")
        self._close_checkpoints(run_id, at)
        self._add_deliveries(list(deliveries or []))
        updated = self._set_run(
            run,
            status=RunStatus.cancelled,
            reason=reason,
            finished_at=at,
            updated_at=at,
            pending=[],
            lease_owner=None,
            lease_expires_at=None,
            lease_epoch=run.lease_epoch + 1,
            paused_at=None,
            paused_by=None,
        )
        self._append(audit)
        return _copy(updated)

    async def pause_run(
        self, run_id: str, at: datetime, paused_by: str | None, audit: list[AuditDraft]
    ) -> Run:
        """Pause (``paused_by`` set) or resume (None) a non-final run. Raises Conflict or NotFound."""
        run = self._run(run_id)
        if run.status.final:
            raise Conflict(f"run {run_id} already ended ({run.status.value})")
        if (run.paused_at is not None) == (paused_by is not None):
            state = f"paused by {run.paused_by}" if run.paused_at is not None else "not paused"
            raise Conflict(f"run {run_id} is {state}")
        updated = self._set_run(
            run, paused_at=at if paused_by is not None else None, paused_by=paused_by, updated_at=at
        )
        self._append(audit)
        return _copy(updated)

    # ------------------------------------------------------------------ queries

    async def get_run(self, run_id: str) -> Run:
        """One run. Raises NotFound."""
        return _copy(self._run(run_id))

    async def list_runs(
        self,
        *,
        status: list[RunStatus] | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        search: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[Run]:
        """Runs, newest first (a search matches part of the id, workflow id or requester)."""
        ordered = sorted(reversed(self._runs.values()), key=lambda r: r.created_at, reverse=True)
        if before is not None:
            ids = [r.id for r in ordered]
            at = ids.index(before[1]) + 1 if before[1] in ids else None
            ordered = ordered[at:] if at is not None else [r for r in ordered if r.created_at < before[0]]
        needle = (search or "").lower()
        found = [
            r
            for r in ordered
            if (status is None or r.status in status)
            and (workflow_id is None or r.workflow_id == workflow_id)
            and (not needle or any(needle in v.lower() for v in (r.id, r.workflow_id, r.requester)))
        ]
        return [_copy(r) for r in found[:limit]]

    async def list_steps(self, run_id: str) -> list[Step]:
        """A run's steps in start order (ties in insertion order)."""
        return self._steps_of(run_id)

    async def steps_of_runs(
        self, *, created_since: datetime, created_until: datetime, workflow_id: str | None = None
    ) -> list[Step]:
        """See ``RunStore.steps_of_runs``."""
        runs = {
            r.id
            for r in self._runs.values()
            if created_since <= r.created_at <= created_until and workflow_id in (None, r.workflow_id)
        }
        found = sorted((s for s in self._steps.values() if s.run_id in runs), key=lambda s: s.started_at)
        return [_copy(s) for s in found]

    def _steps_of(self, run_id: str) -> list[Step]:
        found = sorted((s for s in self._steps.values() if s.run_id == run_id), key=lambda s: s.started_at)
        return [_copy(s) for s in found]

    async def checkpoint_outcomes(self, run_ids: list[str]) -> dict[str, set[CheckpointOutcome]]:
        """See ``RunStore.checkpoint_outcomes``."""
        wanted = set(run_ids)
        found: dict[str, set[CheckpointOutcome]] = {}
        for c in self._checkpoints.values():
            if c.run_id in wanted and c.outcome is not None:
                found.setdefault(c.run_id, set()).add(c.outcome)
        return found

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        """One checkpoint. Raises NotFound."""
        if checkpoint_id not in self._checkpoints:
            raise NotFound(f"checkpoint {checkpoint_id} not found")
        return _copy(self._checkpoints[checkpoint_id])

    async def load_checkpoint(self, checkpoint_id: str) -> tuple[Checkpoint, Run, list[Step]]:
        """A checkpoint, its run and the run's steps, atomically. Raises NotFound."""
        cp = self._checkpoints.get(checkpoint_id)
        if cp is None:
            raise NotFound(f"checkpoint {checkpoint_id} not found")
        return _copy(cp), _copy(self._run(cp.run_id)), self._steps_of(cp.run_id)

    async def gauges(self, now: datetime) -> Gauges:
        """Open and overdue checkpoints, and outbox rows not yet sent."""
        opened = [c for c in self._checkpoints.values() if c.status is CheckpointStatus.open]
        return Gauges(
            open_checkpoints=len(opened),
            overdue_checkpoints=sum(1 for c in opened if c.due_at is not None and c.due_at <= now),
            outbox_pending=sum(1 for d in self._deliveries.values() if d.status is DeliveryStatus.pending),
        )

    async def list_checkpoints(
        self, *, run_id: str | None = None, open_only: bool = False, limit: int = 500
    ) -> list[Checkpoint]:
        """Checkpoints, newest first."""
        found = [
            c
            for c in reversed(self._checkpoints.values())
            if (run_id is None or c.run_id == run_id) and (not open_only or c.status is CheckpointStatus.open)
        ]
        found.sort(key=lambda c: c.created_at, reverse=True)
        return [_copy(c) for c in found[:limit]]

    async def timer_nodes(self) -> list[tuple[str, str]]:
        """The distinct ``(workflow_hash, node_id)`` of open checkpoints with a deadline."""
        return sorted(
            {
                (self._run(c.run_id).workflow_hash, c.node_id)
                for c in self._checkpoints.values()
                if c.status is CheckpointStatus.open and c.due_at is not None
            }
        )

    async def checkpoint_times(self, query: TimerQuery) -> list[CheckpointTimes]:
        """One page of open checkpoints with a deadline (see ``TimerQuery``)."""
        found = []
        for c in self._checkpoints.values():
            if c.status is not CheckpointStatus.open or c.due_at is None:
                continue
            if query.ids is not None and c.id not in query.ids:
                continue
            if query.due_before is not None and c.due_at > query.due_before:
                continue
            key = (c.due_at, c.id)
            if query.opened_between is not None:
                start, end = query.opened_between
                if c.escalation_level != 0 or not start < c.created_at <= end:
                    continue
                key = (c.created_at, c.id)
            if query.after is None or key > query.after:
                found.append((key, c))
        found.sort(key=lambda pair: pair[1].id if query.ids is not None else pair[0])
        return [
            CheckpointTimes(
                checkpoint_id=c.id,
                run_id=c.run_id,
                node_id=c.node_id,
                workflow_hash=self._run(c.run_id).workflow_hash,
                due_at=c.due_at,
                escalation_level=c.escalation_level,
                created_at=c.created_at,
            )
            for _, c in found[: query.limit]
            if c.due_at is not None
        ]

    async def open_checkpoints_for(
        self, principals: list[str], *, limit: int = 100, before: tuple[datetime, str] | None = None
    ) -> list[Checkpoint]:
        """Open checkpoints assigned to any of ``principals``, newest first."""
        wanted = set(principals)
        found = [
            c
            for c in self._checkpoints.values()
            if c.status is CheckpointStatus.open
            and wanted & set(c.assignees)
            and (before is None or (c.created_at, c.id) < before)
        ]
        found.sort(key=lambda c: (c.created_at, c.id), reverse=True)
        return [_copy(c) for c in found[:limit]]

    async def open_principals(
        self, kinds: tuple[str, ...] = ("group", "channel")
    ) -> list[tuple[str, str | None]]:
        """Distinct ``(principal, team)`` of ``kinds`` among open checkpoints' assignees."""
        found = {
            (a, c.team)
            for c in self._checkpoints.values()
            if c.status is CheckpointStatus.open
            for a in c.assignees
            if a.split(":", 1)[0] in kinds
        }
        return sorted(found, key=lambda pair: (pair[0], pair[1] or ""))

    async def list_decisions(
        self, *, run_id: str | None = None, checkpoint_id: str | None = None
    ) -> list[Decision]:
        """Resolving decisions in decision order."""
        return [
            _copy(d)
            for d in self._decisions.values()
            if (run_id is None or d.run_id == run_id)
            and (checkpoint_id is None or d.checkpoint_id == checkpoint_id)
        ]

    async def runnable_runs(self, now: datetime, limit: int = 100) -> list[str]:
        """Ids of non-final runs with pending work and a free or expired lease."""
        out = []
        for r in self._runs.values():
            work = bool(r.pending) or r.status in (RunStatus.queued, RunStatus.running)
            free = r.lease_owner is None or r.lease_expires_at is None or r.lease_expires_at < now
            if not r.status.final and work and free and r.paused_at is None:
                out.append(r.id)
        return out[:limit]

    # ------------------------------------------------------------------ outbox

    async def due_deliveries(self, now: datetime, limit: int = 100) -> list[Delivery]:
        """Pending outbox rows whose next attempt is due, oldest first."""
        due = [
            d
            for d in self._deliveries.values()
            if d.status is DeliveryStatus.pending and d.next_attempt_at <= now
        ]
        return [_copy(d) for d in due[:limit]]

    async def claim_delivery(
        self, delivery_id: str, *, attempts: int, now: datetime, until: datetime
    ) -> Delivery | None:
        """Take a due row for one attempt (compare-and-set on ``attempts``)."""
        current = self._deliveries.get(delivery_id)
        if (
            current is None
            or current.status is not DeliveryStatus.pending
            or current.attempts != attempts
            or current.next_attempt_at > now
        ):
            return None
        claimed = current.model_copy(update={"attempts": attempts + 1, "next_attempt_at": until})
        self._deliveries[delivery_id] = claimed
        return _copy(claimed)

    async def list_deliveries(
        self, *, checkpoint_id: str | None = None, run_id: str | None = None
    ) -> list[Delivery]:
        """Outbox rows in creation order."""
        return [
            _copy(d)
            for d in self._deliveries.values()
            if (checkpoint_id is None or d.checkpoint_id == checkpoint_id)
            and (run_id is None or d.run_id == run_id)
        ]

    async def add_deliveries(self, deliveries: list[Delivery], audit: list[AuditDraft]) -> None:
        """Queue outbox rows outside a run commit."""
        self._add_deliveries(deliveries)
        self._append(audit)

    async def mark_delivery(
        self,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        attempts: int,
        next_attempt_at: datetime,
        error: str | None = None,
        channel_ref: str | None = None,
        message_ts: str | None = None,
        audit: list[AuditDraft] | None = None,
    ) -> None:
        """Record a send attempt; ``channel_ref`` and ``message_ts`` are kept unless given."""
        current = self._deliveries.get(delivery_id)
        if current is None:
            raise NotFound(f"delivery {delivery_id} not found")
        changes: dict[str, Any] = {
            "status": status,
            "attempts": attempts,
            "next_attempt_at": next_attempt_at,
            "error": error,
        }
        if channel_ref is not None:
            changes["channel_ref"] = channel_ref
        if message_ts is not None:
            changes["message_ts"] = message_ts
        self._deliveries[delivery_id] = current.model_copy(update=changes)
        self._append(audit or [])

    # ------------------------------------------------------------------ audit

    async def audit_events(
        self, *, run_id: str | None = None, since: datetime | None = None, after_seq: int = 0
    ) -> list[AuditEvent]:
        """Audit events in sequence order."""
        return [
            _copy(e)
            for e in self._audit
            if e.seq > after_seq
            and (run_id is None or e.run_id == run_id)
            and (since is None or e.at >= since)
        ]

    async def search_audit(
        self,
        *,
        search: str | None = None,
        kind: str | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[AuditEvent]:
        """See ``RunStore.search_audit``."""
        needle = (search or "").lower()
        found = [
            e
            for e in reversed(self._audit)
            if (before_seq is None or e.seq < before_seq)
            and (kind is None or e.kind.lower().startswith(kind.lower()))
            and (
                not needle
                or any(
                    needle in (v or "").lower()
                    for v in (e.actor, e.kind, e.channel, e.run_id, e.checkpoint_id)
                )
            )
        ]
        return [_copy(e) for e in found[:limit]]

    async def add_delegation(self, delegation: Delegation, audit: list[AuditDraft]) -> None:
        """Store a delegation. Raises Conflict when the id exists."""
        if any(d.id == delegation.id for d in self._delegations):
            raise Conflict(f"delegation {delegation.id} already exists")
        self._delegations.append(_copy(delegation))
        self._append(audit)

    async def list_delegations(
        self, *, active_at: datetime | None = None, delegator: str | None = None
    ) -> list[Delegation]:
        """Delegations, oldest first."""
        return [
            _copy(d)
            for d in self._delegations
            if (active_at is None or d.active(active_at)) and (delegator is None or d.delegator == delegator)
        ]

    async def end_delegation(self, delegation_id: str, at: datetime, audit: list[AuditDraft]) -> Delegation:
        """End a delegation early (``until`` = ``at`` when sooner). Raises NotFound."""
        for n, d in enumerate(self._delegations):
            if d.id == delegation_id:
                ended = d.model_copy(update={"until": min(d.until, at)})
                self._delegations[n] = ended
                self._append(audit)
                return _copy(ended)
        raise NotFound(f"delegation {delegation_id} not found")

    async def audit_head(self) -> tuple[int, str]:
        """The last sequence number and hash (0 and the genesis hash when empty)."""
        return (self._audit[-1].seq, self._audit[-1].hash) if self._audit else (0, GENESIS_HASH)

    async def purge_runs(
        self,
        *,
        finished_before: datetime,
        at: datetime,
        dry_run: bool,
        audit: list[AuditDraft],
        limit: int = 500,
    ) -> PurgeReport:
        """See ``RunStore.purge_runs``."""
        due = [
            r
            for r in self._runs.values()
            if r.status.final
            and r.finished_at is not None
            and r.finished_at < finished_before
            and r.purged_at is None
        ][:limit]
        report = PurgeReport(run_ids=[r.id for r in due], dry_run=dry_run)
        if not due or dry_run:
            return report
        ids = set(report.run_ids)
        for r in due:
            self._runs[r.id] = r.model_copy(update={"inputs": _marker(r.inputs), "purged_at": at})
        steps = [s for s in self._steps.values() if s.run_id in ids]
        for step in steps:
            output = None
            if step.output is not None:
                output = Deliverable(data=_marker(step.output.model_dump(mode="json")))
            self._steps[step.id] = step.model_copy(
                update={
                    "input": _marker(step.input),
                    "output": output,
                    "error": _PURGED if step.error else None,
                }
            )
        cps = [c for c in self._checkpoints.values() if c.run_id in ids]
        for cp in cps:
            self._checkpoints[cp.id] = cp.model_copy(
                update={"prompt": _PURGED, "context": _marker(cp.context), "proposed": _marker(cp.proposed)}
            )
        decisions = [d for d in self._decisions.values() if d.run_id in ids]
        for d in decisions:
            self._decisions[d.id] = d.model_copy(
                update={
                    "data": _marker(d.data),
                    "comment": purged_comment(d.comment),
                    "diff": _marker(d.diff),
                }
            )
        deliveries = [d for d in self._deliveries.values() if d.run_id in ids]
        for dl in deliveries:
            self._deliveries[dl.id] = dl.model_copy(update={"payload": _marker(dl.payload)})
        events = 0
        for n, ev in enumerate(self._audit):
            if ev.sealed and ev.run_id in ids and purge_payload(ev.payload) != ev.payload:
                self._audit[n] = ev.model_copy(update={"payload": purge_payload(ev.payload)})
                events += 1
        self._append(audit)
        return report.model_copy(
            update={
                "runs": len(due),
                "steps": len(steps),
                "checkpoints": len(cps),
                "decisions": len(decisions),
                "deliveries": len(deliveries),
                "events": events,
            }
        )
