"""Every shape of write the one-statement path (PostgreSQL) accepts, stored and read back alike
on every backend, the audit chain verifying after each, and racing decisions, commits and cancels
from two stores leaving no gap in the chain."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from engine.audit import verify_chain
from engine.errors import Conflict, LeaseLost
from engine.model import CheckpointOutcome, CheckpointStatus, RunStatus, StepStatus
from engine.ports import AuditDraft, CheckpointUpdate, RunChange, RunStore
from tests.contract import _data as d
from tests.contract._data import TTL, at
from tests.contract.conftest import Backend


async def _ok(store: RunStore) -> None:
    report = verify_chain(await store.audit_events(), await store.audit_head())
    assert report.ok, report.problem


def _drafts(n: int, when: datetime) -> list[AuditDraft]:
    out: list[AuditDraft] = []
    for i in range(n):
        out.append(
            d.draft(
                f"k{i}",
                when=when.astimezone(timezone(timedelta(hours=5))) if i == 1 else when,
                run_id=None if i == 0 else "run_1",
                checkpoint_id=None if i != 2 else "cp_x",
                payload=(
                    {"z": 1, "a": ["é", None, {"t": when}], "q": "it's; DROP TABLE runs; --'"} if i else {}
                ),
            )
        )
    return out


async def test_every_batch_shape(store: RunStore) -> None:
    lease = await d.started(store)
    await store.create_run(
        d.run("run_2"),
        _drafts(3, at(0)),
        [
            d.step("r2a", run_id="run_2", output=None, ended_at=None, input_tokens=None, cost_usd=None),
            d.step("r2b", run_id="run_2"),
        ],
    )
    # steps (first row NULLs), two checkpoints (dup assignees), deliveries (first row NULLs), 3 events
    change = RunChange(
        at=at(5),
        steps=[
            d.step(
                "s1",
                status=StepStatus.running,
                output=None,
                ended_at=None,
                input_tokens=None,
                output_tokens=None,
                cost_usd=None,
            ),
            d.step("s2", node_id="other", ended_at=at(5)),
        ],
        checkpoints=[
            d.checkpoint("cp_1", assignees=["user:U1", "user:U1", "group:G"], due_at=None),
            d.checkpoint("cp_2", assignees=[], due_at=at(99)),
        ],
        pending_remove=["draft"],
        status=RunStatus.waiting,
        release=True,
        deliveries=[d.delivery("dl_1", run_id=None, checkpoint_id=None), d.delivery("dl_2")],
        audit=_drafts(3, at(5)),
    )
    run = await store.commit(lease, change)
    assert run == await store.get_run("run_1")
    assert (await store.get_checkpoint("cp_1")).assignees == ["user:U1", "user:U1", "group:G"]
    assert {s.id: s for s in await store.list_steps("run_1")} == {s.id: s for s in change.steps}
    await _ok(store)
    # quorum vote, no resolve, no run change
    cp = await store.update_checkpoint(
        CheckpointUpdate(
            checkpoint_id="cp_1",
            expected_version=0,
            at=at(6),
            approvals=["U1"],
            audit=[d.draft("vote", when=at(6))],
        )
    )
    assert cp.version == 1
    # decision: CAS + decision + step + run + deliveries + 2 events
    upd = CheckpointUpdate(
        checkpoint_id="cp_1",
        expected_version=1,
        at=at(7),
        resolve=True,
        outcome=CheckpointOutcome.approved,
        decision=d.decision(created_at=at(7)),
        step=d.step("s3", node_id="approve", ended_at=at(7)),
        pending_add=["send"],
        rejected=True,
        deliveries=[d.delivery("dl_3"), d.delivery("dl_4", checkpoint_id=None)],
        audit=_drafts(2, at(7)),
    )
    cp, claimed = await store.resolve_and_claim(upd, "w2", TTL)
    assert claimed is not None
    assert claimed.run.pending == ["send"]
    assert claimed.run.rejected
    with pytest.raises(Conflict):
        await store.update_checkpoint(upd)
    with pytest.raises(Conflict):
        await store.update_checkpoint(upd.model_copy(update={"expected_version": 2}))
    # old lease lost on a batched commit with deliveries + finish
    with pytest.raises(LeaseLost):
        await store.commit(
            lease,
            RunChange(
                at=at(8),
                finished=True,
                status=RunStatus.succeeded,
                deliveries=[d.delivery("dl_x")],
                audit=[d.draft(when=at(8))],
            ),
        )
    assert (await store.get_checkpoint("cp_2")).status is CheckpointStatus.open
    # finish + deliveries + 2 steps: closes cp_2
    done = await store.commit(
        claimed.lease,
        RunChange(
            at=at(9),
            steps=[d.step("s4", node_id="send"), d.step("s5", node_id="x")],
            pending_remove=["send"],
            status=RunStatus.succeeded,
            finished=True,
            deliveries=[d.delivery("dl_5")],
            audit=_drafts(2, at(9)),
        ),
    )
    assert done.status is RunStatus.succeeded
    cp2 = await store.get_checkpoint("cp_2")
    assert (cp2.status, cp2.outcome, cp2.resolved_at, cp2.version) == (
        CheckpointStatus.resolved,
        CheckpointOutcome.cancelled,
        at(9),
        1,
    )
    events = await store.audit_events()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    await _ok(store)


async def test_mixed_concurrent_workload(sql_backend: Backend) -> None:
    a, b = sql_backend.store, sql_backend.another()
    errors: list[BaseException] = []

    async def one(i: int) -> None:
        rid = f"run_{i}"
        s1, s2 = (a, b) if i % 2 else (b, a)
        lease = await d.started(s1, rid)
        await s1.commit(
            lease,
            RunChange(
                at=at(1),
                steps=[d.step(f"{rid}_s", run_id=rid)],
                checkpoints=[d.checkpoint(f"cp_{i}", run_id=rid), d.checkpoint(f"cq_{i}", run_id=rid)],
                pending_remove=["draft"],
                deliveries=[d.delivery(f"dl_{i}", run_id=rid, checkpoint_id=f"cp_{i}")],
                audit=[d.draft(run_id=rid, when=at(1))],
            ),
        )
        upd = CheckpointUpdate(
            checkpoint_id=f"cp_{i}",
            expected_version=0,
            at=at(2),
            resolve=True,
            outcome=CheckpointOutcome.approved,
            decision=d.decision(f"dec_{i}", checkpoint_id=f"cp_{i}", run_id=rid),
            pending_add=["send"],
            deliveries=[d.delivery(f"dl2_{i}", run_id=rid)],
            audit=[d.draft("checkpoint.resolved", run_id=rid, checkpoint_id=f"cp_{i}")],
        )
        finish = RunChange(
            at=at(3),
            steps=[d.step(f"{rid}_t", run_id=rid, node_id="t")],
            status=RunStatus.failed,
            reason="x",
            finished=True,
            deliveries=[d.delivery(f"dl3_{i}", run_id=rid)],
            audit=[d.draft("run.failed", run_id=rid, when=at(3)), d.draft(run_id=rid)],
        )
        again = d.decision(f"dex_{i}", checkpoint_id=f"cp_{i}", run_id=rid)
        results = await asyncio.gather(
            s2.update_checkpoint(upd),
            s2.update_checkpoint(upd.model_copy(update={"decision": again})),
            s1.commit(lease, finish),
            s2.cancel_run(rid, at(4), "stop", [d.draft("run.cancelled", run_id=rid)], []),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, Conflict | LeaseLost):
                errors.append(r)

    await asyncio.gather(*(one(i) for i in range(12)))
    assert not errors, errors
    events = await a.audit_events()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    await _ok(a)
