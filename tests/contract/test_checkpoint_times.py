"""RunStore contract: the timer service's pages of open checkpoints with a deadline."""

from __future__ import annotations

from engine.model import RunStatus
from engine.ports import CheckpointTimes, RunChange, RunStore, TimerQuery
from tests.contract import _data as d
from tests.contract._data import at


async def _open(store: RunStore) -> None:
    """run_1 waiting at four checkpoints: three with deadlines (one escalated), one without."""
    lease = await d.started(store)
    await store.commit(
        lease,
        RunChange(
            at=at(1),
            checkpoints=[
                d.checkpoint("cp_b", due_at=at(200), created_at=at(20)),
                d.checkpoint("cp_a", due_at=at(100), created_at=at(10)),
                d.checkpoint("cp_c", due_at=at(200), created_at=at(30), escalation_level=1),
                d.checkpoint("cp_none", due_at=None, created_at=at(40)),
            ],
            pending_remove=["draft"],
            status=RunStatus.waiting,
            release=True,
        ),
    )


def _ids(page: list[CheckpointTimes]) -> list[str]:
    return [t.checkpoint_id for t in page]


async def test_pages_of_every_open_checkpoint_with_a_deadline_by_deadline(store: RunStore) -> None:
    await _open(store)
    first = await store.checkpoint_times(TimerQuery(limit=2))
    assert _ids(first) == ["cp_a", "cp_b"]
    assert first[0] == CheckpointTimes(
        checkpoint_id="cp_a",
        run_id="run_1",
        node_id="approve",
        workflow_hash="sha256:abc",
        due_at=at(100),
        escalation_level=0,
        created_at=at(10),
    )
    after = (first[-1].due_at, first[-1].checkpoint_id)
    assert _ids(await store.checkpoint_times(TimerQuery(limit=2, after=after))) == ["cp_c"]


async def test_deadlines_before_a_time(store: RunStore) -> None:
    await _open(store)
    assert _ids(await store.checkpoint_times(TimerQuery(due_before=at(150)))) == ["cp_a"]
    assert _ids(await store.checkpoint_times(TimerQuery(due_before=at(200)))) == ["cp_a", "cp_b", "cp_c"]


async def test_level_zero_checkpoints_opened_in_a_range_by_opening_time(store: RunStore) -> None:
    await _open(store)
    query = TimerQuery(opened_between=(at(10), at(40)))
    assert _ids(await store.checkpoint_times(query)) == ["cp_b"]  # cp_a at the open end, cp_c escalated
    query = TimerQuery(opened_between=(at(0), at(40)), limit=1)
    first = await store.checkpoint_times(query)
    assert _ids(first) == ["cp_a"]
    after = (first[0].created_at, first[0].checkpoint_id)
    assert _ids(await store.checkpoint_times(query.model_copy(update={"after": after}))) == ["cp_b"]


async def test_some_checkpoints_by_id(store: RunStore) -> None:
    await _open(store)
    assert _ids(await store.checkpoint_times(TimerQuery(ids=["cp_c", "cp_none", "cp_x"]))) == ["cp_c"]
    assert await store.checkpoint_times(TimerQuery(ids=[])) == []


async def test_the_workflow_nodes_of_open_checkpoints_with_a_deadline(store: RunStore) -> None:
    await _open(store)
    assert await store.timer_nodes() == [("sha256:abc", "approve")]
