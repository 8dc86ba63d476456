"""Step commits one after another: the common one-step, one-event commit (on PostgreSQL one
statement after the run and the audit head are locked together), its fencing, and the chain
it leaves after many steps, from one store and from two at once."""

from __future__ import annotations

import asyncio

import pytest

from engine.audit import GENESIS_HASH, verify_chain
from engine.errors import LeaseLost
from engine.model import CheckpointOutcome, CheckpointStatus, RunStatus, StepStatus
from engine.ports import CheckpointUpdate, Lease, RunChange, RunStore
from tests.contract import _data as d
from tests.contract._data import TTL, at
from tests.contract.conftest import Backend
from tests.contract.test_audit import _raw


def _step_change(run_id: str, n: int, **changes: object) -> RunChange:
    """Node ``n`` of a chain: one step, one audit event, the next node pending."""
    base = RunChange(
        at=at(n),
        steps=[d.step(f"{run_id}_s{n}", run_id=run_id, node_id=f"n{n}", started_at=at(n), ended_at=at(n))],
        pending_remove=[f"n{n}" if n else "draft"],
        pending_add=[f"n{n + 1}"],
        status=RunStatus.running,
        audit=[d.draft(when=at(n), run_id=run_id, payload={"node": f"n{n}", "i": n})],
    )
    return base.model_copy(update=changes)


async def _chain(store: RunStore, lease: Lease, steps: int) -> None:
    for n in range(steps):
        returned = await store.commit(lease, _step_change(lease.run_id, n))
        assert returned == await store.get_run(lease.run_id)
        assert returned.pending == [f"n{n + 1}"]


async def test_a_one_step_commit_with_a_lost_lease_writes_nothing(store: RunStore) -> None:
    old = await d.started(store)
    await store.commit(old, _step_change("run_1", 0))
    new = await store.claim_run("run_1", "w2", at(31), TTL)
    assert new is not None
    before = (await store.get_run("run_1"), await store.audit_head(), await store.list_steps("run_1"))
    with pytest.raises(LeaseLost):
        await store.commit(old, _step_change("run_1", 1))
    after = (await store.get_run("run_1"), await store.audit_head(), await store.list_steps("run_1"))
    assert after == before
    assert len(await store.audit_events()) == 2
    # the holder's next step goes on from there
    assert (await store.commit(new, _step_change("run_1", 1))).lease_owner == "w2"
    assert verify_chain(await store.audit_events(), await store.audit_head()).ok


async def test_a_step_commit_overwrites_the_step_it_retries(store: RunStore) -> None:
    lease = await d.started(store)
    running = _step_change("run_1", 0)
    running = running.model_copy(
        update={"steps": [running.steps[0].model_copy(update={"status": StepStatus.running, "output": None})]}
    )
    await store.commit(lease, running)
    done = _step_change("run_1", 0, release=True, status=RunStatus.queued)
    run = await store.commit(lease, done)
    assert (run.lease_owner, run.lease_expires_at, run.status) == (None, None, RunStatus.queued)
    assert run == await store.get_run("run_1")
    assert await store.list_steps("run_1") == done.steps


async def test_many_step_commits_leave_a_chain_that_verifies(store: RunStore) -> None:
    first = await d.started(store)
    second = await d.started(store, "run_2")
    for n in range(15):  # two runs' steps interleaved
        await store.commit(first, _step_change("run_1", n))
        await store.commit(second, _step_change("run_2", n))
    final = RunChange(
        at=at(20),
        steps=[d.step("run_1_last", node_id="n15", started_at=at(20), ended_at=at(20))],
        pending_remove=["n15"],
        status=RunStatus.succeeded,
        finished=True,
        deliveries=[d.delivery()],
        audit=[d.draft(when=at(20)), d.draft("run.succeeded", when=at(20))],
    )
    done = await store.commit(first, final)
    assert (done.status, done.finished_at, done.pending) == (RunStatus.succeeded, at(20), [])
    events = await store.audit_events()
    assert [e.seq for e in events] == list(range(1, 35))
    report = verify_chain(events, await store.audit_head())
    assert report.ok, report.problem
    assert [e.payload for e in events if e.run_id == "run_2"][1:] == [
        {"node": f"n{n}", "i": n} for n in range(15)
    ]
    steps = await store.list_steps("run_2")
    assert [s.node_id for s in steps] == [f"n{n}" for n in range(15)]
    assert steps == [_step_change("run_2", n).steps[0] for n in range(15)]
    assert (await store.get_run("run_2")).pending == ["n15"]


