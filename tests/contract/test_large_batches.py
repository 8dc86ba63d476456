"""Writes too big for one statement: PostgreSQL's protocol binds at most 65,535 values per
statement, and a step commit or a new run goes as one statement of CTEs when it fits
(``storage._writes``). A checkpoint assigned to thousands of people, or a rerun reusing
thousands of steps, must still be stored (part by part), not fail on every retry."""

from __future__ import annotations

from engine.audit import verify_chain
from engine.model import RunStatus
from engine.ports import RunChange, RunStore
from tests.contract import _data as d
from tests.contract._data import at


async def test_a_commit_with_many_deliveries_is_stored(store: RunStore) -> None:
    lease = await d.started(store)
    people = [f"user:U{i}" for i in range(4400)]
    change = RunChange(
        at=at(1),
        steps=[d.step()],
        # what a human node assigned to many people opens: one card per assignee
        checkpoints=[d.checkpoint(assignees=people)],
        deliveries=[d.delivery(f"dl_{i}", target=p) for i, p in enumerate(people)],
        pending_remove=["draft"],
        status=RunStatus.waiting,
        release=True,
        audit=[d.draft(when=at(1))],
    )
    await store.commit(lease, change)
    assert (await store.get_run("run_1")).status is RunStatus.waiting
    assert verify_chain(await store.audit_events(), await store.audit_head()).ok


async def test_a_rerun_reusing_many_steps_is_created(store: RunStore) -> None:
    steps = [d.step(f"s{i}", run_id="run_2", node_id=f"n{i}") for i in range(4400)]
    await store.create_run(d.run("run_2"), [d.draft("run.created", run_id="run_2")], steps)
    assert len(await store.list_steps("run_2")) == 4400
