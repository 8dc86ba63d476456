"""Deciding checkpoints and cancelling runs (private: use ``engine.service.Engine``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from engine._decisions import decision_payload, diff_fields, normalise_action, outcome_of
from engine._driving import Driving
from engine._telling import decided, step_finished
from engine.audit import decision_digest, sha256_of
from engine.commands import Cancel, Decide
from engine.errors import Conflict, NeedsDetail, NotAllowed, StaleVersion
from engine.events import EventType
from engine.expressions import ExpressionError
from engine.faults import fault
from engine.gate import SELF_APPROVAL_KINDS, Admission, Attempt, Gate
from engine.model import (
    Checkpoint,
    CheckpointStatus,
    Decision,
    Delegation,
    Deliverable,
    Delivery,
    HumanConfig,
    ResolvedBy,
    Run,
    Step,
    StepStatus,
    Workflow,
)
from engine.nodes.verify import asks_again, check_answer, questioned, verify_decision
from engine.observers import bind_ids, bound_ids
from engine.policy import is_admin
from engine.ports import CheckpointUpdate, Claimed
from engine.runner import NoMatchingEdge, build_scope, next_nodes, response_data
from engine.shown import shown_hash

__all__ = ["Deciding"]


class Deciding(Driving):
    """Compare-and-set decisions, quorum votes and edits, verification, cancelling."""

    # ------------------------------------------------------------------ deciding

    async def decide(self, command: Decide, *, drive: bool = True, verify: bool = True) -> Decision | None:
        """Resolve (or vote on) a checkpoint. None means a quorum vote was recorded.

        With ``verify=False`` a ``verify: {on_fail: flag}`` check is left to the caller
        (``flag_check``), which must not happen before a Slack ack.

        Every attempt goes through the decision gate (``engine.gate``); a refused one is audited.

        Raises:
            Conflict: someone else already resolved it (names who and when); ``StaleVersion``
                when the person's copy is older than the current proposal.
            NotAllowed: the actor may not decide, or the action is not offered (``rule``).
            InvalidInput: the data does not fit the response schema (field errors).
            NeedsDetail: a model checked the answer and asks the person for more (nothing decided).
        """
        with bound_ids(checkpoint_id=command.checkpoint_id, node_id=None):
            return await self._decide(command, drive=drive, verify=verify)

    async def _decide(self, command: Decide, *, drive: bool, verify: bool) -> Decision | None:
        valid = await self._validated(command)
        cp, run, steps, action, data = valid.cp, valid.run, valid.steps, valid.action, valid.data
        workflow, admission = valid.workflow, valid.admission
        bind_ids(run_id=run.id)
        by_policy = command.resolved_by != "human"
        if not by_policy:
            await self._ask_again(workflow, cp, command, action, data)
        now = self.clock.now()
        if action == "edit" and not by_policy and cp.quorum > 1:
            return await self._quorum_edit(cp, command, admission, data, now)
        if action == "approve" and not by_policy and len(cp.approvals) + 1 < cp.quorum:
            return await self._vote(cp, command, admission, now)
        voted = [*cp.approvals, admission.principal] if cp.quorum > 1 and not by_policy else cp.approvals
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
                "seen_hash": command.seen,
                "output_hash": decision.output_hash,
                "diff": decision.diff,
                "comment": command.comment,
                # a policy resolves a quorum; it is never counted as one of its approvers
                "approvals": voted,
                **_authority(admission, command, cp),
                "decision": {"id": decision.id, "hash": decision_digest(decision)},
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
            approvals=voted if action == "approve" and cp.quorum > 1 and not by_policy else None,
            deliveries=self._decision_deliveries(cp, run, decision),
            audit=[audit],
        )
        claimed: Claimed | None = None
        try:
            if drive and not self.draining:
                claimed = await self._resolve_and_claim(update)
            else:
                await self.store.update_checkpoint(update)
        except Conflict:
            raise await self._conflict(await self.store.get_checkpoint(cp.id)) from None
        if claimed is not None:
            self._held[run.id] = claimed
        try:
            self.emit(decided(run, cp, decision))
            if step_update is not None:
                self.emit(step_finished(run.workflow_id, step_update, now))
            self._changed(run.id)
            fault("after_decision_commit")
            if verify:
                await self._flag(workflow, cp, decision)
        except BaseException:
            # not driven after all: give the lease back now, not when it expires
            held = self._held.pop(run.id, None)
            if held is not None:
                await asyncio.shield(self._release(held.lease))
            raise
        if drive:
            await self.drive(run.id)
        return decision

    async def _resolve_and_claim(self, update: CheckpointUpdate) -> Claimed | None:
        """Record the decision and take the run's lease in one transaction (no separate claim)."""
        call = asyncio.ensure_future(self.store.resolve_and_claim(update, self.owner, self.lease_ttl))
        try:
            _, claimed = await asyncio.shield(call)
        except asyncio.CancelledError:
            # cut short while the store call goes on: it may still commit, and then the lease it
            # took goes back at once rather than when it expires
            call.add_done_callback(self._give_back)
            raise
        return claimed

    def _give_back(self, call: asyncio.Future[tuple[Checkpoint, Claimed | None]]) -> None:
        if call.cancelled() or call.exception() is not None:
            return
        claimed = call.result()[1]
        if claimed is not None:
            release = asyncio.ensure_future(self._release(claimed.lease))
            self._releasing.add(release)
            release.add_done_callback(self._releasing.discard)

    async def flag_check(self, decision: Decision) -> None:
        """Run a ``verify: {on_fail: flag}`` check of a decision already recorded."""
        cp, run, _ = await self.store.load_checkpoint(decision.checkpoint_id)
        await self._flag(await self.catalog.pinned(run.workflow_hash, self.store), cp, decision)

    async def _flag(self, workflow: Workflow, cp: Checkpoint, decision: Decision) -> None:
        flagged = await verify_decision(self.deps, workflow, cp, decision)
        if flagged is not None:
            await self.store.add_deliveries(*flagged)

    async def check(self, command: Decide) -> bool:
        """Validate a decision as ``decide`` would, without recording anything.

        Returns:
            True when a model checks the answer before it counts (``verify: {on_fail:
            ask_again}``): a caller that must answer within a deadline (a Slack modal) answers
            first and calls ``decide`` afterwards.

        Raises:
            Conflict, NotAllowed, InvalidInput: as ``decide``.
        """
        valid = await self._validated(command)
        if command.resolved_by != "human":
            return False
        return asks_again(self.deps, valid.workflow, valid.cp)

    async def may_decide(self, command: Decide) -> Checkpoint:
        """Whether ``command.actor`` may take ``command.action`` on the checkpoint, before a form
        is shown: the gate without the version and the confirmation word (the form's submission
        goes through the whole gate). A refusal is audited like a refused decision.

        Raises:
            Conflict: the checkpoint is already resolved (names who and when).
            NotAllowed: the gate refused (``rule`` says which rule).
        """
        cp = await self.store.get_checkpoint(command.checkpoint_id)
        if cp.status is CheckpointStatus.resolved:
            raise await self._conflict(cp)
        attempt = _attempt(command, check_confirm=False, version=False)
        try:
            normalise_action(cp, command.action, by_policy=False)
            await self.gate.admit(cp, attempt, self.clock.now(), None)
        except (NotAllowed, StaleVersion) as exc:
            await self._refused(cp, command, exc)
            raise
        return cp

    async def can_decide(self, cp: Checkpoint, actor: str, active: list[Delegation] | None = None) -> bool:
        """True when ``actor`` could decide ``cp`` now (for lists of what waits for someone;
        nothing is audited). Named assignees, role and group members, channel members and
        delegates count; the requester of an approval or review does not. ``active``: the
        delegations active now, when already read."""
        return await self._can_decide(self.gate, cp, actor, active)

    async def _can_decide(
        self, gate: Gate, cp: Checkpoint, actor: str, active: list[Delegation] | None
    ) -> bool:
        """``can_decide`` through ``gate`` (one that remembers people, for a list)."""
        found = await gate.principal_of(cp, actor, self.clock.now(), active)
        if found is None:
            return False
        return not (
            cp.kind in SELF_APPROVAL_KINDS
            and not cp.allow_self_approval
            and await gate.is_requester(cp, actor, found[0])
        )

    async def _validated(self, command: Decide) -> _Valid:
        """The open checkpoint, its run, steps and workflow, the admitted action and its data.

        Every rule of the gate runs here; a refusal is audited (``decision.refused``) and raised.
        """
        cp, run, steps = await self.store.load_checkpoint(command.checkpoint_id)
        if cp.status is CheckpointStatus.resolved:
            raise await self._conflict(cp)
        by_policy = command.resolved_by != "human"
        workflow = await self.catalog.pinned(run.workflow_hash, self.store)
        node = workflow.nodes.get(cp.node_id)
        config = node.config if node is not None and isinstance(node.config, HumanConfig) else None
        try:
            action = normalise_action(cp, command.action, by_policy=by_policy)
            admission = await self.gate.admit(cp, _attempt(command), self.clock.now(), config)
        except (NotAllowed, StaleVersion) as exc:
            await self._refused(cp, command, exc)
            raise
        data = decision_payload(cp, action, command.data)
        return _Valid(cp, run, steps, workflow, action, data, admission)

    async def _refused(self, cp: Checkpoint, command: Decide, exc: NotAllowed | StaleVersion) -> None:
        """Record a refused attempt (who tried what, on which version, and the rule that refused)."""
        rule = exc.rule if isinstance(exc, NotAllowed) else "stale_version"
        audit = self._audit(
            "decision.refused",
            command.actor,
            command.channel,
            cp.run_id,
            cp.id,
            payload={
                "action": command.action,
                "rule": rule,
                "reason": str(exc),
                "resolved_by": command.resolved_by,
                "version": cp.version,
                "expected_version": command.expected_version,
                "team": command.team,
            },
        )
        await self.store.add_deliveries([], [audit])

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

    async def _vote(self, cp: Checkpoint, command: Decide, admission: Admission, now: Any) -> Decision | None:
        approvals = [*cp.approvals, admission.principal]
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
                "seen_hash": command.seen,
                "comment": command.comment,
                **_authority(admission, command, cp),
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
        self, cp: Checkpoint, command: Decide, admission: Admission, data: dict[str, Any], now: Any
    ) -> Decision | None:
        """With a quorum, an edit replaces the proposal; everyone but its editors approves it anew.

        Copies shown before the edit are stale from now on: the proposal changes at the new version.
        """
        edited = cp.model_copy(update={"proposed": data})
        shown = shown_hash(edited)
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
                "seen_hash": command.seen,
                **_authority(admission, command, cp),
            },
        )
        update = CheckpointUpdate(
            checkpoint_id=cp.id,
            expected_version=cp.version,
            at=now,
            proposed=data,
            editors=[*cp.editors, admission.principal],
            approvals=[],
            shown_hash=shown,
            content_version=cp.version + 1,
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
        timed_out = decision.resolved_by is ResolvedBy.timeout
        event = EventType.checkpoint_timed_out if timed_out else EventType.checkpoint_decided
        return [
            self._update_delivery(cp, now),
            *self._notices(run, text, decision.comment),
            *self._events(event, run.id, cp.id),
        ]

    # ------------------------------------------------------------------ cancelling

    async def cancel(self, command: Cancel) -> Run:
        """Cancel a run (requester or admin only)."""
        run = await self.store.get_run(command.run_id)
        aliases = await self.gate.aliases(command.actor)
        requester = await self.gate.same_person(command.actor, run.requester)
        if not requester and not is_admin(command.actor, self.catalog.roles, aliases):
            raise NotAllowed("only the person who started this run, or an admin, can cancel it")
        if run.status.final:
            raise Conflict(f"run {run.id} already ended ({run.status.value})")
        audit = self._audit(
            "run.cancelled", command.actor, command.channel, run.id, payload={"reason": command.reason}
        )
        now = self.clock.now()
        # the messages of its open checkpoints are updated to "cancelled" by the same transaction
        updates = self._events(EventType.run_finished, run.id)
        for cp in await self.store.list_checkpoints(run_id=run.id, open_only=True):
            updates += [
                self._update_delivery(cp, now),
                *self._events(EventType.checkpoint_cancelled, run.id, cp.id),
            ]
        run = await self.store.cancel_run(run.id, now, command.reason, [audit], updates)
        await self._ended(run)
        return run


@dataclass(frozen=True)
class _Valid:
    """An admitted decision attempt and everything it was checked against."""

    cp: Checkpoint
    run: Run
    steps: list[Step]
    workflow: Workflow
    action: str
    data: dict[str, Any]
    admission: Admission


def _attempt(command: Decide, *, check_confirm: bool = True, version: bool = True) -> Attempt:
    return Attempt(
        actor=command.actor,
        action="edit" if command.action == "modify" else command.action,
        channel=command.channel,
        resolved_by=command.resolved_by,
        rule=command.rule,
        team=command.team,
        expected_version=command.expected_version if version else None,
        confirm=command.confirm,
        check_confirm=check_confirm,
    )


def _authority(admission: Admission, command: Decide, cp: Checkpoint) -> dict[str, Any]:
    """Whose authority a decision carried and on which version it was made (for the audit)."""
    out: dict[str, Any] = {
        "principal": admission.principal,
        "via": admission.via,
        "version": cp.version,
        "version_checked": admission.version_checked,
    }
    if command.team is not None:
        out["team"] = command.team
    return out


def _summary(decision: Decision) -> str:
    if decision.resolved_by is not ResolvedBy.human:
        return f"{decision.action} by policy ({decision.rule or decision.resolved_by.value})"
    verb = {"approve": "approved", "reject": "rejected", "edit": "edited and approved", "answer": "answered"}
    return f"{verb.get(decision.action, decision.action)} by {decision.actor}"
