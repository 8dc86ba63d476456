"""Starting runs and driving them node by node under a lease (private: use ``engine.service.Engine``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from engine._decisions import schema_errors
from engine._engine_core import EngineCore
from engine._telling import run_finished, step_finished
from engine.audit import sha256_of
from engine.errors import EngineError, InvalidInput, LeaseLost, NotFound
from engine.events import EventType
from engine.expressions import ExpressionError
from engine.faults import fault
from engine.limits import RunView
from engine.model import (
    Run,
    RunStatus,
    Step,
    StepStatus,
    Workflow,
    WorkflowVersion,
)
from engine.nodes.base import Completed, NodeContext, Paused
from engine.nodes.code import remove_run_workspace
from engine.nodes.registry import NODE_KINDS
from engine.observers import CheckpointOpened, EngineEvent, LeaseTakenOver, RunStarted, bound_ids
from engine.outcome import run_outcome
from engine.ports import Claimed, Lease, RunChange, merge_pending
from engine.runner import build_scope, final_status, next_nodes
from engine.tasks import stop_task
from engine.templates import TemplateFailure

__all__ = ["Driving"]

log = logging.getLogger("signoff.engine")
_T = TypeVar("_T")
_NODE_ERRORS = (EngineError, TemplateFailure, ExpressionError)


class Driving(EngineCore):
    """Starts runs, drives them, and recovers runs nobody is driving."""

    # ------------------------------------------------------------------ starting

    def check_inputs(self, workflow: Workflow, inputs: dict[str, Any]) -> dict[str, Any]:
        """Apply defaults and validate inputs. Raises InvalidInput keyed by field."""
        values = dict(inputs)
        for name, prop in workflow.inputs.get("properties", {}).items():
            if name not in values and isinstance(prop, dict) and "default" in prop:
                values[name] = prop["default"]
        errors = schema_errors(workflow.inputs, values)
        if errors:
            raise InvalidInput(f"inputs of '{workflow.id}' are missing or invalid", errors)
        return values

    async def start(
        self,
        workflow_id: str,
        inputs: dict[str, Any],
        *,
        requester: str,
        origin: dict[str, Any] | None = None,
    ) -> Run:
        """Validate inputs and create a queued run pinned to the current version."""
        return await self.start_pinned(
            self.catalog.get(workflow_id), inputs, requester=requester, origin=origin
        )

    async def start_pinned(
        self,
        workflow: Workflow,
        inputs: dict[str, Any],
        *,
        requester: str,
        origin: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Validate inputs and create a queued run of ``workflow`` (a version that need not be in
        the catalog, such as an ask's generated one-node workflow), published by content hash.

        ``run_id`` lets a caller that recorded the id beforehand (an idempotency key) create the
        run under it; a second create with the same id raises ``Conflict``.
        """
        values = self.check_inputs(workflow, inputs)
        now = self.clock.now()
        await self._publish(workflow)
        # the run is created already leased to this engine: the caller drives it next, and
        # that saves a claim; if this process dies first, the lease expires and another takes it
        run = Run(
            id=run_id or self.ids.new("run_"),
            workflow_id=workflow.id,
            workflow_hash=workflow.content_hash,
            status=RunStatus.queued,
            inputs=values,
            requester=requester,
            origin=dict(origin or {}),
            team=str((origin or {})["team"]) if (origin or {}).get("team") else None,
            pending=[workflow.entry],
            created_at=now,
            updated_at=now,
            lease_owner=self.owner,
            lease_epoch=1,
            lease_expires_at=now + self.lease_ttl,
        )
        channel = str((origin or {}).get("channel", "cli"))
        audit = self._audit(
            "run.started",
            requester,
            channel,
            run.id,
            payload={
                "workflow": workflow.id,
                "version": workflow.content_hash,
                "inputs_hash": sha256_of(values),
            },
        )
        await self.store.create_run(run, [audit])
        lease = Lease(run_id=run.id, owner=self.owner, epoch=1, expires_at=now + self.lease_ttl)
        self._held[run.id] = Claimed(lease=lease, run=run, steps=[])
        self.emit(RunStarted(at=now, run_id=run.id, workflow=workflow.id))
        self._changed(run.id)
        return run

    async def _publish(self, workflow: Workflow) -> None:
        """Record ``workflow``'s version (by content hash) once per process."""
        if workflow.content_hash in self._published:
            return
        await self.store.publish_workflow(
            WorkflowVersion(
                workflow_id=workflow.id,
                content_hash=workflow.content_hash,
                source=workflow.source,
                path=workflow.path,
                created_at=self.clock.now(),
            )
        )
        self._published.add(workflow.content_hash)
        self.catalog.remember(workflow)

    # ------------------------------------------------------------------ driving

    async def drive(self, run_id: str) -> Run | None:
        """Execute the run until it pauses or ends; None when another process holds it.

        While the process shuts down (``draining``) nothing is claimed, a run this engine holds
        is released for another process, and a run being driven is released before its next
        node (see ``engine._draining``).
        """
        claimed = self._held.pop(run_id, None)
        if self.draining:
            if claimed is not None:
                await self._release(claimed.lease)
            return None
        if claimed is None:
            claimed = await self.store.claim(run_id, self.owner, self.clock.now(), self.lease_ttl)
        elif claimed.lease.expires_at - self.clock.now() < self.lease_ttl / 2:
            # held a while (a model checked the decision that claimed it): renew before any node
            # runs; if it lapsed and another process took the run over, that one drives it
            try:
                lease = await self.store.renew_lease(claimed.lease, self.clock.now(), self.lease_ttl)
            except LeaseLost:
                log.info("lease on %s lost before driving; another process continues it", run_id)
                return None
            claimed = claimed.model_copy(update={"lease": lease})
        if claimed is None:
            return None
        self._driving[run_id] = asyncio.current_task()
        self._idle.clear()
        try:
            with bound_ids(run_id=run_id):
                return await self._drive(claimed)
        except LeaseLost:
            log.info("lease on %s lost; another process continues it", run_id)
            return None
        except asyncio.CancelledError:
            # cut short (shutdown): hand the run over now rather than when the lease expires
            await asyncio.shield(self._release(claimed.lease))
            raise
        finally:
            self._driving.pop(run_id, None)
            if not self._driving:
                self._idle.set()

    async def _release(self, lease: Lease) -> None:
        """Give a run back: any process may claim it at once (its pending work stays)."""
        try:
            await self.store.commit(lease, RunChange(at=self.clock.now(), release=True))
        except (LeaseLost, NotFound):
            return  # it ended, or another process took it over, meanwhile
        log.info("released run %s for another process", lease.run_id)

    async def _drive(self, claimed: Claimed) -> Run:
        lease, run = claimed.lease, claimed.run
        workflow = await self.catalog.pinned(run.workflow_hash, self.store)
        steps = {s.id: s for s in claimed.steps}
        while True:
            if run.status.final:
                return run
            if run.paused_at is not None:
                # an operator paused it (engine._controlling): stop before the next node
                await self._release(lease)
                return run
            if not run.pending:
                return await self._finish(lease, run, list(steps.values()))
            if self.draining:
                await self._release(lease)
                return run
            node_id = run.pending[0]
            if any(s.node_id == node_id and s.status is not StepStatus.running for s in steps.values()):
                run = await self.store.commit(lease, RunChange(at=self.clock.now(), pending_remove=[node_id]))
                continue
            stop = self._stop_reason(run, workflow, list(steps.values()), node_id)
            if stop is not None:
                return await self._stop(lease, run, list(steps.values()), stop)
            with bound_ids(node_id=node_id, checkpoint_id=None):
                run, new_steps = await self._step(lease, run, workflow, node_id, steps)
            fault("after_step_commit")
            steps.update({s.id: s for s in new_steps})
            if not run.pending and run.lease_owner is None:
                return run  # the step's commit already parked or finished the run
            if lease.expires_at - self.clock.now() < self.lease_ttl / 2:
                lease = await self.store.renew_lease(lease, self.clock.now(), self.lease_ttl)

    def _stop_reason(self, run: Run, workflow: Workflow, steps: list[Step], node_id: str) -> str | None:
        """The first layer's reason to stop the run before ``node_id`` (engine.limits)."""
        view = RunView(run=run, workflow=workflow, steps=steps, node_id=node_id, now=self.clock.now())
        for layer in self.layers:
            reason = layer.before_node(view)
            if reason is not None:
                return reason
        return None

    async def _stop(self, lease: Lease, run: Run, steps: list[Step], reason: str) -> Run:
        """End the run ``failed`` with ``reason``; nothing pending runs."""
        change = RunChange(at=self.clock.now(), pending_remove=list(run.pending))
        ending = await self._ending(run, steps, change, stopped=reason)
        run = await self.store.commit(lease, ending)
        await self._ended(run)
        return run

    async def _finish(self, lease: Lease, run: Run, steps: list[Step]) -> Run:
        run = await self.store.commit(lease, await self._ending(run, steps, RunChange(at=self.clock.now())))
        await self._ended(run)
        return run

    async def _ended(self, run: Run) -> None:
        """Tell observers the run changed; once it is final, delete its workspace.

        The workspace holds the artifacts of its code and skill steps, which later steps read
        by relative path, so it lives exactly as long as the run can still use it.
        """
        self._changed(run.id)
        if run.status.final:
            self.emit(run_finished(run))
            await remove_run_workspace(self.deps.workspace_root, run.id)

    async def _finished_text(self, run: Run, status: RunStatus) -> str:
        """The requester's notice of a run that ended: its status and, apart, its outcome (a
        declined refund is not reported as a plain "succeeded")."""
        ended = run.model_copy(update={"status": status})
        outcome = run_outcome(ended, await self.store.list_checkpoints(run_id=run.id))
        text = f"Run {run.id} ({run.workflow_id}) {status.value}"
        return f"{text}; outcome: {outcome.value.replace('_', ' ')}" if outcome else text

    async def _ending(
        self, run: Run, steps: list[Step], change: RunChange, *, stopped: str | None = None
    ) -> RunChange:
        """``change`` plus parking (waiting) or finishing the run, with its lease released;
        ``stopped``: a layer's reason to end it ``failed`` whatever its steps say."""
        current = run.model_copy(update={"rejected": run.rejected or change.rejected})
        status, reason = (RunStatus.failed, stopped) if stopped else final_status(current, steps)
        final = status.final
        audit = [self._audit(f"run.{status.value}", "engine", "engine", run.id, payload={"reason": reason})]
        notice = (
            self._notices(
                run, await self._finished_text(run, status), reason, retry=status is RunStatus.failed
            )
            if final
            else []
        )
        notice += self._events(EventType.run_finished, run.id)
        if final and any(s.status is StepStatus.waiting for s in steps):
            # another branch still waits at a checkpoint: the store closes it with the run, and
            # its message is updated to say so
            now = self.clock.now()
            for cp in await self.store.list_checkpoints(run_id=run.id, open_only=True):
                notice += [
                    self._update_delivery(cp, now),
                    *self._events(EventType.checkpoint_cancelled, run.id, cp.id),
                ]
        return change.model_copy(
            update={
                "status": status,
                "reason": reason,
                "finished": final,
                "release": True,
                "audit": [*change.audit, *audit] if final else change.audit,
                "deliveries": [*change.deliveries, *notice] if final else change.deliveries,
            }
        )

    async def _commit_step(
        self, lease: Lease, run: Run, change: RunChange, steps: list[Step], told: EngineEvent
    ) -> Run:
        """Commit a step; when it leaves nothing pending, park or finish the run in the same commit.

        ``steps`` are the run's steps after this one. Only this process opens checkpoints while
        it holds the lease, so when it sees no waiting step, no decision can add work meanwhile;
        if one did (a checkpoint decided while another branch ran), the run is parked with work
        pending and the recovery loop resumes it.
        """
        if merge_pending(run.pending, change.pending_remove, change.pending_add):
            run = await self.store.commit(lease, change)
            self.emit(told)
            return run
        run = await self.store.commit(lease, await self._ending(run, steps, change))
        self.emit(told)  # the step, before the end of the run it ended
        await self._ended(run)
        return run

    async def _step(
        self, lease: Lease, run: Run, workflow: Workflow, node_id: str, steps: dict[str, Step]
    ) -> tuple[Run, list[Step]]:
        spec = workflow.nodes[node_id]
        kind = NODE_KINDS[spec.type]
        outputs = {
            s.node_id: s.output
            for s in steps.values()
            if s.output is not None and s.status is StepStatus.succeeded
        }
        scope = build_scope(run, workflow, outputs)
        started = self.clock.now()
        previous = [s for s in steps.values() if s.node_id == node_id]
        step = Step(
            id=previous[0].id if previous else self.ids.new("step_"),
            run_id=run.id,
            node_id=node_id,
            node_type=spec.type,
            status=StepStatus.running,
            attempt=len(previous) + 1 if not previous else previous[0].attempt + 1,
            started_at=started,
        )
        if kind.side_effects:
            # committed (and audited: watchers see the node start) before it acts
            begun = self._audit(
                "step.started", "engine", "engine", run.id, payload={"node": node_id, "type": spec.type}
            )
            run = await self.store.commit(lease, RunChange(at=started, steps=[step], audit=[begun]))
        ctx = NodeContext(
            run=run, workflow=workflow, node=spec, scope=scope, deps=self.deps, attempt=step.attempt
        )
        others = [s for s in steps.values() if s.id != step.id]
        try:
            # nodes that finish without waiting on anything need no lease heartbeat
            work = kind.execute(ctx)
            result = await (work if getattr(kind, "instant", False) else self._with_heartbeat(lease, work))
            if isinstance(result, Paused):
                return await self._paused(lease, run, step, result, others)
            return await self._completed(lease, run, workflow, step, scope, result, others)
        except LeaseLost:
            raise
        except _NODE_ERRORS as exc:
            step = step.model_copy(update={"retryable": bool(getattr(exc, "retryable", False))})
            return await self._failed(lease, run, step, str(exc), others)
        except Exception as exc:  # a bug or an unexpected value fails the step; it must not wedge the run
            log.exception("node %s of run %s raised", node_id, run.id)
            return await self._failed(lease, run, step, f"{type(exc).__name__}: {exc}", others)

    async def _with_heartbeat(self, lease: Lease, work: Awaitable[_T]) -> _T:
        """Await a node while renewing the lease every third of its TTL.

        A slow node (an HTTP call, a sandboxed command) must not lose its run to another
        process while it is still working. When a renewal finds the lease taken over, the
        node is cancelled and ``LeaseLost`` propagates: its result could not be committed.
        """
        task = asyncio.ensure_future(work)
        beat = self.lease_ttl.total_seconds() / 3
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=beat)
                if done:
                    return task.result()
                lease = await self.store.renew_lease(lease, self.clock.now(), self.lease_ttl)
        finally:
            if not task.done():
                await stop_task(task)

    async def _completed(
        self,
        lease: Lease,
        run: Run,
        workflow: Workflow,
        step: Step,
        scope: dict[str, Any],
        result: Completed,
        others: list[Step],
    ) -> tuple[Run, list[Step]]:
        now = self.clock.now()
        scope["nodes"][step.node_id] = {
            "text": result.output.text,
            "data": result.output.data,
            "files": result.output.files,
        }
        successors = next_nodes(workflow, step.node_id, scope, response=result.response)
        done = step.model_copy(
            update={
                "status": StepStatus.succeeded,
                "input": result.input,
                "output": result.output,
                "ended_at": now,
                "input_tokens": result.input_tokens,
                "output_tokens": result.output_tokens,
                "cost_usd": result.cost_usd,
            }
        )
        audit = [
            self._audit(
                "step.succeeded",
                "engine",
                "engine",
                run.id,
                payload={
                    "node": step.node_id,
                    "type": step.node_type,
                    "output_hash": sha256_of(result.output.data),
                },
            ),
            *result.audit,
        ]
        change = RunChange(
            at=now,
            steps=[done],
            pending_remove=[step.node_id],
            pending_add=successors,
            status=RunStatus.running if run.status is not RunStatus.running else None,
            deliveries=result.deliveries,
            audit=audit,
        )
        told = step_finished(run.workflow_id, done, now)
        run = await self._commit_step(lease, run, change, [*others, done], told)
        return run, [done]

    async def _paused(
        self, lease: Lease, run: Run, step: Step, result: Paused, others: list[Step]
    ) -> tuple[Run, list[Step]]:
        now = self.clock.now()
        cp = result.checkpoint
        waiting = step.model_copy(update={"status": StepStatus.waiting, "input": result.input})
        audit = [
            self._audit(
                "checkpoint.opened",
                "engine",
                "engine",
                run.id,
                cp.id,
                payload={
                    "node": cp.node_id,
                    "assignees": cp.assignees,
                    "shown_hash": cp.shown_hash,
                    "due_at": cp.due_at.isoformat() if cp.due_at else None,
                    "quorum": cp.quorum,
                    "delegations": cp.delegations,
                },
            )
        ]
        change = RunChange(
            at=now,
            steps=[waiting],
            checkpoints=[cp],
            pending_remove=[step.node_id],
            deliveries=[*result.deliveries, *self._events(EventType.checkpoint_opened, run.id, cp.id)],
            audit=audit,
        )
        told = CheckpointOpened(
            at=now, run_id=run.id, workflow=run.workflow_id, checkpoint_id=cp.id, node_id=cp.node_id
        )
        run = await self._commit_step(lease, run, change, [*others, waiting], told)
        self._changed(run.id)
        return run, [waiting]

    async def _failed(
        self, lease: Lease, run: Run, step: Step, error: str, others: list[Step]
    ) -> tuple[Run, list[Step]]:
        now = self.clock.now()
        failed = step.model_copy(update={"status": StepStatus.failed, "error": error, "ended_at": now})
        audit = [
            self._audit(
                "step.failed", "engine", "engine", run.id, payload={"node": step.node_id, "error": error}
            )
        ]
        change = RunChange(at=now, steps=[failed], pending_remove=[step.node_id], audit=audit)
        told = step_finished(run.workflow_id, failed, now)
        run = await self._commit_step(lease, run, change, [*others, failed], told)
        return run, [failed]

    async def recover(self, limit: int = 100) -> int:
        """Drive every run with pending work and no live lease; returns how many were driven."""
        driven = 0
        for run_id in await self.store.runnable_runs(self.clock.now(), limit):
            try:
                # a run whose lease another process let expire is a takeover (metrics)
                try:
                    before = (await self.store.get_run(run_id)).lease_owner
                except NotFound:
                    continue  # purged meanwhile
                if await self.drive(run_id) is not None:
                    driven += 1
                    if before is not None and before != self.owner:
                        self.emit(LeaseTakenOver(at=self.clock.now(), run_id=run_id, previous_owner=before))
            except Exception:  # one broken run must not keep the others from being resumed
                log.exception("could not resume run %s", run_id)
        return driven
