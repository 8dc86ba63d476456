"""RunStore contract: the checkpoint compare-and-set, quorum votes, escalations, the race."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine.audit import verify_chain
from engine.errors import Conflict, NotFound
from engine.model import CheckpointOutcome, CheckpointStatus, Priority, RunStatus, StepStatus
from engine.ports import CheckpointUpdate, RunChange, RunStore
from tests.contract import _data as d
from tests.contract._data import at
from tests.contract.conftest import Backend


async def _waiting(store: RunStore) -> None:
    """run_1 waiting at cp_1, lease released (as the engine leaves it)."""
    lease = await d.started(store)
    await store.commit(
        lease,
        RunChange(
            at=at(1),
            checkpoints=[d.checkpoint()],
            pending_remove=["draft"],
            status=RunStatus.waiting,
            release=True,
        ),
    )


def _resolve(actor: str = "U1", version: int = 0, **changes: object) -> CheckpointUpdate:
    base = CheckpointUpdate(
        checkpoint_id="cp_1",
        expected_version=version,
        at=at(60),
        resolve=True,
        outcome=CheckpointOutcome.approved,
        decision=d.decision(f"dec_{actor}", actor=actor),
        step=d.step("step_h", node_id="approve", node_type="human", status=StepStatus.succeeded),
        pending_add=["send"],
        deliveries=[d.delivery(f"dl_{actor}", kind="checkpoint.update")],
        audit=[d.draft("checkpoint.resolved", actor=actor, checkpoint_id="cp_1")],
    )
    return base.model_copy(update=changes)


async def test_resolve_closes_the_checkpoint_and_queues_the_run(store: RunStore) -> None:
    await _waiting(store)
    cp = await store.update_checkpoint(_resolve(rejected=True))
    assert cp == await store.get_checkpoint("cp_1")
    assert (cp.status, cp.outcome, cp.resolved_at, cp.version) == (
        CheckpointStatus.resolved,
        CheckpointOutcome.approved,
        at(60),
        1,
    )
    assert await store.list_decisions(checkpoint_id="cp_1") == [d.decision("dec_U1")]
    assert await store.list_decisions(run_id="run_1") == [d.decision("dec_U1")]
    run = await store.get_run("run_1")
    assert (run.status, run.pending, run.rejected, run.updated_at) == (
        RunStatus.queued,
        ["send"],
        True,
        at(60),
    )
    assert [s.id for s in await store.list_steps("run_1")] == ["step_h"]
    assert [x.id for x in await store.list_deliveries(checkpoint_id="cp_1")] == ["dl_U1"]
    assert (await store.audit_events())[-1].kind == "checkpoint.resolved"
    assert await store.runnable_runs(at(61)) == ["run_1"]


async def test_resolve_leaves_other_run_statuses_alone(store: RunStore) -> None:
    lease = await d.started(store)
    await store.commit(lease, RunChange(at=at(1), checkpoints=[d.checkpoint()]))
    await store.update_checkpoint(_resolve())
    run = await store.get_run("run_1")
    assert (run.status, run.pending, run.lease_owner) == (RunStatus.running, ["draft", "send"], "w1")


async def test_a_quorum_vote_moves_the_version_and_keeps_it_open(store: RunStore) -> None:
    await _waiting(store)
    before = await store.get_run("run_1")
    vote = CheckpointUpdate(
        checkpoint_id="cp_1",
        expected_version=0,
        at=at(30),
        approvals=["U1"],
        audit=[d.draft("checkpoint.vote")],
    )
    cp = await store.update_checkpoint(vote)
    assert (cp.status, cp.version, cp.approvals, cp.outcome) == (CheckpointStatus.open, 1, ["U1"], None)
    assert await store.list_decisions() == []
    assert await store.get_run("run_1") == before
    final = await store.update_checkpoint(_resolve("U2", version=1, approvals=["U1", "U2"]))
    assert (final.approvals, final.version, final.status) == (["U1", "U2"], 2, CheckpointStatus.resolved)


async def test_escalation_fields_and_clearing_the_deadline(store: RunStore) -> None:
    await _waiting(store)
    esc = CheckpointUpdate(
        checkpoint_id="cp_1",
        expected_version=0,
        at=at(3600),
        assignees=["user:MGR"],
        due_at=at(7200),
        escalation_level=1,
        priority=Priority.urgent,
    )
    cp = await store.update_checkpoint(esc)
    assert (cp.assignees, cp.due_at, cp.escalation_level, cp.priority, cp.version) == (
        ["user:MGR"],
        at(7200),
        1,
        Priority.urgent,
        1,
    )
    assert cp.context == d.checkpoint().context  # untouched columns survive
    cleared = await store.update_checkpoint(
        CheckpointUpdate(
            checkpoint_id="cp_1", expected_version=1, at=at(3601), due_at=at(9999), clear_due=True
        )
    )
    assert cleared.due_at is None


async def test_resolve_and_claim_hands_the_run_to_the_decider_in_one_step(store: RunStore) -> None:
    await _waiting(store)
    cp, claimed = await store.resolve_and_claim(_resolve(), "w2", timedelta(seconds=30))
    assert (cp.status, cp.version) == (CheckpointStatus.resolved, 1)
    assert claimed is not None
    assert (claimed.lease.owner, claimed.lease.expires_at) == ("w2", at(90))
    assert (claimed.run.status, claimed.run.pending, claimed.run.lease_owner) == (
        RunStatus.running,
        ["send"],
        "w2",
    )
    assert [s.id for s in claimed.steps] == ["step_h"], "the decision's own step is in the read"
    assert claimed.run == await store.get_run("run_1")
    assert await store.runnable_runs(at(61)) == [], "held: no other driver takes it"
    await store.commit(claimed.lease, RunChange(at=at(61), pending_remove=["send"], release=True))


async def test_resolve_and_claim_leaves_a_live_lease_with_its_holder(store: RunStore) -> None:
    lease = await d.started(store)  # run_1 being driven by w1 (a parallel branch goes on)
    await store.commit(lease, RunChange(at=at(1), checkpoints=[d.checkpoint()]))
    assert lease.expires_at > at(5)
    cp, claimed = await store.resolve_and_claim(_resolve(at=at(5)), "w2", timedelta(seconds=30))
    assert cp.status is CheckpointStatus.resolved
    assert claimed is None
    run = await store.get_run("run_1")
    assert (run.lease_owner, run.lease_epoch, run.pending) == ("w1", lease.epoch, ["draft", "send"])


async def test_resolve_and_claim_claims_nothing_when_the_decision_is_refused(store: RunStore) -> None:
    await _waiting(store)
    await store.update_checkpoint(_resolve("U1"))
    before = await store.get_run("run_1")
    with pytest.raises(Conflict, match="already approved by U1"):
        await store.resolve_and_claim(_resolve("U2", version=1), "w2", timedelta(seconds=30))
    assert await store.get_run("run_1") == before, "no lease taken by the loser"


async def test_a_stale_version_conflicts_and_changes_nothing(store: RunStore) -> None:
    await _waiting(store)
    await store.update_checkpoint(CheckpointUpdate(checkpoint_id="cp_1", expected_version=0, at=at(2)))
    before = (await store.get_checkpoint("cp_1"), await store.get_run("run_1"), await store.audit_head())
    with pytest.raises(Conflict, match="changed concurrently") as err:
        await store.update_checkpoint(_resolve())
    assert err.value.winner is None
    after = (await store.get_checkpoint("cp_1"), await store.get_run("run_1"), await store.audit_head())
    assert after == before
    assert await store.list_decisions() == []
    assert await store.list_deliveries() == []


async def test_a_resolved_checkpoint_names_the_winner(store: RunStore) -> None:
    await _waiting(store)
    await store.update_checkpoint(_resolve("U123"))
    with pytest.raises(Conflict) as err:
        await store.update_checkpoint(_resolve("U2", version=1))
    assert str(err.value) == "checkpoint cp_1 already approved by U123 at 2026-01-01 09:01:00 UTC"
    assert (err.value.winner, err.value.at, err.value.action) == ("U123", at(60), "approve")


async def test_a_cancelled_checkpoint_conflicts_without_a_person(store: RunStore) -> None:
    await _waiting(store)
    await store.cancel_run("run_1", at(10), "stop", [])
    with pytest.raises(Conflict, match="already cancelled at 2026-01-01 09:00:10 UTC") as err:
        await store.update_checkpoint(_resolve(version=1))
    assert (err.value.winner, err.value.at, err.value.action) == (None, at(10), "cancelled")


async def test_unknown_checkpoint_is_not_found(store: RunStore) -> None:
    with pytest.raises(NotFound):
        await store.update_checkpoint(_resolve().model_copy(update={"checkpoint_id": "cp_404"}))


async def test_fifty_concurrent_resolves_have_exactly_one_winner(backend: Backend) -> None:
    await _waiting(backend.store)
    # several stores on one database stand for several processes
    stores = [backend.store, *(backend.another() for _ in range(4))]
    head_before = (await backend.store.audit_head())[0]

    async def attempt(i: int) -> str | Conflict:
        try:
            await stores[i % len(stores)].update_checkpoint(_resolve(f"U{i}"))
        except Conflict as e:
            return e
        return f"U{i}"

    results = await asyncio.gather(*(attempt(i) for i in range(50)))
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, Conflict)]
    assert len(winners) == 1
    assert len(losers) == 49
    winner = winners[0]
    for lost in losers:
        assert lost.winner == winner
        assert f"already approved by {winner} at 2026-01-01 09:01:00 UTC" in str(lost)
    decisions = await backend.store.list_decisions(checkpoint_id="cp_1")
    assert [x.actor for x in decisions] == [winner]
    run = await backend.store.get_run("run_1")
    assert (run.pending, run.status) == (["send"], RunStatus.queued)
    assert [x.id for x in await backend.store.list_deliveries(checkpoint_id="cp_1")] == [f"dl_{winner}"]
    assert (await backend.store.audit_head())[0] == head_before + 1
    assert verify_chain(await backend.store.audit_events(), await backend.store.audit_head()).ok


async def test_load_checkpoint_reads_the_checkpoint_its_run_and_steps(store: RunStore) -> None:
    lease = await d.started(store)
    steps = [d.step("s2", started_at=at(3)), d.step("s1", started_at=at(2))]
    await store.commit(lease, RunChange(at=at(4), steps=steps, checkpoints=[d.checkpoint()]))
    cp, run, got = await store.load_checkpoint("cp_1")
    assert cp == await store.get_checkpoint("cp_1") == d.checkpoint()
    assert run == await store.get_run("run_1")
    assert [s.id for s in got] == ["s1", "s2"]
    assert got == await store.list_steps("run_1")
    with pytest.raises(NotFound):
        await store.load_checkpoint("cp_404")
