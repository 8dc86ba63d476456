"""RunStore contract: the audit trail is searched by actor, kind, channel or ids, and paged newest first."""

from __future__ import annotations

from engine.ports import RunStore
from tests.contract import _data as d
from tests.contract._data import at


async def _events(store: RunStore) -> None:
    """run_1 by U_ANN on slack, run_2 by email:ann@corp.example on web, run_3 by U_BOB."""
    specs = [
        ("run_1", "U_ANN", "slack", None),
        ("run_2", "email:ann@corp.example", "web", "cp_100%"),
        ("run_3", "U_BOB", "cli", None),
    ]
    for n, (run_id, actor, channel, checkpoint_id) in enumerate(specs):
        await store.create_run(
            d.run(run_id, requester=actor, created_at=at(n)),
            [
                d.draft("run.created", when=at(n), run_id=run_id, actor=actor, channel=channel),
                d.draft(
                    "decision.recorded",
                    when=at(n),
                    run_id=run_id,
                    actor=actor,
                    channel=channel,
                    checkpoint_id=checkpoint_id,
                    payload={"comment": "secret words"},
                ),
            ],
        )


async def test_search_matches_actor_kind_channel_and_ids_in_any_case(store: RunStore) -> None:
    await _events(store)
    everything = await store.search_audit()
    assert [e.seq for e in everything] == [6, 5, 4, 3, 2, 1]
    assert [(e.run_id, e.kind) for e in await store.search_audit(search="ANN")] == [
        ("run_2", "decision.recorded"),
        ("run_2", "run.created"),
        ("run_1", "decision.recorded"),
        ("run_1", "run.created"),
    ]
    assert {e.run_id for e in await store.search_audit(search="web")} == {"run_2"}
    assert [e.run_id for e in await store.search_audit(search="run_3")] == ["run_3", "run_3"]
    assert [e.checkpoint_id for e in await store.search_audit(search="100%")] == ["cp_100%"]
    assert await store.search_audit(search="_%") == []  # wildcards are literal
    assert await store.search_audit(search="secret") == []  # payloads are not searched
    decisions = await store.search_audit(kind="decision.")
    assert [e.run_id for e in decisions] == ["run_3", "run_2", "run_1"]
    assert [e.run_id for e in await store.search_audit(search="bob", kind="run.")] == ["run_3"]


async def test_pages_continue_before_the_last_event_shown(store: RunStore) -> None:
    await _events(store)
    seen: list[int] = []
    before = None
    while page := await store.search_audit(limit=4, before_seq=before):
        seen += [e.seq for e in page]
        before = page[-1].seq
    assert seen == [6, 5, 4, 3, 2, 1]
    assert [e.seq for e in await store.search_audit(search="ann", limit=1, before_seq=4)] == [3]
