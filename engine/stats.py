"""Checkpoint analytics: rates, time to decision, per approver, and advice (pure functions)."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from engine.model import AuditEvent, Checkpoint, CheckpointOutcome, Decision, ResolvedBy, Run
from engine.ports import RunStore

__all__ = [
    "EDIT_ABOVE",
    "RELAX_ABOVE",
    "ApproverStats",
    "NodeStats",
    "StatsReport",
    "checkpoint_stats",
    "counted_outcome",
    "load_stats",
]

RELAX_ABOVE = 0.95
EDIT_ABOVE = 0.30
RUBBER_STAMP_CHARS = 2000
RUBBER_STAMP_SECONDS = 10.0


class ApproverStats(BaseModel):
    """One person's decisions on one checkpoint node."""

    model_config = ConfigDict(frozen=True)

    actor: str
    decisions: int
    approved: int
    rejected: int
    edited: int
    median_seconds: float | None


class NodeStats(BaseModel):
    """Figures for one human node of one workflow."""

    model_config = ConfigDict(frozen=True)

    workflow: str
    node: str
    count: int
    open: int
    approve_rate: float
    reject_rate: float
    edit_rate: float
    timeout_rate: float
    answer_rate: float = 0.0
    median_seconds: float | None
    p90_seconds: float | None
    approvers: list[ApproverStats] = Field(default_factory=list)
    advice: list[str] = Field(default_factory=list)


class StatsReport(BaseModel):
    """Every node's figures."""

    model_config = ConfigDict(frozen=True)

    since: datetime | None
    nodes: list[NodeStats]


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def checkpoint_stats(
    runs: list[Run],
    checkpoints: list[Checkpoint],
    decisions: list[Decision],
    *,
    since: datetime | None = None,
    events: list[AuditEvent] | None = None,
) -> StatsReport:
    """Group checkpoints by (workflow, node) and compute rates, timings and advice.

    ``events`` (the audit trail) adds what a final decision alone does not show: each quorum
    vote counts for its approver, and a checkpoint whose proposal a quorum member edited counts
    as edited even when the last approver's decision is an approval.
    """
    workflow_of = {r.id: r.workflow_id for r in runs}
    by_cp = {d.checkpoint_id: d for d in decisions}
    acts: dict[str, list[_Act]] = defaultdict(list)
    for e in events or []:
        if e.checkpoint_id is not None and e.kind in _EVENT_ACTIONS:
            acts[e.checkpoint_id].append(_Act(actor=e.actor, action=_EVENT_ACTIONS[e.kind], at=e.at))
    groups: dict[tuple[str, str], list[Checkpoint]] = defaultdict(list)
    for cp in checkpoints:
        if since is not None and cp.created_at < since:
            continue
        groups[(workflow_of.get(cp.run_id, "?"), cp.node_id)].append(cp)
    nodes = [_node(wf, node, cps, by_cp, acts) for (wf, node), cps in sorted(groups.items())]
    return StatsReport(since=since, nodes=nodes)


async def load_stats(store: RunStore, *, workflow: str | None, since: datetime | None) -> StatsReport:
    """Read what ``checkpoint_stats`` needs from the store (all runs, or one workflow's)."""
    runs = await store.list_runs(workflow_id=workflow, limit=1_000_000)
    wanted = {r.id for r in runs}
    checkpoints = [cp for cp in await store.list_checkpoints(limit=1_000_000) if cp.run_id in wanted]
    decisions = [d for d in await store.list_decisions() if d.run_id in wanted]
    events = [
        e for e in await store.audit_events(since=since) if e.kind in _EVENT_ACTIONS and e.run_id in wanted
    ]
    return checkpoint_stats(runs, checkpoints, decisions, since=since, events=events)


_EVENT_ACTIONS = {"checkpoint.vote": "approve", "checkpoint.edited": "edit"}


class _Act(BaseModel):
    """One person's act on a checkpoint: a quorum vote, a quorum edit or the final decision."""

    model_config = ConfigDict(frozen=True)

    actor: str
    action: str
    at: datetime


