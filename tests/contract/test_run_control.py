"""RunStore contract for operator controls and reruns: pause/resume, a run created with the
steps it reuses, and the reruns of a run (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest

from engine.errors import Conflict, NotFound
from engine.model import StepStatus
from engine.ports import RunStore
from tests.contract import _data as d
from tests.contract._data import T0, TTL, at


async def test_a_paused_run_is_neither_claimed_nor_runnable(store: RunStore) -> None:
    await store.create_run(d.run(), [])
    paused = await store.pause_run("run_1", at(1), "alice", [d.draft("run.paused")])
    assert (paused.paused_at, paused.paused_by) == (at(1), "alice")
    assert (await store.get_run("run_1")).paused_by == "alice"
    assert await store.claim("run_1", "w1", at(2), TTL) is None
    assert await store.claim_run("run_1", "w1", at(2), TTL) is None
    assert "run_1" not in await store.runnable_runs(at(2))
    with pytest.raises(Conflict, match="is paused by alice"):
        await store.pause_run("run_1", at(3), "bob", [])
    resumed = await store.pause_run("run_1", at(4), None, [d.draft("run.resumed")])
    assert (resumed.paused_at, resumed.paused_by) == (None, None)
    assert "run_1" in await store.runnable_runs(at(5))
    with pytest.raises(Conflict, match="is not paused"):
        await store.pause_run("run_1", at(6), None, [])
    assert [e.kind for e in await store.audit_events(run_id="run_1")][-2:] == ["run.paused", "run.resumed"]
    with pytest.raises(NotFound):
        await store.pause_run("run_404", at(7), "alice", [])


async def test_the_holder_keeps_its_lease_and_sees_the_pause_on_its_next_commit(store: RunStore) -> None:
    from engine.ports import RunChange

    lease = await d.started(store)
    await store.pause_run("run_1", at(1), "alice", [])
    run = await store.commit(lease, RunChange(at=at(2), steps=[d.step()], pending_remove=["draft"]))
    assert run.paused_by == "alice", "the commit returns the run as the database has it"
    released = await store.commit(lease, RunChange(at=at(3), release=True))
    assert released.lease_owner is None
    assert released.paused_by == "alice"


async def test_ended_runs_cannot_be_paused(store: RunStore) -> None:
    await store.create_run(d.run(), [])
    await store.cancel_run("run_1", at(1), "stop", [])
    with pytest.raises(Conflict, match="already ended"):
        await store.pause_run("run_1", at(2), "alice", [])


async def test_a_rerun_is_created_with_its_reused_steps_and_linked(store: RunStore) -> None:
    await store.create_run(d.run(), [])
    reused = [
        d.step("step_a", run_id="run_2", node_id="a", status=StepStatus.succeeded, started_at=T0),
        d.step("step_b", run_id="run_2", node_id="b", status=StepStatus.succeeded, started_at=at(1)),
    ]
    await store.create_run(d.run("run_2", rerun_of="run_1", pending=["c"]), [d.draft("run.started")], reused)
    await store.create_run(d.run("run_3", rerun_of="run_1"), [])
    assert [s.id for s in await store.list_steps("run_2")] == ["step_a", "step_b"]
    assert [r.id for r in await store.reruns_of("run_1")] == ["run_2", "run_3"]
    assert await store.reruns_of("run_2") == []
    assert (await store.get_run("run_2")).rerun_of == "run_1"


async def test_a_failed_run_is_reopened_with_its_retried_steps_pending(store: RunStore) -> None:
    lease = await d.started(store)
    failed = d.step(status=StepStatus.failed, error="503", retryable=True)
    from engine.model import RunStatus
    from engine.ports import RunChange

    await store.commit(
        lease,
        RunChange(
            at=at(1),
            steps=[failed],
            pending_remove=["draft"],
            status=RunStatus.failed,
            reason="x",
            finished=True,
            release=True,
        ),
    )
    assert (await store.list_steps("run_1"))[0].retryable
    again = failed.model_copy(update={"status": StepStatus.running, "error": None, "retryable": False})
    run = await store.reopen_run("run_1", at(2), [again], [d.draft("run.retried")])
    assert (run.status, run.reason, run.finished_at, run.pending, run.lease_owner) == (
        RunStatus.queued,
        None,
        None,
        ["draft"],
        None,
    )
    assert (await store.get_run("run_1")).pending == ["draft"]
    assert [s.status for s in await store.list_steps("run_1")] == [StepStatus.running]
    assert "run_1" in await store.runnable_runs(at(3))
    with pytest.raises(Conflict, match="is queued, not failed"):
        await store.reopen_run("run_1", at(4), [again], [])
