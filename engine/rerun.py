"""Planning a rerun: which recorded steps a new run reuses, and where it starts (pure).

A rerun of run R from node N is a new run of R's version (or the current one) with R's inputs.
It reuses, as they were recorded, the outputs of R's steps that succeeded and are not N or
downstream of N — decisions included, so nobody is asked again — and starts at the nodes R
reached right after those. With ``reask``, human nodes and everything downstream of them run
again, so their people are asked again. Without a node, a failed run reruns from the node that
failed, any other from its entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import InvalidInput
from engine.model import Step, StepStatus, Workflow

__all__ = ["RerunPlan", "plan_rerun"]


@dataclass(frozen=True)
class RerunPlan:
    """What a rerun reuses (the original run's steps) and what it has pending at its start."""

    start: str
    reused: list[Step]
    pending: list[str]


def plan_rerun(
    workflow: Workflow, steps: Sequence[Step], *, run_id: str, from_node: str | None, reask: bool
) -> RerunPlan:
    """Plan a rerun of the run whose ``steps`` (in start order) are given, on ``workflow``.

    Raises:
        InvalidInput: ``from_node`` is not a node of ``workflow``, or the run never reached it.
    """
    ran = list(dict.fromkeys(s.node_id for s in steps if s.node_id in workflow.nodes))
    start = from_node or _default_start(workflow, steps)
    if start not in workflow.nodes:
        known = ", ".join(workflow.nodes)
        raise InvalidInput(
            f"node '{start}' is not in workflow '{workflow.id}'", {"from": f"use one of: {known}"}
        )
    if start not in ran and start != workflow.entry:
        reached = ", ".join(ran) or "none"
        raise InvalidInput(
            f"run {run_id} never reached node '{start}'", {"from": f"use a node it reached: {reached}"}
        )
    ancestors = workflow.compiled.ancestors
    again = {start} | {n for n in workflow.nodes if start in ancestors[n]}
    if reask:
        people = {n for n, spec in workflow.nodes.items() if spec.type == "human"}
        again |= people | {n for n in workflow.nodes if ancestors[n] & people}
    reused = [s for s in steps if s.status is StepStatus.succeeded and s.node_id in workflow.nodes]
    reused = [s for s in reused if s.node_id not in again]
    kept = {s.node_id for s in reused}
    sources = {n: {e.source for e in workflow.edges if e.target == n} for n in workflow.nodes}
    pending = [n for n in [*ran, start] if n not in kept and (n == workflow.entry or sources[n] & kept)]
    return RerunPlan(start=start, reused=reused, pending=list(dict.fromkeys(pending)))


def _default_start(workflow: Workflow, steps: Sequence[Step]) -> str:
    failed = [s.node_id for s in steps if s.status is StepStatus.failed and s.node_id in workflow.nodes]
    return failed[0] if failed else workflow.entry
