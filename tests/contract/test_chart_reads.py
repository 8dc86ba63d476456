"""RunStore contract: the steps of the runs created in a period, read at once for the charts."""

from __future__ import annotations

from engine.ports import RunChange, RunStore
from tests.contract import _data as d
from tests.contract._data import at


async def _runs(store: RunStore) -> None:
    """run_a (refund, t=0), run_b (refund, t=100), run_c (deploy, t=200); two steps each."""
    for n, (run_id, workflow) in enumerate([("run_a", "refund"), ("run_b", "refund"), ("run_c", "deploy")]):
        created = at(100 * n)
        await store.create_run(d.run(run_id, workflow_id=workflow, created_at=created), [])
        lease = await store.claim_run(run_id, "w1", created, d.TTL)
        assert lease is not None
        steps = [
            d.step(
                f"{run_id}_2",
                run_id=run_id,
                node_id="send",
                started_at=at(100 * n + 5),
                ended_at=at(100 * n + 6),
            ),
            d.step(
                f"{run_id}_1", run_id=run_id, node_id="draft", started_at=created, ended_at=at(100 * n + 1)
            ),
        ]
        await store.commit(lease, RunChange(at=at(100 * n + 6), steps=steps))


async def test_steps_of_the_runs_created_in_the_period_in_start_order(store: RunStore) -> None:
    await _runs(store)
    every = await store.steps_of_runs(created_since=at(0), created_until=at(200))
    assert [s.id for s in every] == ["run_a_1", "run_a_2", "run_b_1", "run_b_2", "run_c_1", "run_c_2"]
    assert every[0].cost_usd == 0.001
    later = await store.steps_of_runs(created_since=at(50), created_until=at(200))
    assert {s.run_id for s in later} == {"run_b", "run_c"}
    refunds = await store.steps_of_runs(created_since=at(0), created_until=at(150), workflow_id="refund")
    assert [s.id for s in refunds] == ["run_a_1", "run_a_2", "run_b_1", "run_b_2"]
    assert await store.steps_of_runs(created_since=at(0), created_until=at(200), workflow_id="none") == []
    assert await store.steps_of_runs(created_since=at(201), created_until=at(300)) == []
