"""App Home: sections, urgent first, paging under Slack's 100-block limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.models.views import View

from bot.blocks.home import home_view
from engine.model import Checkpoint, Decision, Priority, ResolvedBy, Run, RunStatus

T0 = datetime(2026, 8, 14, 9, 0, tzinfo=UTC)


def cp(n: int, priority: Priority = Priority.medium, **changes: Any) -> Checkpoint:
    fields: dict[str, Any] = {
        "id": f"cp_{n}",
        "run_id": f"run_{n}",
        "node_id": "review",
        "title": f"Request {n}",
        "prompt": "Please look",
        "options": ["approve", "reject", "edit"],
        "priority": priority,
        "requester": "UREQ",
        "created_at": T0 + timedelta(minutes=n),
    }
    return Checkpoint(**(fields | changes))


def run(n: int) -> Run:
    return Run(
        id=f"run_{n}",
        workflow_id="release",
        workflow_hash="h",
        status=RunStatus.waiting,
        inputs={},
        requester="UREQ",
        created_at=T0,
        updated_at=T0,
    )


def decision(n: int, resolved_by: ResolvedBy = ResolvedBy.human) -> Decision:
    return Decision(
        id=f"d_{n}",
        checkpoint_id=f"cp_{n}",
        run_id=f"run_{n}",
        action="approve",
        actor="U1",
        channel="slack",
        resolved_by=resolved_by,
        created_at=T0,
    )


def check(view: dict[str, Any]) -> None:
    assert view["type"] == "home"
    assert len(view["blocks"]) <= 100
    View(**view).validate_json()
    ids = [b["block_id"] for b in view["blocks"]]
    assert len(ids) == len(set(ids))


def pager_value(view: dict[str, Any], label: str) -> str | None:
    for block in view["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == "home.page" and element["text"]["text"] == label:
                return str(element["value"])
    return None


def test_empty_home() -> None:
    view = home_view(waiting=[], requests=[], decided=[])
    check(view)
    headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
    assert headers == ["Waiting for you", "Your requests", "Recently decided"]
    assert pager_value(view, "Next page") is None


def test_urgent_first_with_buttons() -> None:
    waiting = [cp(1, Priority.low), cp(2, Priority.urgent), cp(3, Priority.high), cp(4, Priority.urgent)]
    view = home_view(waiting=waiting, requests=[run(1)], decided=[(cp(5), decision(5))])
    check(view)
    order = [b["block_id"] for b in view["blocks"] if b["block_id"].startswith("home:")]
    assert order == ["home:v0:cp_2", "home:v0:cp_4", "home:v0:cp_3", "home:v0:cp_1"]
    actions = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {e["action_id"] for e in actions} == {"checkpoint.approve", "checkpoint.reject", "checkpoint.edit"}
    assert all(e["value"].startswith("cp_") for e in actions)
    text = json.dumps(view)
    assert "Waiting for a person" in text
    assert "Approved by <@U1>" in text


def test_300_items_page_under_100_blocks() -> None:
    waiting = [cp(i, Priority.urgent if i % 50 == 0 else Priority.medium) for i in range(300)]
    requests = [run(i) for i in range(300)]
    decided = [(cp(i), decision(i, ResolvedBy.timeout if i % 2 else ResolvedBy.human)) for i in range(300)]
    seen: list[str] = []
    page, pages = 0, 0
    while True:
        view = home_view(waiting=waiting, requests=requests, decided=decided, page=page)
        check(view)
        seen += [b["block_id"] for b in view["blocks"]]
        pages += 1
        following = pager_value(view, "Next page")
        if following is None:
            break
        assert pager_value(
            home_view(waiting=waiting, requests=requests, decided=decided, page=int(following)),
            "Previous page",
        ) == str(page)
        page = int(following)
    assert pages > 1
    assert sum(1 for s in seen if s.startswith("home:")) == 300
    assert sum(1 for s in seen if s.startswith("run:")) == 300
    assert sum(1 for s in seen if s.startswith("decided:")) == 300
    first = home_view(waiting=waiting, requests=requests, decided=decided)
    urgent = [b["block_id"] for b in first["blocks"] if b["block_id"].startswith("home:")][:6]
    assert urgent == [f"home:v0:cp_{i}" for i in (0, 50, 100, 150, 200, 250)]


def test_page_out_of_range_is_clamped() -> None:
    view = home_view(waiting=[cp(i) for i in range(200)], requests=[], decided=[], page=999)
    check(view)
    assert pager_value(view, "Next page") is None
    assert pager_value(view, "Previous page") is not None
