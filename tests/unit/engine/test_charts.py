"""Chart data: buckets, nearest-rank percentiles, cost sums and decision rates for known runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.charts import (
    Chart,
    ChartQuery,
    cost_chart,
    decision_chart,
    latency_chart,
    load_chart,
    percentile,
    rates_chart,
)
from engine.errors import InvalidInput
from engine.model import (
    AuditEvent,
    Checkpoint,
    CheckpointOutcome,
    CheckpointStatus,
    Decision,
    ResolvedBy,
    Run,
    RunStatus,
    Step,
    StepStatus,
)
from engine.testing import InMemoryRunStore

DAY1 = datetime(2026, 3, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
NOW = DAY2 + timedelta(hours=12)
WEEK = ChartQuery(since=NOW - timedelta(days=3), now=NOW)


def _run(rid: str, workflow: str, start: datetime, seconds: float | None) -> Run:
    return Run(
        id=rid,
        workflow_id=workflow,
        workflow_hash="h",
        status=RunStatus.succeeded if seconds is not None else RunStatus.waiting,
        inputs={},
        requester="rita",
        created_at=start,
        updated_at=start,
        finished_at=None if seconds is None else start + timedelta(seconds=seconds),
    )


def _step(run: Run, node: str, seconds: float, **extra: Any) -> Step:
    return Step(
        id=f"{run.id}-{node}",
        run_id=run.id,
        node_id=node,
        node_type=extra.pop("node_type", "llm"),
        status=StepStatus.succeeded,
        started_at=run.created_at,
        ended_at=run.created_at + timedelta(seconds=seconds),
        **extra,
    )


def _values(chart: Chart, name: str) -> list[float | None]:
    return next(s.values for s in chart.series if s.name == name)


def _at(chart: Chart, day: datetime) -> int:
    return chart.x.index(int(day.timestamp()))


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 11)]  # 1..10
    assert percentile(values, 0.5) == 5
    assert percentile(values, 0.9) == 9
    assert percentile(values, 0.99) == 10
    assert percentile([7.0], 0.99) == 7
    assert percentile([], 0.5) is None


def test_the_axis_is_days_for_long_periods_and_hours_for_short_ones() -> None:
    chart = latency_chart(WEEK, [], [])
    assert chart.bucket == "day"
    assert chart.x[0] == int((DAY1 - timedelta(days=2)).timestamp())  # the day holding since
    assert chart.x[-1] == int(DAY2.timestamp())
    assert len(chart.x) == 4
    short = latency_chart(ChartQuery(since=NOW - timedelta(hours=5), now=NOW), [], [])
    assert short.bucket == "hour"
    assert len(short.x) == 6
    assert short.x[1] - short.x[0] == 3600


def test_run_latency_per_workflow_per_day() -> None:
    runs = [_run(f"a{i}", "alpha", DAY1 + timedelta(hours=1), float(i)) for i in range(1, 11)]
    runs += [
        _run("b1", "beta", DAY2, 100.0),
        _run("b2", "beta", DAY2, 300.0),
        _run("open", "beta", DAY2, None),
    ]
    runs.append(_run("old", "alpha", NOW - timedelta(days=30), 999.0))  # before the period
    chart = latency_chart(WEEK, runs, [])
    assert [s.name for s in chart.series] == [
        "alpha p50",
        "alpha p90",
        "alpha p99",
        "beta p50",
        "beta p90",
        "beta p99",
    ]
    d1, d2 = _at(chart, DAY1), _at(chart, DAY2)
    assert (
        _values(chart, "alpha p50")[d1],
        _values(chart, "alpha p90")[d1],
        _values(chart, "alpha p99")[d1],
    ) == (
        5,
        9,
        10,
    )
    assert _values(chart, "alpha p50")[d2] is None  # a gap, not a zero
    assert _values(chart, "beta p50")[d2] == 100
    assert _values(chart, "beta p99")[d2] == 300
    assert _values(chart, "alpha p99")[0] is None


def test_step_latency_per_node_leaves_out_waits_for_people() -> None:
    run = _run("r1", "alpha", DAY1, 50.0)
    other = _run("r2", "alpha", DAY1, 50.0)
    steps = [
        _step(run, "draft", 2.0),
        _step(other, "draft", 4.0),
        _step(run, "review", 3600.0, node_type="human"),
    ]
    chart = latency_chart(WEEK.model_copy(update={"by": "node"}), [run, other], steps)
    assert {s.group for s in chart.series} == {"alpha/draft"}
    d1 = _at(chart, DAY1)
    assert _values(chart, "alpha/draft p50")[d1] == 2
    assert _values(chart, "alpha/draft p99")[d1] == 4


def _cp(cid: str, run: Run, node: str, outcome: CheckpointOutcome | None) -> Checkpoint:
    return Checkpoint(
        id=cid,
        run_id=run.id,
        node_id=node,
        status=CheckpointStatus.resolved if outcome else CheckpointStatus.open,
        outcome=outcome,
        created_at=run.created_at,
    )


def _decision(cp: Checkpoint, action: str, seconds: float, by: ResolvedBy = ResolvedBy.human) -> Decision:
    return Decision(
        id=f"d-{cp.id}",
        checkpoint_id=cp.id,
        run_id=cp.run_id,
        action=action,
        actor="alice",
        channel="web",
        resolved_by=by,
        created_at=cp.created_at + timedelta(seconds=seconds),
    )


def _event(seq: int, kind: str, cp: Checkpoint, actor: str) -> AuditEvent:
    return AuditEvent(
        seq=seq,
        at=cp.created_at + timedelta(seconds=5),
        actor=actor,
        channel="web",
        kind=kind,
        run_id=cp.run_id,
        checkpoint_id=cp.id,
        prev_hash="",
        hash=str(seq),
    )


def _decided() -> tuple[list[Run], list[Checkpoint], list[Decision], list[AuditEvent]]:
    runs = [_run(f"r{i}", "alpha", DAY1, None) for i in range(6)]
    cps = [
        _cp("c0", runs[0], "review", CheckpointOutcome.approved),
        _cp("c1", runs[1], "review", CheckpointOutcome.approved),  # a quorum member edited it first
        _cp("c2", runs[2], "review", CheckpointOutcome.rejected),
        _cp("c3", runs[3], "ask", CheckpointOutcome.answered),
        _cp("c4", runs[4], "review", CheckpointOutcome.timed_out),
        _cp("c5", runs[5], "review", None),  # still open: not counted
    ]
    decisions = [
        _decision(cps[0], "approve", 60),
        _decision(cps[1], "approve", 120),
        _decision(cps[2], "reject", 600),
        _decision(cps[3], "answer", 30),
        _decision(cps[4], "reject", 4 * 3600, ResolvedBy.timeout),
    ]
    events = [_event(1, "checkpoint.edited", cps[1], "bob"), _event(2, "checkpoint.vote", cps[1], "carol")]
    return runs, cps, decisions, events


def test_time_to_decision_counts_people_only_per_checkpoint_node() -> None:
    runs, cps, decisions, _ = _decided()
    chart = decision_chart(WEEK, runs, cps, decisions)
    d1 = _at(chart, DAY1)
    assert {s.group for s in chart.series} == {"alpha/review", "alpha/ask"}
    assert _values(chart, "alpha/review p50")[d1] == 120  # 60, 120, 600; the timeout is not a person's time
    assert _values(chart, "alpha/review p99")[d1] == 600
    assert _values(chart, "alpha/ask p50")[d1] == 30


def test_rates_count_quorum_edits_and_answers_with_the_thresholds() -> None:
    runs, cps, decisions, events = _decided()
    chart = rates_chart(WEEK, runs, cps, decisions, events, ["alpha/review: advice"])
    d1 = _at(chart, DAY1)
    rates = {s.name: s.values[d1] for s in chart.series}
    assert rates == {"approved": 0.2, "edited": 0.2, "rejected": 0.2, "answered": 0.2, "timed_out": 0.2}
    assert chart.thresholds == {"relax_above": 0.95, "edit_above": 0.30}
    assert chart.advice == ["alpha/review: advice"]
    only_ask = rates_chart(WEEK.model_copy(update={"node": "ask"}), runs, cps, decisions, events)
    assert {s.name: s.values[d1] for s in only_ask.series}["answered"] == 1.0
    assert all(s.values[0] is None for s in chart.series)


def test_cost_and_tokens_by_workflow_node_and_model() -> None:
    a, b = _run("r1", "alpha", DAY1, 10.0), _run("r2", "beta", DAY2, 10.0)
    steps = [
        _step(
            a,
            "draft",
            1,
            input={"model": "claude-sonnet-4-6"},
            cost_usd=0.25,
            input_tokens=100,
            output_tokens=20,
        ),
        _step(
            a, "polish", 1, input={"model": "claude-opus-4-6"}, cost_usd=1.0, input_tokens=10, output_tokens=5
        ),
        _step(
            b,
            "draft",
            1,
            input={"model": "claude-sonnet-4-6"},
            cost_usd=0.5,
            input_tokens=50,
            output_tokens=0,
        ),
        _step(b, "tidy", 1, input={"skill": "tidy"}, cost_usd=0.125, input_tokens=1, output_tokens=1),
        _step(b, "plain", 1, node_type="set"),  # no usage: no series
    ]
    by_workflow = cost_chart(WEEK, [a, b], steps)
    d1, d2 = _at(by_workflow, DAY1), _at(by_workflow, DAY2)
    assert _values(by_workflow, "alpha cost_usd")[d1] == 1.25
    assert _values(by_workflow, "alpha cost_usd")[d2] is None
    assert _values(by_workflow, "beta cost_usd")[d2] == 0.625
    assert _values(by_workflow, "alpha tokens")[d1] == 135
    by_model = cost_chart(WEEK.model_copy(update={"by": "model"}), [a, b], steps)
    assert {s.group for s in by_model.series} == {"claude-sonnet-4-6", "claude-opus-4-6", "(unknown)"}
    assert _values(by_model, "claude-sonnet-4-6 cost_usd")[d1] == 0.25
    assert _values(by_model, "claude-sonnet-4-6 cost_usd")[d2] == 0.5
    assert _values(by_model, "(unknown) cost_usd")[d2] == 0.125
    by_node = cost_chart(WEEK.model_copy(update={"by": "node"}), [a, b], steps)
    assert {s.group for s in by_node.series} == {"alpha/draft", "alpha/polish", "beta/draft", "beta/tidy"}


async def test_load_chart_refuses_unknown_charts_and_long_periods() -> None:
    store = InMemoryRunStore()
    with pytest.raises(InvalidInput, match="unknown chart 'pie'"):
        await load_chart(store, "pie", WEEK)
    with pytest.raises(InvalidInput, match="at most 366 days"):
        await load_chart(store, "latency", ChartQuery(since=NOW - timedelta(days=400), now=NOW))
    empty = await load_chart(store, "rates", WEEK)
    assert all(v is None for s in empty.series for v in s.values)
