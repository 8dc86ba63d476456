"""Reruns: a new run linked to an ended one, reusing its recorded steps, and retries of a failed
run's steps in place (private: use ``engine.service.Engine``; a rerun's plan is
``engine.rerun``'s)."""

from __future__ import annotations

from typing import Any

from engine._controlling import Controlling
from engine.agents import is_agent
from engine.audit import sha256_of
from engine.commands import Rerun, Retry
from engine.errors import Conflict, InvalidInput
from engine.model import CheckpointOutcome, Run, RunStatus, Step, StepStatus, Workflow
from engine.ports import AuditDraft, Claimed, Lease
from engine.rerun import RerunPlan, plan_rerun

__all__ = ["Rerunning"]


class Rerunning(Controlling):
    """``rerun``: the new run is created leased to this engine, with the reused steps, in one
    transaction that also audits the link on both runs; the caller drives it next."""

    async def rerun(self, command: Rerun) -> Run:
        """Rerun an ended run (its requester or an admin).

        Raises:
            NotAllowed: someone else's run. Conflict: it has not ended, or its data was purged.
            NotFound: no such run.
            InvalidInput: an unknown node, one the run never reached, or inputs the current
                version refuses (``latest``).
        """
        original = await self._rerunnable(command)
        workflow = (
            self.catalog.get(original.workflow_id)
            if command.latest
            else await self.catalog.pinned(original.workflow_hash, self.store)
        )
        steps = await self.store.list_steps(original.id)
        plan = plan_rerun(
            workflow, steps, run_id=original.id, from_node=command.from_node, reask=command.reask
        )
        carried = await self._carried(original, workflow, plan)
        await self._one_execution_per_approval(original, carried)
        await self._not_carried_out_again(original, workflow, plan, carried)
        if workflow.content_hash != original.workflow_hash:
            await self._same_checkpoints(original, workflow, plan)
        inputs = self.check_inputs(workflow, original.inputs) if command.latest else original.inputs
        await self._publish(workflow)
        run = self._rerun_of(original, workflow, inputs, plan, command, carried)
        if original.rejected and await self._reuses_a_reject(original.id, plan):
            run = run.model_copy(update={"rejected": True})  # the reused reject still ends its branch
        copies = [self._reused(step, run) for step in plan.reused]
        audit = await self._rerun_audit(original, run, workflow, plan, command)
        await self.store.create_run(run, audit, copies)
        lease = Lease(run_id=run.id, owner=self.owner, epoch=1, expires_at=run.created_at + self.lease_ttl)
        self._held[run.id] = Claimed(lease=lease, run=run, steps=copies)
        self._changed(run.id)
        self._changed(original.id)
        return run

    async def _rerunnable(self, command: Rerun) -> Run:
        original = await self.store.get_run(command.run_id)
        await self._may_control(original.id, command.actor, "rerun")
        if not original.status.final:
            raise Conflict(
                f"run {original.id} has not ended ({original.status.value}): cancel it first, or wait"
            )
        if original.purged_at is not None:
            raise Conflict(f"run {original.id}'s recorded data was purged by the retention policy")
        return original

    async def _carried(self, original: Run, workflow: Workflow, plan: RerunPlan) -> list[str]:
        """The human nodes whose decisions the rerun reuses to go on (a reused reject carries
        nothing out: it still ends its branch)."""
        rejected = {
            cp.node_id
            for cp in await self.store.list_checkpoints(run_id=original.id, limit=10_000)
            if cp.outcome is CheckpointOutcome.rejected
        }
        human = {n.id for n in workflow.nodes.values() if n.type == "human"}
        return sorted(s.node_id for s in plan.reused if s.node_id in human and s.node_id not in rejected)

    async def _one_execution_per_approval(self, original: Run, reused: list[str]) -> None:
        """A person's decision carries one execution of what it approved: a rerun may reuse it
        only to finish a run that failed or was cancelled before that execution succeeded, once,
        and never for an agent (its requester is a key, not a person who asked for this again).

        Raises:
            Conflict: the reuse would run approved actions again; ``--reask`` asks the people again.
        """
        if not reused:
            return
        again = "rerun with --reask to ask the people again"
        if is_agent(original.requester):
            raise Conflict(
                f"run {original.id} was started by an agent: its rerun cannot reuse the decision at "
                f"{', '.join(reused)}; {again}"
            )
        if original.status not in {RunStatus.failed, RunStatus.cancelled}:
            raise Conflict(
                f"run {original.id} {original.status.value}: the decision at {', '.join(reused)} was "
                f"carried out by that run, and reusing it would carry it out again; {again}"
            )
        family = [original.id]
        while family:
            for rerun in await self.store.reruns_of(family.pop()):
                carries = bool(rerun.origin.get("reused_decisions"))
                if carries and rerun.status not in {RunStatus.failed, RunStatus.cancelled}:
                    raise Conflict(
                        f"run {rerun.id} ({rerun.status.value}) already reran {original.id} with its "
                        f"decisions: one approval, one execution; {again}"
                    )
                family.append(rerun.id)

    async def _not_carried_out_again(
        self, original: Run, workflow: Workflow, plan: RerunPlan, carried: list[str]
    ) -> None:
        """A reused decision may finish what its run did not do, never redo what it did: a node
        after the decision that succeeded (in the original, or in a rerun that reused the same
        decision and then failed or was cancelled) is reused by the plan, not run again.

        Raises:
            Conflict: the plan runs again a node that already carried out the decision.
        """
        if not carried:
            return
        ancestors = workflow.compiled.ancestors
        after = {
            n for n, spec in workflow.nodes.items() if spec.type != "human" and ancestors[n] & set(carried)
        }
        kept = {s.node_id for s in plan.reused}
        runs, family = [original.id], [original.id]
        while family:
            for rerun in await self.store.reruns_of(family.pop()):
                if rerun.origin.get("reused_decisions"):
                    runs.append(rerun.id)
                family.append(rerun.id)
        for run_id in runs:
            done = sorted(
                {
                    s.node_id
                    for s in await self.store.list_steps(run_id)
                    if s.status is StepStatus.succeeded and s.node_id in after and s.node_id not in kept
                }
            )
            if done:
                nodes = ", ".join(f"'{n}'" for n in done)
                raise Conflict(
                    f"run {run_id} already carried out the decision at {', '.join(carried)} "
                    f"(node {nodes} succeeded): reusing it would carry it out again; rerun from a "
                    "later node, or with --reask to ask the people again"
                )

    async def _rerun_audit(
        self, original: Run, run: Run, workflow: Workflow, plan: RerunPlan, command: Rerun
    ) -> list[AuditDraft]:
        """``run.started`` on the new run (what it reuses, decisions included) and ``run.rerun``
        on the original: the link, both ways."""
        decisions = await self._reused_decisions(original.id, {s.node_id for s in plan.reused})
        link = {"rerun_of": original.id, "from": plan.start, "reask": command.reask, "latest": command.latest}
        started = {
            "workflow": workflow.id,
            "version": workflow.content_hash,
            "inputs_hash": sha256_of(run.inputs),
            **link,
            "reused": [s.node_id for s in plan.reused],
            "reused_decisions": decisions,
        }
        return [
            self._audit("run.started", command.actor, command.channel, run.id, payload=started),
            self._audit(
                "run.rerun", command.actor, command.channel, original.id, payload={"rerun": run.id, **link}
            ),
        ]

    def _rerun_of(
        self,
        original: Run,
        workflow: Workflow,
        inputs: dict[str, Any],
        plan: RerunPlan,
        command: Rerun,
        carried: list[str],
    ) -> Run:
        now = self.clock.now()
        origin: dict[str, Any] = {
            "channel": command.channel,
            "rerun_of": original.id,
            "from": plan.start,
            "rerun_by": command.actor,
        }
        if carried:  # the decisions this run carries out (one approval, one execution)
            origin["reused_decisions"] = carried
        for kept in ("slack_channel", "team"):  # the same workspace: its cards, its gate rule
            if kept in original.origin:
                origin[kept] = original.origin[kept]
        return Run(
            id=self.ids.new("run_"),
            workflow_id=workflow.id,
            workflow_hash=workflow.content_hash,
            status=RunStatus.queued,
            inputs=inputs,
            requester=original.requester,  # the same request, so the same requester rule
            origin=origin,
            pending=plan.pending,
            created_at=now,
            updated_at=now,
            lease_owner=self.owner,
            lease_epoch=1,
            lease_expires_at=now + self.lease_ttl,
            rerun_of=original.id,
            team=original.team,
        )

    def _reused(self, step: Step, run: Run) -> Step:
        """A recorded step, copied into the rerun: its output as it was, at no tokens or cost."""
        return step.model_copy(
            update={
                "id": self.ids.new("step_"),
                "run_id": run.id,
                "attempt": 1,
                "input_tokens": None,
                "output_tokens": None,
                "cost_usd": None,
            }
        )

    async def _reused_decisions(self, run_id: str, nodes: set[str]) -> list[str]:
        """The ids of the original's decisions whose human nodes the rerun reuses."""
        reused = {
            cp.id
            for cp in await self.store.list_checkpoints(run_id=run_id, limit=10_000)
            if cp.node_id in nodes
        }
        return [d.id for d in await self.store.list_decisions(run_id=run_id) if d.checkpoint_id in reused]

    async def retry(self, command: Retry) -> Run:
        """Queue a failed run's failed steps for another attempt in the same run (its requester
        or an admin); drive it next. Their idempotency keys do not change (run id + node id), so
        a service that saw the first attempt can tell the second is the same request.

        Raises:
            Conflict: the run is not failed, failed without a failed step (a limit), a failure
                is not retryable, or its failure closed a checkpoint: rerun it instead.
        """
        run = await self.store.get_run(command.run_id)
        await self._may_control(run.id, command.actor, "retry")
        if run.status is not RunStatus.failed:
            raise Conflict(f"run {run.id} is {run.status.value}, not failed: only a failed run is retried")
        failed = [s for s in await self.store.list_steps(run.id) if s.status is StepStatus.failed]
        rerun = f"rerun it instead (signoff rerun {run.id})"
        if not failed:
            raise Conflict(f"run {run.id} failed without a failed step ({run.reason}): {rerun}")
        for step in failed:
            if not step.retryable:
                raise Conflict(
                    f"node '{step.node_id}' failed in a way a retry cannot fix ({step.error}): {rerun}"
                )
        closed = await self.store.list_checkpoints(run_id=run.id, limit=10_000)
        if any(cp.outcome is CheckpointOutcome.cancelled for cp in closed):
            raise Conflict(f"a checkpoint of run {run.id} was closed when it failed: {rerun}")
        await self._no_other_execution(run)
        again = [
            s.model_copy(
                update={"status": StepStatus.running, "error": None, "ended_at": None, "retryable": False}
            )
            for s in failed
        ]
        payload = {"nodes": [s.node_id for s in failed], "attempts": [s.attempt + 1 for s in failed]}
        audit = self._audit("run.retried", command.actor, command.channel, run.id, payload=payload)
        run = await self.store.reopen_run(run.id, self.clock.now(), again, [audit])
        self._changed(run.id)
        return run

    async def _no_other_execution(self, run: Run) -> None:
        """A retry carries out the decisions of ``run`` (its own, or those it reused) again in
        place; it is refused when another run of the family carries them out as well (a rerun
        that reused them): one approval, one execution.

        Raises:
            Conflict: another run reused the decisions ``run`` would carry out.
        """
        root = run
        while root.rerun_of is not None and root.origin.get("reused_decisions"):
            root = await self.store.get_run(root.rerun_of)
        family = [root.id]
        while family:
            for other in await self.store.reruns_of(family.pop()):
                if other.id != run.id and other.origin.get("reused_decisions"):
                    raise Conflict(
                        f"run {other.id} ({other.status.value}) reran {root.id} with its decisions, so "
                        f"retrying {run.id} would carry them out again: one approval, one execution; "
                        f"retry {other.id} instead, or rerun with --reask to ask the people again"
                    )
                family.append(other.id)

    async def _reuses_a_reject(self, run_id: str, plan: RerunPlan) -> bool:
        reused = set(await self._reused_decisions(run_id, {s.node_id for s in plan.reused}))
        return any(
            d.action == "reject" for d in await self.store.list_decisions(run_id=run_id) if d.id in reused
        )

    async def _same_checkpoints(self, original: Run, workflow: Workflow, plan: RerunPlan) -> None:
        """On another version, a decision is reused only for a human node defined exactly as the
        person saw it: what Approve passes on is what they were shown."""
        before = await self.catalog.pinned(original.workflow_hash, self.store)
        for step in plan.reused:
            old, new = before.nodes.get(step.node_id), workflow.nodes[step.node_id]
            if new.type != "human":
                continue
            if old is None or old.type != new.type or old.config.model_dump() != new.config.model_dump():
                raise InvalidInput(
                    f"checkpoint '{step.node_id}' changed in the current version of '{workflow.id}'",
                    {"reask": "add --reask to ask again, or rerun without --latest"},
                )
