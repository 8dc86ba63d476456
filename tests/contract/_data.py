"""Builders of the engine models the contract tests store (defaults fill what a test ignores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine.model import (
    Checkpoint,
    Decision,
    Deliverable,
    Delivery,
    Run,
    RunStatus,
    Step,
    StepStatus,
)
from engine.ports import AuditDraft, Lease, RunStore

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def at(seconds: float) -> datetime:
    """``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def run(run_id: str = "run_1", **changes: Any) -> Run:
    """A queued run with one pending node."""
    base = Run(
        id=run_id,
        workflow_id="refund",
        workflow_hash="sha256:abc",
        status=RunStatus.queued,
        inputs={"customer": "ACME", "amount": 120},
        requester="U_REQ",
        origin={"channel": "C1", "thread_ts": "1.2"},
        pending=["draft"],
        created_at=T0,
        updated_at=T0,
    )
    return base.model_copy(update=changes)


def step(step_id: str = "step_1", run_id: str = "run_1", **changes: Any) -> Step:
    """A succeeded ``set`` step."""
    base = Step(
        id=step_id,
        run_id=run_id,
        node_id="draft",
        node_type="set",
        status=StepStatus.succeeded,
        input={"amount": 120},
        output=Deliverable(text="ok", data={"total": 120}, files=["a.txt"]),
        started_at=T0,
        ended_at=at(1),
        input_tokens=10,
        output_tokens=20,
        cost_usd=0.001,
    )
    return base.model_copy(update=changes)


def checkpoint(checkpoint_id: str = "cp_1", run_id: str = "run_1", **changes: Any) -> Checkpoint:
    """An open approval checkpoint."""
    base = Checkpoint(
        id=checkpoint_id,
        run_id=run_id,
        node_id="approve",
        title="Refund",
        prompt="Approve refund of $120 for ACME?",
        context={"draft": "Dear ACME", "amount": 120},
        options=["approve", "reject", "edit"],
        response_schema={"type": "object", "properties": {"z": {"type": "string"}, "a": {"type": "number"}}},
        proposed={"z": "x"},
        assignees=["user:U1", "user:U2"],
        notify=["channel:C0"],
        quorum=1,
        requester="U_REQ",
        highlight=["draft"],
        due_at=at(3600),
        shown_hash="f" * 64,
        created_at=T0,
    )
    return base.model_copy(update=changes)


def decision(decision_id: str = "dec_1", actor: str = "U1", **changes: Any) -> Decision:
    """An approval of cp_1."""
    base = Decision(
        id=decision_id,
        checkpoint_id="cp_1",
        run_id="run_1",
        action="approve",
        data={"z": "x"},
        comment="fine",
        actor=actor,
        channel="slack",
        shown_hash="f" * 64,
        output_hash="e" * 64,
        created_at=at(60),
    )
    return base.model_copy(update=changes)


def delivery(delivery_id: str = "dl_1", **changes: Any) -> Delivery:
    """A pending Slack DM about cp_1."""
    base = Delivery(
        id=delivery_id,
        run_id="run_1",
        checkpoint_id="cp_1",
        kind="checkpoint",
        target="user:U1",
        payload={"blocks": [{"type": "section"}]},
        next_attempt_at=T0,
        created_at=T0,
    )
    return base.model_copy(update=changes)


def draft(kind: str = "step.succeeded", *, when: datetime = T0, **changes: Any) -> AuditDraft:
    """An audit draft about run_1."""
    base = AuditDraft(at=when, actor="engine", channel="engine", kind=kind, run_id="run_1", payload={"n": 1})
    return base.model_copy(update=changes)


async def started(store: RunStore, run_id: str = "run_1", owner: str = "w1", now: datetime = T0) -> Lease:
    """Create a run and claim it."""
    await store.create_run(run(run_id), [draft("run.created", run_id=run_id)])
    lease = await store.claim_run(run_id, owner, now, TTL)
    assert lease is not None
    return lease