async def test_two_stores_committing_at_once_keep_one_chain(sql_backend: Backend) -> None:
    store, other = sql_backend.store, sql_backend.another()
    leases = [await d.started(store, f"run_{i}") for i in range(4)]

    async def drive(s: RunStore, lease: Lease) -> None:
        for n in range(10):
            await s.commit(lease, _step_change(lease.run_id, n))

    await asyncio.gather(*(drive(store if i % 2 else other, lease) for i, lease in enumerate(leases)))
    events = await store.audit_events()
    assert [e.seq for e in events] == list(range(1, 45))
    report = verify_chain(events, await store.audit_head())
    assert report.ok, report.problem
    for lease in leases:
        assert len(await store.list_steps(lease.run_id)) == 10


async def test_a_step_commit_starts_the_chain_when_the_head_row_is_missing(sql_backend: Backend) -> None:
    store = sql_backend.store
    lease = await d.started(store)
    _raw(sql_backend)("DELETE FROM audit_events", ())
    _raw(sql_backend)("DELETE FROM audit_head", ())
    assert await store.audit_head() == (0, GENESIS_HASH)
    await store.commit(lease, _step_change("run_1", 0))
    await store.commit(lease, _step_change("run_1", 1))
    events = await store.audit_events()
    assert [e.seq for e in events] == [1, 2]
    assert events[0].prev_hash == GENESIS_HASH
    report = verify_chain(events, await store.audit_head())
    assert report.ok, report.problem


async def test_a_commit_that_opens_a_checkpoint_and_ends_the_run_closes_it(store: RunStore) -> None:
    lease = await d.started(store)
    change = RunChange(
        at=at(5),
        steps=[d.step()],
        checkpoints=[d.checkpoint()],
        pending_remove=["draft"],
        status=RunStatus.failed,
        reason="boom",
        finished=True,
        audit=[d.draft("run.failed", when=at(5))],
    )
    await store.commit(lease, change)
    cp = await store.get_checkpoint("cp_1")
    assert (cp.status, cp.outcome, cp.resolved_at) == (
        CheckpointStatus.resolved,
        CheckpointOutcome.cancelled,
        at(5),
    )
    assert verify_chain(await store.audit_events(), await store.audit_head()).ok


async def test_a_commit_with_one_step_twice_keeps_the_last(store: RunStore) -> None:
    lease = await d.started(store)
    running = d.step(status=StepStatus.running, output=None)
    done = d.step(ended_at=at(9))
    await store.commit(lease, RunChange(at=at(9), steps=[running, done], audit=[d.draft(when=at(9))]))
    assert await store.list_steps("run_1") == [done]


async def test_a_decision_starts_the_chain_when_the_head_row_is_missing(sql_backend: Backend) -> None:
    store = sql_backend.store
    lease = await d.started(store)
    await store.commit(
        lease,
        RunChange(at=at(1), checkpoints=[d.checkpoint()], status=RunStatus.waiting, release=True),
    )
    _raw(sql_backend)("DELETE FROM audit_events", ())
    _raw(sql_backend)("DELETE FROM audit_head", ())
    update = CheckpointUpdate(
        checkpoint_id="cp_1",
        expected_version=0,
        at=at(60),
        resolve=True,
        outcome=CheckpointOutcome.approved,
        decision=d.decision(),
        pending_add=["send"],
        audit=[d.draft("checkpoint.resolved", checkpoint_id="cp_1")],
    )
    cp, claimed = await store.resolve_and_claim(update, "w2", TTL)
    assert cp.status is CheckpointStatus.resolved
    assert claimed is not None
    assert (claimed.run.status, claimed.run.pending) == (RunStatus.running, ["draft", "send"])
    events = await store.audit_events()
    assert [(e.seq, e.prev_hash) for e in events] == [(1, GENESIS_HASH)]
    assert verify_chain(events, await store.audit_head()).ok


async def test_a_step_commit_locks_the_run_before_the_audit_head(pg_backend: Backend) -> None:
    """PostgreSQL: while another transaction holds the audit head, a step commit waits for it
    holding the run row already (the lock order everywhere: run row, checkpoints, head)."""
    sql_backend = pg_backend
    import psycopg
    from sqlalchemy.engine import make_url

    assert sql_backend.url is not None
    store = sql_backend.store
    lease = await d.started(store)
    libpq = make_url(sql_backend.url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq) as holder, psycopg.connect(libpq) as probe:
        holder.execute("SELECT seq FROM audit_head FOR UPDATE").fetchone()
        row = holder.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        commit = asyncio.create_task(store.commit(lease, _step_change("run_1", 0)))
        for _ in range(500):  # until the commit waits on the head (another server's sessions aside)
            await asyncio.sleep(0.02)
            waiting = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (row[0],)
            ).fetchone()
            probe.rollback()
            if waiting and waiting[0]:
                break
        with pytest.raises(psycopg.errors.LockNotAvailable):
            probe.execute("SELECT 1 FROM runs WHERE id = 'run_1' FOR UPDATE NOWAIT")
        probe.rollback()
        holder.rollback()
        run = await commit
    assert run.pending == ["n1"]
