"""Chart data for the console: latency, time to decision, cost and decision rates over time (pure).

Every chart is a set of series on one time axis: the start of each bucket (an hour when the
period is two days or less, else a day, in UTC), from the bucket holding ``since`` to the one
holding ``now``. A bucket without data has ``None``, so a line shows a gap, not a zero.

- ``latency``: p50/p90/p99 seconds of finished runs (``by="workflow"``, by the run's start) or
  of finished steps of automated nodes (``by="node"``, by the step's start; a human node's step
  is the wait for a person, which is the ``decisions`` chart).
- ``decisions``: p50/p90/p99 seconds from a checkpoint's creation to a person's decision, per
  checkpoint node (policy and timeout resolutions are not a person's time).
- ``cost``: the sum of ``cost_usd`` and of tokens of the steps started in each bucket, by
  workflow, node or model (the model an ``llm`` step called; ``(unknown)`` otherwise).
- ``rates``: the share of decided checkpoints approved, edited, rejected, answered and timed
  out, counted as ``engine.stats`` counts them (a quorum edit makes a checkpoint edited), with
  the advice thresholds (95 % approved, 30 % edited) as flat lines.

Percentiles are nearest-rank: the smallest value with at least q of the values at or below it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.errors import InvalidInput
from engine.model import AuditEvent, Checkpoint, CheckpointOutcome, Decision, ResolvedBy, Run, Step
from engine.ports import RunStore
from engine.stats import EDIT_ABOVE, RELAX_ABOVE, checkpoint_stats, counted_outcome

__all__ = [
    "CHARTS",
    "MAX_PERIOD",
    "Chart",
    "ChartQuery",
    "Series",
    "cost_chart",
    "decision_chart",
    "latency_chart",
    "load_chart",
    "percentile",
    "rates_chart",
]

CHARTS = ("latency", "decisions", "cost", "rates")
MAX_PERIOD = timedelta(days=366)
HOURLY_UP_TO = timedelta(days=2)
PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
UNKNOWN_MODEL = "(unknown)"
# steps of these node types are waits for people, not work: their time is the decisions chart's
WAITING_NODE_TYPES = frozenset({"human"})

Bucket = Literal["hour", "day"]


class Series(BaseModel):
    """One line: a group (workflow, node or model) and what is measured (p50, cost_usd, approved...)."""

    model_config = ConfigDict(frozen=True)

    name: str
    group: str
    stat: str
    values: list[float | None]


class Chart(BaseModel):
    """Series on a shared time axis (``x``: bucket starts, seconds since the epoch, UTC)."""

    model_config = ConfigDict(frozen=True)

    chart: str
    unit: str
    bucket: Bucket
    since: datetime
    until: datetime
    x: list[int]
    series: list[Series] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=dict)
    advice: list[str] = Field(default_factory=list)


class ChartQuery(BaseModel):
    """What a chart shows: the period, one workflow or node (or all), and the grouping."""

    model_config = ConfigDict(frozen=True)

    since: datetime
    now: datetime
    workflow: str | None = None
    node: str | None = None
    by: Literal["workflow", "node", "model"] = "workflow"

    @property
    def bucket(self) -> Bucket:
        return "hour" if self.now - self.since <= HOURLY_UP_TO else "day"


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _floor(moment: datetime, bucket: Bucket) -> datetime:
    moment = moment.astimezone(UTC)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _axis(query: ChartQuery) -> list[datetime]:
    step = timedelta(hours=1) if query.bucket == "hour" else timedelta(days=1)
    start, end = _floor(query.since, query.bucket), _floor(query.now, query.bucket)
    axis = []
    while start <= end:
        axis.append(start)
        start += step
    return axis


def _chart(query: ChartQuery, chart: str, unit: str, **extra: object) -> Chart:
    axis = _axis(query)
    return Chart.model_validate(
        {
            "chart": chart,
            "unit": unit,
            "bucket": query.bucket,
            "since": query.since,
            "until": query.now,
            "x": [int(t.timestamp()) for t in axis],
            **extra,
        }
    )


def _in_period(moment: datetime, query: ChartQuery) -> bool:
    return query.since <= moment <= query.now


def _bucketed(
    query: ChartQuery, samples: Iterable[tuple[str, datetime, float]]
) -> dict[str, dict[datetime, list[float]]]:
    grouped: dict[str, dict[datetime, list[float]]] = defaultdict(lambda: defaultdict(list))
    for group, moment, value in samples:
        if _in_period(moment, query):
            grouped[group][_floor(moment, query.bucket)].append(value)
    return grouped


def _percentile_series(query: ChartQuery, samples: Iterable[tuple[str, datetime, float]]) -> list[Series]:
    axis = _axis(query)
    series = []
    for group, buckets in sorted(_bucketed(query, samples).items()):
        for stat, q in PERCENTILES:
            values = [percentile(buckets.get(t, []), q) for t in axis]
            series.append(Series(name=f"{group} {stat}", group=group, stat=stat, values=values))
    return series


def latency_chart(query: ChartQuery, runs: list[Run], steps: list[Step]) -> Chart:
    """p50/p90/p99 seconds of finished runs (by workflow) or automated steps (by node)."""
    workflow_of = {r.id: r.workflow_id for r in runs}
    samples: list[tuple[str, datetime, float]]
    if query.by == "node":
        samples = [
            (
                f"{workflow_of.get(s.run_id, '?')}/{s.node_id}",
                s.started_at,
                (s.ended_at - s.started_at).total_seconds(),
            )
            for s in steps
            if s.ended_at is not None
            and s.node_type not in WAITING_NODE_TYPES
            and (query.node is None or s.node_id == query.node)
        ]
    else:
        samples = [
            (r.workflow_id, r.created_at, (r.finished_at - r.created_at).total_seconds())
            for r in runs
            if r.finished_at is not None
        ]
    return _chart(query, "latency", "seconds", series=_percentile_series(query, samples))


def decision_chart(
    query: ChartQuery, runs: list[Run], checkpoints: list[Checkpoint], decisions: list[Decision]
) -> Chart:
    """p50/p90/p99 seconds from a checkpoint's creation to a person's decision, per node."""
    workflow_of = {r.id: r.workflow_id for r in runs}
    by_cp = {d.checkpoint_id: d for d in decisions if d.resolved_by is ResolvedBy.human}
    samples = [
        (
            f"{workflow_of.get(cp.run_id, '?')}/{cp.node_id}",
            cp.created_at,
            (by_cp[cp.id].created_at - cp.created_at).total_seconds(),
        )
        for cp in checkpoints
        if cp.id in by_cp and (query.node is None or cp.node_id == query.node)
    ]
    return _chart(query, "decisions", "seconds", series=_percentile_series(query, samples))


def _model_of(step: Step) -> str:
    model = step.input.get("model")
    return model if isinstance(model, str) and model else UNKNOWN_MODEL


def cost_chart(query: ChartQuery, runs: list[Run], steps: list[Step]) -> Chart:
    """Summed cost (USD) and tokens of the steps started in each bucket, by workflow, node or model."""
    workflow_of = {r.id: r.workflow_id for r in runs}

    def group(s: Step) -> str:
        workflow = workflow_of.get(s.run_id, "?")
        return {"workflow": workflow, "node": f"{workflow}/{s.node_id}", "model": _model_of(s)}[query.by]

    used = [
        s
        for s in steps
        if (s.cost_usd is not None or s.input_tokens is not None)
        and (query.node is None or s.node_id == query.node)
    ]
    axis = _axis(query)
    series = []
    measures: tuple[tuple[str, Callable[[Step], float]], ...] = (
        ("cost_usd", lambda s: s.cost_usd or 0.0),
        ("tokens", lambda s: float((s.input_tokens or 0) + (s.output_tokens or 0))),
    )
    for stat, measure in measures:
        grouped = _bucketed(query, ((group(s), s.started_at, measure(s)) for s in used))
        for name, buckets in sorted(grouped.items()):
            values = [round(sum(buckets[t]), 6) if t in buckets else None for t in axis]
            series.append(Series(name=f"{name} {stat}", group=name, stat=stat, values=values))
    return _chart(query, "cost", "usd", series=series)


_RATED = (
    CheckpointOutcome.approved,
    CheckpointOutcome.edited,
    CheckpointOutcome.rejected,
    CheckpointOutcome.answered,
    CheckpointOutcome.timed_out,
)


def rates_chart(
    query: ChartQuery,
    runs: list[Run],
    checkpoints: list[Checkpoint],
    decisions: list[Decision],
    events: list[AuditEvent],
    advice: list[str] | None = None,
) -> Chart:
    """Share of decided checkpoints by outcome, per bucket of their creation, with the thresholds."""
    wanted = {r.id for r in runs}
    decided_ids = {d.checkpoint_id for d in decisions}
    acts: dict[str, list[AuditEvent]] = defaultdict(list)
    for e in events:
        if e.checkpoint_id is not None:
            acts[e.checkpoint_id].append(e)
    outcomes = [
        (outcome.value, cp.created_at, 1.0)
        for cp in checkpoints
        if cp.run_id in wanted and cp.id in decided_ids and (query.node is None or cp.node_id == query.node)
        for outcome in [counted_outcome(cp, acts.get(cp.id, []))]
        if outcome is not None
    ]
    grouped = _bucketed(query, outcomes)
    axis = _axis(query)
    totals = {t: sum(len(b.get(t, [])) for b in grouped.values()) for t in axis}
    series = [
        Series(
            name=outcome.value,
            group="all",
            stat=outcome.value,
            values=[
                round(len(grouped.get(outcome.value, {}).get(t, [])) / totals[t], 4) if totals[t] else None
                for t in axis
            ],
        )
        for outcome in _RATED
    ]
    thresholds = {"relax_above": RELAX_ABOVE, "edit_above": EDIT_ABOVE}
    return _chart(query, "rates", "share", series=series, thresholds=thresholds, advice=advice or [])


async def load_chart(store: RunStore, chart: str, query: ChartQuery) -> Chart:
    """Read what one chart needs (runs started in the period, of one workflow or all) and build it.

    Raises:
        InvalidInput: an unknown chart, or a period longer than ``MAX_PERIOD``.
    """
    if chart not in CHARTS:
        raise InvalidInput(f"unknown chart '{chart}': one of {', '.join(CHARTS)}", {"chart": "unknown chart"})
    if query.now - query.since > MAX_PERIOD:
        raise InvalidInput(f"a chart covers at most {MAX_PERIOD.days} days", {"since": "too long"})
    runs = [
        r
        for r in await store.list_runs(workflow_id=query.workflow, limit=1_000_000)
        if _in_period(r.created_at, query)
    ]
    if chart in ("latency", "cost"):
        steps = await store.steps_of_runs(
            created_since=query.since, created_until=query.now, workflow_id=query.workflow
        )
        return latency_chart(query, runs, steps) if chart == "latency" else cost_chart(query, runs, steps)
    wanted = {r.id for r in runs}
    checkpoints = [cp for cp in await store.list_checkpoints(limit=1_000_000) if cp.run_id in wanted]
    decisions = [d for d in await store.list_decisions() if d.run_id in wanted]
    if chart == "decisions":
        return decision_chart(query, runs, checkpoints, decisions)
    events = [e for e in await store.audit_events(since=query.since) if e.run_id in wanted]
    report = checkpoint_stats(runs, checkpoints, decisions, since=query.since, events=events)
    advice = [
        f"{n.workflow}/{n.node}: {line}"
        for n in report.nodes
        if query.node is None or n.node == query.node
        for line in n.advice
    ]
    return rates_chart(query, runs, checkpoints, decisions, events, advice)
