"""RunStore contract: "waiting for me" through the assignee index, complete at any count."""

from __future__ import annotations

from engine.ports import CheckpointUpdate, RunChange, RunStore
from tests.contract import _data as d
from tests.contract._data import at


async def _open_many(
    store: RunStore, assigned: list[list[str]], teams: list[str | None] | None = None
) -> list[str]:
    lease = await d.started(store)
    ids = [f"cp_{n:05d}" for n in range(len(assigned))]
    where = teams or [None] * len(assigned)
    checkpoints = [
        d.checkpoint(cp_id, assignees=principals, created_at=at(n), team=team)
        for n, (cp_id, principals, team) in enumerate(zip(ids, assigned, where, strict=True))
    ]
    for start in range(0, len(checkpoints), 200):
        await store.commit(lease, RunChange(at=at(0), checkpoints=checkpoints[start : start + 200]))
    return ids


async def test_the_oldest_are_found_among_many(store: RunStore) -> None:
    # 10 for mia are the oldest of 1,210 open checkpoints: a newest-first scan of 500 missed them
    ids = await _open_many(store, [["user:mia"]] * 10 + [["user:other", "role:ops"]] * 1200)
    mine = await store.open_checkpoints_for(["user:mia"], limit=100)
    assert [c.id for c in mine] == list(reversed(ids[:10]))
    ops = await store.open_checkpoints_for(["role:ops", "user:nobody"], limit=500)
    assert len(ops) == 500
    assert ops[0].id == ids[-1]
    following = await store.open_checkpoints_for(
        ["role:ops"], limit=500, before=(ops[-1].created_at, ops[-1].id)
    )
    assert following[0].id == ids[-501]
    assert await store.open_checkpoints_for([], limit=10) == []


async def test_the_index_follows_escalation_and_resolution(store: RunStore) -> None:
    await _open_many(store, [["user:mia"], ["channel:C1", "group:S1"]])
    await store.update_checkpoint(
        CheckpointUpdate(checkpoint_id="cp_00000", expected_version=0, at=at(5), assignees=["role:senior"])
    )
    assert await store.open_checkpoints_for(["user:mia"]) == []
    assert [c.id for c in await store.open_checkpoints_for(["role:senior"])] == ["cp_00000"]
    assert await store.open_principals(("group", "channel")) == [("channel:C1", None), ("group:S1", None)]
    await store.update_checkpoint(
        CheckpointUpdate(
            checkpoint_id="cp_00001",
            expected_version=0,
            at=at(6),
            resolve=True,
            decision=d.decision(checkpoint_id="cp_00001"),
        )
    )
    assert await store.open_checkpoints_for(["channel:C1"]) == []
    assert await store.open_principals(("group", "channel")) == []


async def test_open_groups_come_with_the_workspaces_of_their_checkpoints(store: RunStore) -> None:
    # a group is read in the workspace its checkpoints belong to (several workspaces installed)
    await _open_many(
        store,
        [["group:S1"], ["group:S1", "role:ops"], ["group:S1"], ["channel:C1"], ["user:mia"]],
        ["T0B", "T0A", "T0B", None, "T0A"],
    )
    assert await store.open_principals(("group", "channel", "role")) == [
        ("channel:C1", None),
        ("group:S1", "T0A"),
        ("group:S1", "T0B"),
        ("role:ops", "T0A"),
    ]
    assert await store.open_principals(("group",)) == [("group:S1", "T0A"), ("group:S1", "T0B")]
