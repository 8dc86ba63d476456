"""RunStore contract: runs are searched by part of their id, workflow or requester, and paged."""

from __future__ import annotations

from engine.ports import RunStore
from tests.contract import _data as d
from tests.contract._data import at


async def _runs(store: RunStore) -> None:
    specs = [
        ("run_a", "refund", "U_ANN", 0),
        ("run_b", "refund", "U_BOB", 10),
        ("run_c", "pay_100%", "email:ann@corp.example", 10),
        ("run_d", "deploy", "U_CAT", 20),
        ("run_e", "deploy", "U_ANN", 30),
    ]
    for run_id, workflow, requester, when in specs:
        await store.create_run(
            d.run(run_id, workflow_id=workflow, requester=requester, created_at=at(when)), []
        )


async def test_search_matches_id_workflow_and_requester_in_any_case(store: RunStore) -> None:
    await _runs(store)
    assert [r.id for r in await store.list_runs(search="ann")] == ["run_e", "run_c", "run_a"]
    assert [r.id for r in await store.list_runs(search="REFUND")] == ["run_b", "run_a"]
    assert [r.id for r in await store.list_runs(search="run_d")] == ["run_d"]
    assert [r.id for r in await store.list_runs(search="100%")] == ["run_c"]
    assert [r.id for r in await store.list_runs(search="_%")] == []  # wildcards are literal
    assert [r.id for r in await store.list_runs(search="ann", workflow_id="deploy")] == ["run_e"]


async def test_pages_continue_after_the_last_run_shown_even_on_equal_times(store: RunStore) -> None:
    await _runs(store)
    seen: list[str] = []
    before = None
    while True:
        page = await store.list_runs(limit=2, before=before)
        if not page:
            break
        seen += [r.id for r in page]
        before = (page[-1].created_at, page[-1].id)
    assert seen == [r.id for r in await store.list_runs()]
    assert sorted(seen) == ["run_a", "run_b", "run_c", "run_d", "run_e"]
