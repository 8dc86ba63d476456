"""The Engine: starts runs, drives them node by node under a lease, applies decisions.

Every step is committed (with its audit event) before the next node starts, so a crashed
process resumes from the last committed step. A checkpoint is resolved by compare-and-set:
exactly one decision wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from engine._decisions import decision_payload, diff_fields, normalise_action, outcome_of, schema_errors
from engine.audit import sha256_of
from engine.catalog import WorkflowCatalog
from engine.commands import Cancel, Decide
from engine.errors import Conflict, EngineError, InvalidInput, LeaseLost, NeedsDetail, NotAllowed
from engine.expressions import ExpressionError
from engine.faults import fault
from engine.model import (
    Checkpoint,
    CheckpointStatus,
    Decision,
    Deliverable,
    Delivery,
    ResolvedBy,
    Run,
    RunStatus,
    Step,
    StepStatus,
    Workflow,
    WorkflowVersion,
)
from engine.nodes.base import Completed, NodeContext, NodeDeps, Paused
from engine.nodes.code import remove_run_workspace
from engine.nodes.human import shown_view
from engine.nodes.registry import NODE_KINDS
from engine.nodes.verify import asks_again, check_answer, questioned, verify_decision
from engine.policy import ensure_may_decide, is_admin
from engine.ports import AuditDraft, CheckpointUpdate, Claimed, Lease, RunChange, RunStore, merge_pending
from engine.runner import NoMatchingEdge, build_scope, final_status, next_nodes, response_data
from engine.templates import TemplateFailure

__all__ = ["Engine"]

log = logging.getLogger("signoff.engine")
_T = TypeVar("_T")
_NODE_ERRORS = (EngineError, TemplateFailure, ExpressionError)


class Engine:
    """Applies workflow semantics through the ports; one instance per process."""

    def __init__(
        self,
        *,
        store: RunStore,
        catalog: WorkflowCatalog,
        deps: NodeDeps,
        owner: str,
        lease_ttl: timedelta = timedelta(seconds=30),
        on_change: Callable[[str], None] | None = None,
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
        self.on_change = on_change
        self._published: set[str] = set()
        self._held: dict[str, Claimed] = {}

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
        workflow = self.catalog.get(workflow_id)
        values = self.check_inputs(workflow, inputs)
        now = self.clock.now()
        if workflow.content_hash not in self._published:
            await self.store.publish_workflow(
                WorkflowVersion(
                    workflow_id=workflow.id,
                    content_hash=workflow.content_hash,
                    source=workflow.source,
                    path=workflow.path,
                    created_at=now,
                )
            )
            self._published.add(workflow.content_hash)
        # the run is created already leased to this engine: the caller drives it next, and
        # that saves a claim; if this process dies first, the lease expires and another takes it
        run = Run(
            id=self.ids.new("run_"),
            workflow_id=workflow.id,
            workflow_hash=workflow.content_hash,
            status=RunStatus.queued,
            inputs=values,
            requester=requester,
            origin=dict(origin or {}),
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
        self._changed(run.id)
        return run

    # ------------------------------------------------------------------ driving

    async def drive(self, run_id: str) -> Run | None:
        """Execute the run until it pauses or ends; None when another process holds it."""
        claimed = self._held.pop(run_id, None)
        if claimed is None:
            claimed = await self.store.claim(run_id, self.owner, self.clock.now(), self.lease_ttl)
        if claimed is None:
            return None
        try:
            return await self._drive(claimed)
        except LeaseLost:
            log.info("lease on %s lost; another process continues it", run_id)
            return None

    async def _drive(self, claimed: Claimed) -> Run:
        lease, run = claimed.lease, claimed.run
        workflow = await self.catalog.pinned(run.workflow_hash, self.store)
        steps = {s.id: s for s in claimed.steps}
        while True:
            if run.status.final:
                return run
            if not run.pending:
                return await self._finish(lease, run, list(steps.values()))
            node_id = run.pending[0]
            if any(s.node_id == node_id and s.status is not StepStatus.running for s in steps.values()):
                run = await self.store.commit(lease, RunChange(at=self.clock.now(), pending_remove=[node_id]))
                continue
            run, new_steps = await self._step(lease, run, workflow, node_id, steps)
            fault("after_step_commit")
            steps.update({s.id: s for s in new_steps})
            if not run.pending and run.lease_owner is None:
                return run  # the step's commit already parked or finished the run
            if lease.expires_at - self.clock.now() < self.lease_ttl / 2:
                lease = await self.store.renew_lease(lease, self.clock.now(), self.lease_ttl)

    async def _finish(self, lease: Lease, run: Run, steps: list[Step]) -> Run:
        run = await self.store.commit(lease, self._ending(run, steps, RunChange(at=self.clock.now())))
        await self._ended(run)
        return run

    async def _ended(self, run: Run) -> None:
        """Tell observers the run changed; once it is final, delete its workspace.

        The workspace holds the artifacts of its code and skill steps, which later steps read
        by relative path, so it lives exactly as long as the run can still use it.
        """
        self._changed(run.id)
        if run.status.final:
            await remove_run_workspace(self.deps.workspace_root, run.id)

    def _ending(self, run: Run, steps: list[Step], change: RunChange) -> RunChange:
        """``change`` plus parking (waiting) or finishing the run, with its lease released."""
        current = run.model_copy(update={"rejected": run.rejected or change.rejected})
        status, reason = final_status(current, steps)
        final = status.final
        audit = [self._audit(f"run.{status.value}", "engine", "engine", run.id, payload={"reason": reason})]
        notice = [self._notice(run, f"Run {run.id} ({run.workflow_id}) {status.value}", reason)]
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

    async def _commit_step(self, lease: Lease, run: Run, change: RunChange, steps: list[Step]) -> Run:
        """Commit a step; when it leaves nothing pending, park or finish the run in the same commit.

        ``steps`` are the run's steps after this one. Only this process opens checkpoints while
        it holds the lease, so when it sees no waiting step, no decision can add work meanwhile;
        if one did (a checkpoint decided while another branch ran), the run is parked with work
        pending and the recovery loop resumes it.
        """
        if merge_pending(run.pending, change.pending_remove, change.pending_add):
            return await self.store.commit(lease, change)
        run = await self.store.commit(lease, self._ending(run, steps, change))
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
            run = await self.store.commit(lease, RunChange(at=started, steps=[step]))
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
            return await self._failed(lease, run, step, str(exc), others)

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
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

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
        run = await self._commit_step(lease, run, change, [*others, done])
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
            deliveries=result.deliveries,
            audit=audit,
        )
        run = await self._commit_step(lease, run, change, [*others, waiting])
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
        run = await self._commit_step(lease, run, change, [*others, failed])
        return run, [failed]

    # ------------------------------------------------------------------ deciding

    async def decide(self, command: Decide, *, drive: bool = True) -> Decision | None:
        """Resolve (or vote on) a checkpoint. None means a quorum vote was recorded.

        Raises:
            Conflict: someone else already resolved it (names who and when).
            NotAllowed: the actor may not decide, or the action is not offered.
            InvalidInput: the data does not fit the response schema (field errors).
            NeedsDetail: a model checked the answer and asks the person for more (nothing decided).
        """
        cp, run, steps, action, data = await self._validated(command)
        by_policy = command.resolved_by != "human"
        workflow = await self.catalog.pinned(run.workflow_hash, self.store)
        if not by_policy:
            await self._ask_again(workflow, cp, command, action, data)
        now = self.clock.now()
        if action == "edit" and not by_policy and cp.quorum > 1:
            return await self._quorum_edit(cp, command, data, now)
        if action == "approve" and not by_policy and len(cp.approvals) + 1 < cp.quorum:
            return await self._vote(cp, command, now)
        response = response_data(
            cp,
            action=action,
            data=data,
            actor=command.actor,
            comment=command.comment,
            resolved_by=command.resolved_by,
            rule=command.rule,
        )
        waiting = next((s for s in steps if s.node_id == cp.node_id and s.status is StepStatus.waiting), None)
        outputs = {
            s.node_id: s.output for s in steps if s.output is not None and s.status is StepStatus.succeeded
        }
        scope = build_scope(run, workflow, outputs)
        scope["nodes"][cp.node_id] = {"text": "", "data": response, "files": []}
        successors, rejected, error = self._route(workflow, cp, scope, response, action)
        decision = Decision(
            id=self.ids.new("dec_"),
            checkpoint_id=cp.id,
            run_id=cp.run_id,
            action=action,
            data=data,
            comment=command.comment,
            actor=command.actor,
            channel=command.channel,
            resolved_by=ResolvedBy(command.resolved_by),
            rule=command.rule,
            shown_hash=cp.shown_hash,
            output_hash=sha256_of(response),
            diff=diff_fields(cp.proposed, data) if action in {"edit", "answer"} else {},
            created_at=now,
        )
        step_update = None
        if waiting is not None:
            step_update = waiting.model_copy(
                update={
                    "status": StepStatus.failed if error else StepStatus.succeeded,
                    "output": Deliverable(text=_summary(decision), data=response),
                    "error": error,
                    "ended_at": now,
                }
            )
        audit = self._audit(
            "decision.recorded",
            command.actor,
            command.channel,
            run.id,
            cp.id,
            payload={
                "action": action,
                "resolved_by": command.resolved_by,
                "rule": command.rule,
                "shown_hash": cp.shown_hash,
                "output_hash": decision.output_hash,
                "diff": decision.diff,
                "comment": command.comment,
                "approvals": [*cp.approvals, command.actor] if cp.quorum > 1 else [],
            },
        )
        update = CheckpointUpdate(
            checkpoint_id=cp.id,
            expected_version=cp.version,
            at=now,
            resolve=True,
            outcome=outcome_of(action, command.resolved_by),
            decision=decision,
            step=step_update,
            pending_add=successors,
            rejected=rejected,
            approvals=[*cp.approvals, command.actor] if action == "approve" and cp.quorum > 1 else None,
            deliveries=self._decision_deliveries(cp, run, decision),
            audit=[audit],
        )
        try:
            await self.store.update_checkpoint(update)
        except Conflict:
            raise await self._conflict(await self.store.get_checkpoint(cp.id)) from None
        self._changed(run.id)
        fault("after_decision_commit")
        flagged = await verify_decision(self.deps, workflow, cp, decision)
        if flagged is not None:
            await self.store.add_deliveries(*flagged)
        if drive:
            await self.drive(run.id)
        return decision

    async def check(self, command: Decide) -> bool:
        """Validate a decision as ``decide`` would, without recording anything.

        Returns:
            True when a model checks the answer before it counts (``verify: {on_fail:
            ask_again}``): a caller that must answer within a deadline (a Slack modal) answers
            first and calls ``decide`` afterwards.

        Raises:
            Conflict, NotAllowed, InvalidInput: as ``decide``.
        """
        cp, run, _, _, _ = await self._validated(command)
        if command.resolved_by != "human":
            return False
        return asks_again(self.deps, await self.catalog.pinned(run.workflow_hash, self.store), cp)

    async def _validated(self, command: Decide) -> tuple[Checkpoint, Run, list[Step], str, dict[str, Any]]:
        """The open checkpoint, its run and steps, the action and the data the next node gets."""
        cp, run, steps = await self.store.load_checkpoint(command.checkpoint_id)
        if cp.status is CheckpointStatus.resolved:
            raise await self._conflict(cp)
        by_policy = command.resolved_by != "human"
        action = normalise_action(cp, command.action, by_policy=by_policy)
        if not by_policy:
            await ensure_may_decide(cp, command.actor, self.catalog.roles, self.deps.directory, action=action)
            if cp.confirm and action in {"approve", "edit"} and command.confirm != cp.confirm:
                raise NotAllowed(f"type {cp.confirm} to confirm this irreversible action")
        return cp, run, steps, action, decision_payload(cp, action, command.data)

    async def _ask_again(
        self, workflow: Workflow, cp: Checkpoint, command: Decide, action: str, data: dict[str, Any]
    ) -> None:
        """With ``verify: {on_fail: ask_again}``, a model checks a person's answer before it counts.

        The call's audit event is stored whatever comes next: the call was made and cost tokens.
        A call that fails lets the answer count (``decision.verify_failed``).

        Raises:
            NeedsDetail: the check failed; the question is queued to the person and audited.
        """
        answer = {"action": action, "data": data, "comment": command.comment}
        checked = await check_answer(self.deps, workflow, cp, answer)
        if checked is None:
            return
        verdict, audit = checked
        if verdict.ok:
            await self.store.add_deliveries([], [audit])
            return
        diff = diff_fields(cp.proposed, data) if action in {"edit", "answer"} else {}
        delivery, asked = questioned(
            self.deps, cp, verdict, actor=command.actor, channel=command.channel, answer=answer, diff=diff
        )
        await self.store.add_deliveries([delivery], [asked])
        self._changed(cp.run_id)
        raise NeedsDetail(verdict.reason)

    def _route(
        self, workflow: Workflow, cp: Checkpoint, scope: dict[str, Any], response: dict[str, Any], action: str
    ) -> tuple[list[str], bool, str | None]:
        """Successors after a decision, whether the branch ends rejected, and an error if routing failed."""
        try:
            successors = next_nodes(workflow, cp.node_id, scope, response=response)
        except NoMatchingEdge as exc:
            # a reject with no edge for it ends the branch: the run ends rejected, not failed
            return ([], True, None) if action == "reject" else ([], False, str(exc))
        except ExpressionError as exc:
            return [], False, str(exc)
        return successors, action == "reject" and not successors, None

    async def _vote(self, cp: Checkpoint, command: Decide, now: Any) -> Decision | None:
        approvals = [*cp.approvals, command.actor]
        audit = self._audit(
            "checkpoint.vote",
            command.actor,
            command.channel,
            cp.run_id,
            cp.id,
            payload={
                "approvals": approvals,
                "quorum": cp.quorum,
                "shown_hash": cp.shown_hash,
            },
        )
        update = CheckpointUpdate(
            checkpoint_id=cp.id,
            expected_version=cp.version,
            at=now,
            approvals=approvals,
            deliveries=[self._update_delivery(cp, now)],
            audit=[audit],
        )
        await self.store.update_checkpoint(update)
        self._changed(cp.run_id)
        return None

    async def _quorum_edit(
        self, cp: Checkpoint, command: Decide, data: dict[str, Any], now: Any
    ) -> Decision | None:
        """With a quorum, an edit replaces the proposal; everyone but its editors approves it anew."""
        edited = cp.model_copy(update={"proposed": data})
        shown = sha256_of(shown_view(edited))
        diff = diff_fields(cp.proposed, data)
        audit = self._audit(
            "checkpoint.edited",
            command.actor,
            command.channel,
            cp.run_id,
            cp.id,
            payload={
                "diff": diff,
                "shown_hash": shown,
                "previous_shown_hash": cp.shown_hash,
                "approvals_reset": cp.approvals,
                "comment": command.comment,
            },
        )
        update = CheckpointUpdate(
            checkpoint_id=cp.id,
            expected_version=cp.version,
            at=now,
            proposed=data,
            editors=[*cp.editors, command.actor],
            approvals=[],
            shown_hash=shown,
            deliveries=[self._update_delivery(cp, now)],
            audit=[audit],
        )
        await self.store.update_checkpoint(update)
        self._changed(cp.run_id)
        return None

    async def _conflict(self, cp: Checkpoint) -> Conflict:
        decisions = await self.store.list_decisions(checkpoint_id=cp.id)
        if not decisions:
            return Conflict(f"checkpoint {cp.id} is already {cp.outcome.value if cp.outcome else 'closed'}")
        won = decisions[-1]
        verb = {"approve": "approved", "reject": "rejected", "edit": "edited", "answer": "answered"}.get(
            won.action, f"resolved ({won.action})"
        )
        who = (
            won.actor
            if won.resolved_by is ResolvedBy.human
            else f"policy ({won.rule or won.resolved_by.value})"
        )
        return Conflict(
            f"already {verb} by {who} at {won.created_at:%Y-%m-%d %H:%M} UTC",
            winner=won.actor,
            at=won.created_at,
            action=won.action,
        )

    def _decision_deliveries(self, cp: Checkpoint, run: Run, decision: Decision) -> list[Delivery]:
        now = decision.created_at
        text = f"{cp.title}: {_summary(decision)}"
        return [self._update_delivery(cp, now), self._notice(run, text, decision.comment)]

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

    def _notice(self, run: Run, text: str, detail: str | None) -> Delivery:
        now = self.clock.now()
        return Delivery(
            id=self.ids.new("dlv_"),
            run_id=run.id,
            kind="requester_notice",
            target=f"user:{run.requester}",
            payload={"text": text, "detail": detail, "origin": run.origin},
            next_attempt_at=now,
            created_at=now,
        )

    # ------------------------------------------------------------------ cancelling

    async def cancel(self, command: Cancel) -> Run:
        """Cancel a run (requester or admin only)."""
        run = await self.store.get_run(command.run_id)
        if command.actor != run.requester and not is_admin(command.actor, self.catalog.roles):
            raise NotAllowed("only the person who started this run, or an admin, can cancel it")
        if run.status.final:
            raise Conflict(f"run {run.id} already ended ({run.status.value})")
        audit = self._audit(
            "run.cancelled", command.actor, command.channel, run.id, payload={"reason": command.reason}
        )
        run = await self.store.cancel_run(run.id, self.clock.now(), command.reason, [audit])
        for cp in await self.store.list_checkpoints(run_id=run.id):
            await self.store.add_deliveries([self._update_delivery(cp, self.clock.now())], [])
        await self._ended(run)
        return run

    async def recover(self, limit: int = 100) -> int:
        """Drive every run with pending work and no live lease; returns how many were driven."""
        driven = 0
        for run_id in await self.store.runnable_runs(self.clock.now(), limit):
            if await self.drive(run_id) is not None:
                driven += 1
        return driven

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

    def changed(self, run_id: str) -> None:
        """Tell the process's observers (outbox, scheduler, App Home) that a run changed."""
        self._changed(run_id)

    def _changed(self, run_id: str) -> None:
        if self.on_change is not None:
            self.on_change(run_id)


def _summary(decision: Decision) -> str:
    if decision.resolved_by is not ResolvedBy.human:
        return f"{decision.action} by policy ({decision.rule or decision.resolved_by.value})"
    verb = {"approve": "approved", "reject": "rejected", "edit": "edited and approved", "answer": "answered"}
    return f"{verb.get(decision.action, decision.action)} by {decision.actor}"
