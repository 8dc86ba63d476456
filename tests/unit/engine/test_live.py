"""Live events are the audit chain seen from outside: a node with side effects reports its start
(the commit of its running step), every node its end; ids are the audit sequence."""

from __future__ import annotations

from collections.abc import Callable

from engine.live import live_event
from tests.unit.engine.conftest import World

WORKFLOW = """\
id: fetch
nodes:
  - id: prepare
    type: set
    data: {path: items}
  - id: call
    type: http
    request: {method: GET, url: "https://api.example.com/{{ nodes.prepare.data.path }}"}
edges:
  - {from: prepare, to: call}
"""


async def test_a_runs_events_in_order_with_the_http_nodes_start(make_world: Callable[..., World]) -> None:
    w = make_world(WORKFLOW)
    run = await w.engine.start("fetch", {}, requester="alice")
    await w.engine.drive(run.id)
    events = [e for e in (live_event(a) for a in await w.store.audit_events(run_id=run.id)) if e]
    assert [(e.type, e.node) for e in events] == [
        ("run.started", None),
        ("node.succeeded", "prepare"),  # an instant node: no start of its own
        ("node.started", "call"),
        ("node.succeeded", "call"),
        ("run.finished", None),
    ]
    assert events[-1].status == "succeeded"
    ids = [e.id for e in events]
    assert ids == sorted(set(ids))
    assert all(e.run_id == run.id for e in events)