def counted_outcome(cp: Checkpoint, events: list[AuditEvent]) -> CheckpointOutcome | None:
    """How a checkpoint counts in the rates, given its audit events: edited when a quorum
    member edited its proposal along the way, even if the last decision is an approval."""
    return _outcome(
        cp,
        [
            _Act(actor=e.actor, action=_EVENT_ACTIONS[e.kind], at=e.at)
            for e in events
            if e.kind in _EVENT_ACTIONS
        ],
    )


def _outcome(cp: Checkpoint, acts: list[_Act]) -> CheckpointOutcome | None:
    """How the checkpoint counts: edited when anyone edited its proposal along the way."""
    if cp.outcome is CheckpointOutcome.approved and any(a.action == "edit" for a in acts):
        return CheckpointOutcome.edited
    return cp.outcome


def _node(
    workflow: str,
    node: str,
    cps: list[Checkpoint],
    by_cp: dict[str, Decision],
    acts: dict[str, list[_Act]],
) -> NodeStats:
    decided = [(cp, by_cp[cp.id]) for cp in cps if cp.id in by_cp]
    n = len(decided) or 1
    outcomes = [_outcome(cp, acts.get(cp.id, [])) for cp, _ in decided]
    seconds = [
        (d.created_at - cp.created_at).total_seconds()
        for cp, d in decided
        if d.resolved_by is ResolvedBy.human
    ]
    rate = {o: outcomes.count(o) / n for o in CheckpointOutcome}
    per: dict[str, list[tuple[Checkpoint, _Act]]] = defaultdict(list)
    for cp, d in decided:
        for act in acts.get(cp.id, []):
            per[act.actor].append((cp, act))
        if d.resolved_by is ResolvedBy.human:
            per[d.actor].append((cp, _Act(actor=d.actor, action=d.action, at=d.created_at)))
    approvers = [
        ApproverStats(
            actor=actor,
            decisions=len(items),
            approved=sum(a.action == "approve" for _, a in items),
            rejected=sum(a.action == "reject" for _, a in items),
            edited=sum(a.action == "edit" for _, a in items),
            median_seconds=statistics.median([(a.at - cp.created_at).total_seconds() for cp, a in items]),
        )
        for actor, items in sorted(per.items())
    ]
    stats = NodeStats(
        workflow=workflow,
        node=node,
        count=len(cps),
        open=sum(cp.outcome is None for cp in cps),
        approve_rate=round(rate[CheckpointOutcome.approved], 3),
        reject_rate=round(rate[CheckpointOutcome.rejected], 3),
        edit_rate=round(rate[CheckpointOutcome.edited], 3),
        timeout_rate=round(rate[CheckpointOutcome.timed_out], 3),
        answer_rate=round(rate[CheckpointOutcome.answered], 3),
        median_seconds=statistics.median(seconds) if seconds else None,
        p90_seconds=_pct(seconds, 0.9),
        approvers=approvers,
    )
    return stats.model_copy(update={"advice": _advice(stats, decided)})


def _advice(stats: NodeStats, decided: list[tuple[Checkpoint, Decision]]) -> list[str]:
    advice: list[str] = []
    if len(decided) >= 10 and stats.approve_rate > RELAX_ABOVE:
        advice.append(
            f"{stats.approve_rate:.0%} approved unchanged: "
            "a candidate to relax (a `when` condition) or to auto-approve"
        )
    if len(decided) >= 5 and stats.edit_rate > EDIT_ABOVE:
        advice.append(f"{stats.edit_rate:.0%} edited: the step before '{stats.node}' needs work")
    fast_long = [
        d
        for cp, d in decided
        if d.resolved_by is ResolvedBy.human
        and len(json.dumps(cp.context, default=str)) > RUBBER_STAMP_CHARS
        and (d.created_at - cp.created_at).total_seconds() < RUBBER_STAMP_SECONDS
    ]
    if fast_long:
        who = ", ".join(sorted({d.actor for d in fast_long}))
        advice.append(
            f"{len(fast_long)} decision(s) on long payloads in under {RUBBER_STAMP_SECONDS:.0f}s "
            f"(possible rubber-stamping: {who})"
        )
    return advice
