"""Pure decisions of the runner: template scope, which edges hold, and how a run ends.

Nothing here does I/O; ``engine.service.Engine`` applies the results through the ports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.expressions import ExpressionError
from engine.model import Checkpoint, Deliverable, Run, RunStatus, Step, StepStatus, Workflow

__all__ = ["NoMatchingEdge", "build_scope", "final_status", "next_nodes", "response_data"]


class NoMatchingEdge(ExpressionError):
    """A non-terminal node finished and none of its edges holds."""


def build_scope(run: Run, workflow: Workflow, outputs: dict[str, Deliverable]) -> dict[str, Any]:
    """What templates and conditions can read: inputs, earlier deliverables and the run."""
    return {
        "inputs": run.inputs,
        "nodes": {nid: {"text": d.text, "data": d.data, "files": d.files} for nid, d in outputs.items()},
        "run": {
            "id": run.id,
            "workflow": run.workflow_id,
            "version": run.workflow_hash,
            "requester": run.requester,
        },
    }


def response_data(
    cp: Checkpoint,
    *,
    action: str,
    data: dict[str, Any],
    actor: str,
    comment: str | None,
    resolved_by: str,
    rule: str | None,
) -> dict[str, Any]:
    """The decision as edges read it (``response``) and later nodes read it (``nodes.<id>.data``).

    Schema fields that were not given are ``null`` so that ``response.x != null`` works.
    """
    fields = {name: None for name in cp.response_schema.get("properties", {})}
    fields.update(data)
    return {
        **fields,
        "action": action,
        "resolved_by": resolved_by,
        "actor": actor,
        "comment": comment,
        "rule": rule,
    }


def next_nodes(
    workflow: Workflow, node_id: str, scope: dict[str, Any], *, response: dict[str, Any] | None = None
) -> list[str]:
    """Targets of every edge leaving ``node_id`` whose ``when`` holds, in file order.

    Raises:
        ExpressionError: a condition could not be evaluated.
        NoMatchingEdge: the node has edges but none holds.
    """
    edges = [(i, e) for i, e in enumerate(workflow.edges) if e.source == node_id]
    if not edges:
        return []
    full = {**scope, "response": response} if response is not None else scope
    targets: list[str] = []
    for index, edge in edges:
        condition = workflow.compiled.conditions.get(index)
        if condition is None or condition.evaluate(full):
            targets.append(edge.target)
    if not targets:
        conditions = "; ".join(f"→{e.target}: {e.when}" for _, e in edges)
        raise NoMatchingEdge(f"node '{node_id}' finished but no outgoing edge matches ({conditions})")
    return list(dict.fromkeys(targets))


def final_status(run: Run, steps: Iterable[Step]) -> tuple[RunStatus, str | None]:
    """The status of a run with no pending nodes: waiting, failed, rejected or succeeded."""
    failed = None
    waiting = False
    for step in steps:
        if step.status is StepStatus.failed and failed is None:
            failed = step
        waiting = waiting or step.status is StepStatus.waiting
    if failed is not None:
        return RunStatus.failed, f"node '{failed.node_id}' failed: {failed.error}"
    if waiting:
        return RunStatus.waiting, None
    if run.rejected:
        return RunStatus.rejected, run.reason or "a checkpoint was rejected"
    return RunStatus.succeeded, None
