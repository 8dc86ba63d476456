"""Checkpoint analytics: rates, timings, per approver, advice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from engine.commands import Decide
from engine.model import Checkpoint, CheckpointOutcome, CheckpointStatus, Decision, ResolvedBy, Run, RunStatus
from engine.stats import checkpoint_stats, load_stats
from tests.unit.engine.conftest import World

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _run(i: int) -> Run:
    return Run(
        id=f"r{i}",
        workflow_id="wf",
        workflow_hash="h",
        status=RunStatus.succeeded,
        inputs={},
        requester="alice",
        created_at=T0,
        updated_at=T0,
    )


def _pair(
    i: int,
    action: str,
    outcome: CheckpointOutcome,
    seconds: float,
    *,
    long: bool = False,
    by: ResolvedBy = ResolvedBy.human,
    actor: str = "bob",
) -> tuple[Checkpoint, Decision]:
    cp = Checkpoint(
        id=f"c{i}",
        run_id=f"r{i}",
        node_id="gate",
        status=CheckpointStatus.resolved,
        outcome=outcome,
        context={"text": "x" * (5000 if long else 10)},
        created_at=T0,
    )
    d = Decision(
        id=f"d{i}",
        checkpoint_id=cp.id,
        run_id=cp.run_id,
        action=action,
        actor=actor,
        channel="slack",
        resolved_by=by,
        created_at=T0 + timedelta(seconds=seconds),
    )
    return cp, d


def test_rates_timings_and_relax_advice() -> None:
    pairs = [_pair(i, "approve", CheckpointOutcome.approved, 60 + i) for i in range(20)]
    report = checkpoint_stats([_run(i) for i in range(20)], [p[0] for p in pairs], [p[1] for p in pairs])
    [node] = report.nodes
    assert (node.workflow, node.node, node.count, node.approve_rate) == ("wf", "gate", 20, 1.0)
    assert node.median_seconds == 69.5
    assert node.p90_seconds == 78
    assert node.approvers[0].actor == "bob"
    assert node.approvers[0].approved == 20
    assert any("candidate to relax" in a for a in node.advice)


def test_edit_and_rubber_stamp_advice_and_timeouts() -> None:
    pairs = [_pair(i, "edit", CheckpointOutcome.edited, 300) for i in range(4)]
    pairs += [_pair(4, "approve", CheckpointOutcome.approved, 2, long=True, actor="speedy")]
    pairs += [
        _pair(
            5, "reject", CheckpointOutcome.timed_out, 3600, by=ResolvedBy.timeout, actor="policy:auto_reject"
        )
    ]
    report = checkpoint_stats([_run(i) for i in range(6)], [p[0] for p in pairs], [p[1] for p in pairs])
    [node] = report.nodes
    assert node.edit_rate == round(4 / 6, 3)
    assert node.timeout_rate == round(1 / 6, 3)
    assert [a.actor for a in node.approvers] == ["bob", "speedy"]  # a timeout is nobody's decision
    assert any("the step before 'gate' needs work" in a for a in node.advice)
    assert any("rubber-stamping: speedy" in a for a in node.advice)


def test_since_filters() -> None:
    pairs = [_pair(1, "approve", CheckpointOutcome.approved, 5)]
    report = checkpoint_stats(
        [_run(1)], [p[0] for p in pairs], [p[1] for p in pairs], since=T0 + timedelta(days=1)
    )
    assert report.nodes == []


async def test_quorum_votes_and_edits_count(make_world: Callable[..., World]) -> None:
    # an edited quorum checkpoint used to show edit 0% and one approver
    text = """\
id: wire
nodes:
  - id: approve
    type: human
    prompt: "Wire?"
    assignee: [user:mia, user:manny, user:sam]
    quorum: 2
    options: [approve, reject, edit]
    response_schema: {type: object, properties: {note: {type: string}}}
    proposed: {note: first}
"""
    w = make_world(text)
    run = await w.engine.start("wire", {}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id, open_only=True)
    w.clock.advance(60)
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="edit", actor="manny", data={"note": "second"}))
    w.clock.advance(60)
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))
    w.clock.advance(60)
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="sam"))
    [node] = (await load_stats(w.store, workflow=None, since=None)).nodes
    assert (node.edit_rate, node.approve_rate) == (1.0, 0.0)
    assert [(a.actor, a.approved, a.edited, a.median_seconds) for a in node.approvers] == [
        ("manny", 0, 1, 60.0),
        ("mia", 1, 0, 120.0),
        ("sam", 1, 0, 180.0),
    ]


async def test_answers_count(make_world: Callable[..., World]) -> None:
    text = """\
id: ask
nodes:
  - id: where
    type: human
    kind: input
    prompt: "Where?"
    response_schema: {type: object, properties: {office: {type: string}}}
"""
    w = make_world(text)
    run = await w.engine.start("ask", {}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id, open_only=True)
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="answer", actor="alice", data={"office": "B"}))
    [node] = (await load_stats(w.store, workflow=None, since=None)).nodes
    assert (node.answer_rate, [a.actor for a in node.approvers]) == (1.0, ["alice"])
