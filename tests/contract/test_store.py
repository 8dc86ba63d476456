"""RunStore contract: workflow versions, runs, leases, step commits, cancel and queries."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from typing import Any

import pytest

from engine.errors import Conflict, LeaseLost, NotFound
from engine.model import (
    CheckpointOutcome,
    CheckpointStatus,
    DeliveryStatus,
    RunStatus,
    StepStatus,
    WorkflowVersion,
)
from engine.ports import RunChange, RunStore
from tests.contract import _data as d
from tests.contract._data import T0, TTL, at


async def test_workflow_versions_round_trip(store: RunStore) -> None:
    v = WorkflowVersion(
        workflow_id="refund", content_hash="h1", source="id: refund\n", path="w/r.yml", created_at=T0
    )
    await store.publish_workflow(v)
    await store.publish_workflow(v.model_copy(update={"source": "changed"}))  # same hash: no-op
    assert await store.get_workflow_version("h1") == v
    with pytest.raises(NotFound):
        await store.get_workflow_version("nope")


async def test_run_round_trips_with_aware_utc_datetimes(store: RunStore) -> None:
    plus2 = timezone(timedelta(hours=2))
    original = d.run(created_at=T0.astimezone(plus2), updated_at=T0)
    await store.create_run(original, [])
    got = await store.get_run("run_1")
    assert got == original
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.created_at.tzinfo is not None
    with pytest.raises(Conflict):
        await store.create_run(original, [])
    with pytest.raises(NotFound):
        await store.get_run("run_404")


async def test_claim_takes_a_free_lease_and_bumps_the_epoch(store: RunStore) -> None:
    await store.create_run(d.run(), [])
    lease = await store.claim_run("run_1", "w1", T0, TTL)
    assert lease is not None
    assert (lease.owner, lease.epoch, lease.expires_at) == ("w1", 1, T0 + TTL)
    run = await store.get_run("run_1")
    assert (run.status, run.lease_owner, run.lease_epoch, run.lease_expires_at) == (
        RunStatus.running,
        "w1",
        1,
        T0 + TTL,
    )


async def test_claim_refuses_a_live_lease_and_takes_an_expired_one(store: RunStore) -> None:
    await d.started(store)
    assert await store.claim_run("run_1", "w2", at(10), TTL) is None
    assert await store.claim_run("run_1", "w2", T0 + TTL, TTL) is None  # expiring now is still live
    taken = await store.claim_run("run_1", "w2", at(31), TTL)
    assert taken is not None
    assert (taken.owner, taken.epoch) == ("w2", 2)


async def test_claim_refuses_final_runs_and_unknown_runs_raise(store: RunStore) -> None:
    await store.create_run(d.run(status=RunStatus.succeeded), [])
    assert await store.claim_run("run_1", "w1", T0, TTL) is None
    with pytest.raises(NotFound):
        await store.claim_run("run_404", "w1", T0, TTL)


async def test_claim_keeps_a_waiting_status(store: RunStore) -> None:
    await store.create_run(d.run(status=RunStatus.waiting), [])
    await store.claim_run("run_1", "w1", T0, TTL)
    assert (await store.get_run("run_1")).status is RunStatus.waiting


async def test_renew_extends_and_refuses_after_takeover(store: RunStore) -> None:
    lease = await d.started(store)
    renewed = await store.renew_lease(lease, at(20), TTL)
    assert renewed.expires_at == at(20) + TTL
    assert (await store.get_run("run_1")).lease_expires_at == at(20) + TTL
    assert await store.claim_run("run_1", "w2", at(100), TTL) is not None
    with pytest.raises(LeaseLost):
        await store.renew_lease(lease, at(101), TTL)


async def test_commit_applies_a_step_atomically(store: RunStore) -> None:
    lease = await d.started(store)
    await store.commit(lease, RunChange(at=at(1), steps=[d.step(status=StepStatus.running, output=None)]))
    change = RunChange(
        at=at(2),
        steps=[d.step(), d.step("step_2", node_id="approve", node_type="human", status=StepStatus.waiting)],
        checkpoints=[d.checkpoint()],
        pending_remove=["draft"],
        pending_add=["approve", "notify", "approve"],
        status=RunStatus.waiting,
        reason="waiting for approval",
        rejected=True,
        release=True,
        deliveries=[d.delivery()],
        audit=[d.draft(), d.draft("checkpoint.opened", checkpoint_id="cp_1")],
    )
    returned = await store.commit(lease, change)
    run = await store.get_run("run_1")
    assert returned == run
    assert run.pending == ["approve", "notify"]
    assert (run.status, run.reason, run.rejected, run.updated_at) == (
        RunStatus.waiting,
        "waiting for approval",
        True,
        at(2),
    )
    assert (run.lease_owner, run.lease_expires_at, run.lease_epoch, run.finished_at) == (None, None, 1, None)
    assert await store.list_steps("run_1") == change.steps
    assert await store.get_checkpoint("cp_1") == d.checkpoint()
    assert await store.list_deliveries(run_id="run_1") == [d.delivery()]
    assert [e.kind for e in await store.audit_events()] == [
        "run.created",
        "step.succeeded",
        "checkpoint.opened",
    ]


async def test_commit_pending_and_rejected_accumulate(store: RunStore) -> None:
    lease = await d.started(store)
    await store.commit(lease, RunChange(at=at(1), pending_add=["b", "c"], rejected=True))
    run = await store.commit(
        lease, RunChange(at=at(2), pending_remove=["b", "x"], pending_add=["draft", "d"])
    )
    assert run.pending == ["draft", "c", "d"]
    assert run.rejected is True  # OR-ed, never cleared by a later commit
    done = await store.commit(
        lease, RunChange(at=at(3), pending_remove=run.pending, status=RunStatus.succeeded, finished=True)
    )
    assert (done.status, done.finished_at, done.pending, done.lease_owner) == (
        RunStatus.succeeded,
        at(3),
        [],
        "w1",
    )


async def test_commit_ignores_expiry_while_nobody_took_the_lease(store: RunStore) -> None:
    lease = await d.started(store)
    run = await store.commit(lease, RunChange(at=at(3600), pending_add=["late"]))
    assert run.pending == ["draft", "late"]


async def test_fencing_a_taken_over_lease_changes_nothing(store: RunStore) -> None:
    old = await d.started(store)
    new = await store.claim_run("run_1", "w2", at(31), TTL)
    assert new is not None
    assert new.epoch == old.epoch + 1
    before = (await store.get_run("run_1"), await store.audit_head())
    stale = RunChange(
        at=at(32),
        steps=[d.step()],
        checkpoints=[d.checkpoint()],
        pending_remove=["draft"],
        status=RunStatus.succeeded,
        finished=True,
        deliveries=[d.delivery()],
        audit=[d.draft()],
    )
    with pytest.raises(LeaseLost):
        await store.commit(old, stale)
    assert (await store.get_run("run_1"), await store.audit_head()) == before
    assert await store.list_steps("run_1") == []
    assert await store.list_checkpoints(run_id="run_1") == []
    assert await store.list_deliveries() == []
    assert (await store.commit(new, RunChange(at=at(33)))).lease_owner == "w2"


async def test_a_released_lease_cannot_commit(store: RunStore) -> None:
    lease = await d.started(store)
    await store.commit(lease, RunChange(at=at(1), status=RunStatus.waiting, release=True))
    again = await store.claim_run("run_1", "w1", at(2), TTL)
    assert again is not None
    assert again.epoch == 2
    with pytest.raises(LeaseLost):
        await store.commit(lease, RunChange(at=at(3)))


async def test_commit_on_unknown_run_raises_not_found(store: RunStore) -> None:
    lease = await d.started(store)
    with pytest.raises(NotFound):
        await store.commit(lease.model_copy(update={"run_id": "run_404"}), RunChange(at=at(1)))


async def test_cancel_closes_checkpoints_and_fences_the_holder(store: RunStore) -> None:
    lease = await d.started(store)
    await store.commit(
        lease,
        RunChange(at=at(1), checkpoints=[d.checkpoint(), d.checkpoint("cp_2")], status=RunStatus.waiting),
    )
    run = await store.cancel_run("run_1", at(5), "stopped by U9", [d.draft("run.cancelled")])
    assert run == await store.get_run("run_1")
    assert (run.status, run.reason, run.finished_at, run.lease_owner, run.lease_epoch) == (
        RunStatus.cancelled,
        "stopped by U9",
        at(5),
        None,
        2,
    )
    for cp in await store.list_checkpoints(run_id="run_1"):
        assert (cp.status, cp.outcome, cp.resolved_at, cp.version) == (
            CheckpointStatus.resolved,
            CheckpointOutcome.cancelled,
            at(5),
            1,
        )
    with pytest.raises(LeaseLost):
        await store.commit(lease, RunChange(at=at(6)))
    with pytest.raises(Conflict, match="already cancelled"):
        await store.cancel_run("run_1", at(7), "again", [])
    with pytest.raises(NotFound):
        await store.cancel_run("run_404", at(7), "x", [])
    assert (await store.audit_events())[-1].kind == "run.cancelled"
    assert await store.runnable_runs(at(100)) == []


async def test_list_runs_newest_first_with_filters(store: RunStore) -> None:
    await store.create_run(d.run("r1", created_at=at(1)), [])
    await store.create_run(d.run("r2", created_at=at(3), workflow_id="other"), [])
    await store.create_run(d.run("r3", created_at=at(2), status=RunStatus.failed), [])
    await store.create_run(d.run("r4", created_at=at(3)), [])
    assert [r.id for r in await store.list_runs()] == ["r4", "r2", "r3", "r1"]
    assert [r.id for r in await store.list_runs(limit=2)] == ["r4", "r2"]
    assert [r.id for r in await store.list_runs(workflow_id="refund")] == ["r4", "r3", "r1"]
    only = [RunStatus.failed, RunStatus.succeeded]
    assert [r.id for r in await store.list_runs(status=only)] == ["r3"]


async def test_list_steps_in_start_order(store: RunStore) -> None:
    lease = await d.started(store)
    steps = [d.step("s10", started_at=at(5)), d.step("s9", started_at=at(1)), d.step("s2", started_at=at(5))]
    await store.commit(lease, RunChange(at=at(6), steps=steps))
    assert [s.id for s in await store.list_steps("run_1")] == ["s9", "s10", "s2"]
    assert await store.list_steps("run_404") == []


async def test_checkpoint_outcomes_of_many_runs_in_one_read(store: RunStore) -> None:
    resolved: dict[str, Any] = {"status": CheckpointStatus.resolved, "resolved_at": at(2)}
    lease = await d.started(store)
    first = [
        d.checkpoint("c1", outcome=CheckpointOutcome.edited, **resolved),
        d.checkpoint("c2", outcome=CheckpointOutcome.approved, **resolved),
        d.checkpoint("c3", node_id="again", outcome=CheckpointOutcome.approved, **resolved),
        d.checkpoint("c4"),
    ]
    await store.commit(lease, RunChange(at=at(3), checkpoints=first))
    lease2 = await d.started(store, "run_2")
    second = [d.checkpoint("c5", run_id="run_2", outcome=CheckpointOutcome.rejected, **resolved)]
    await store.commit(lease2, RunChange(at=at(4), checkpoints=second))
    await d.started(store, "run_3")  # no checkpoint at all
    found = await store.checkpoint_outcomes(["run_1", "run_2", "run_3", "run_404"])
    assert found == {
        "run_1": {CheckpointOutcome.edited, CheckpointOutcome.approved},
        "run_2": {CheckpointOutcome.rejected},
    }
    assert await store.checkpoint_outcomes(["run_2"]) == {"run_2": {CheckpointOutcome.rejected}}
    assert await store.checkpoint_outcomes([]) == {}


async def test_checkpoint_queries(store: RunStore) -> None:
    lease = await d.started(store)
    cps = [d.checkpoint("c1", created_at=at(1)), d.checkpoint("c2", created_at=at(2)), d.checkpoint("c3")]
    await store.commit(lease, RunChange(at=at(3), checkpoints=cps))
    await store.cancel_run("run_1", at(4), "x", [])
    lease2 = await d.started(store, "run_2")
    await store.commit(
        lease2, RunChange(at=at(5), checkpoints=[d.checkpoint("c4", run_id="run_2", created_at=at(5))])
    )
    assert [c.id for c in await store.list_checkpoints()] == ["c4", "c2", "c1", "c3"]
    assert [c.id for c in await store.list_checkpoints(limit=1)] == ["c4"]
    assert [c.id for c in await store.list_checkpoints(run_id="run_1")] == ["c2", "c1", "c3"]
    assert [c.id for c in await store.list_checkpoints(open_only=True)] == ["c4"]
    with pytest.raises(NotFound):
        await store.get_checkpoint("c404")


async def test_runnable_runs(store: RunStore) -> None:
    await store.create_run(d.run("queued_free", created_at=at(1)), [])
    await d.started(store, "running_live")
    await d.started(store, "running_expired", now=at(-100))
    await store.create_run(d.run("waiting_idle", status=RunStatus.waiting, pending=[]), [])
    await store.create_run(d.run("waiting_with_work", status=RunStatus.waiting, pending=["b"]), [])
    await store.create_run(d.run("done", status=RunStatus.succeeded, pending=["x"]), [])
    got = await store.runnable_runs(at(5))
    assert sorted(got) == ["queued_free", "running_expired", "waiting_with_work"]
    assert len(await store.runnable_runs(at(5), limit=1)) == 1


async def test_stored_values_are_copies(store: RunStore) -> None:
    original = d.run()
    await store.create_run(original, [])
    original.inputs["amount"] = 1
    got = await store.get_run("run_1")
    got.inputs["amount"] = 2
    assert (await store.get_run("run_1")).inputs["amount"] == 120


async def test_delivery_status_enum_round_trips(store: RunStore) -> None:
    lease = await d.started(store)
    await store.commit(lease, RunChange(at=at(1), deliveries=[d.delivery(status=DeliveryStatus.sent)]))
    assert (await store.list_deliveries())[0].status is DeliveryStatus.sent
    assert (await store.list_deliveries())[0].created_at.tzinfo is UTC


async def test_claim_returns_the_lease_the_run_and_its_steps(store: RunStore) -> None:
    await store.create_run(d.run(), [])
    first = await store.claim("run_1", "w1", T0, TTL)
    assert first is not None
    assert (first.lease.owner, first.lease.epoch, first.lease.expires_at) == ("w1", 1, T0 + TTL)
    assert first.run == await store.get_run("run_1")
    assert first.run.status is RunStatus.running
    assert first.steps == []
    steps = [d.step("s2", started_at=at(5)), d.step("s1", started_at=at(1))]
    await store.commit(first.lease, RunChange(at=at(6), steps=steps))
    assert await store.claim("run_1", "w2", at(10), TTL) is None  # live lease
    taken = await store.claim("run_1", "w2", at(31), TTL)
    assert taken is not None
    assert (taken.lease.owner, taken.lease.epoch) == ("w2", 2)
    assert taken.run == await store.get_run("run_1")
    assert [s.id for s in taken.steps] == ["s1", "s2"]
    assert taken.steps == await store.list_steps("run_1")


async def test_claim_refuses_final_runs_and_raises_for_unknown_ones(store: RunStore) -> None:
    await store.create_run(d.run(status=RunStatus.failed), [])
    assert await store.claim("run_1", "w1", T0, TTL) is None
    with pytest.raises(NotFound):
        await store.claim("run_404", "w1", T0, TTL)
