"""Acceptance of the agent API through the real HTTP server: ask, Slack card, decision, waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.blocks.checkpoint import APPROVE
from engine.commands import Decide
from engine.model import CheckpointStatus
from tests.e2e.api_harness import ApiEnv, api_env, ask_body
from tests.scenario._flow import has_buttons
from tests.scenario._harness import MANAGER, STRANGER

ASK = "checkpoints:create,checkpoints:read"


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[ApiEnv]:
    """The process on SQLite, and on PostgreSQL when it is configured."""
    async with api_env(tmp_path, database_url) as running:
        yield running


async def _cards(env: ApiEnv, cp_id: str) -> list[Any]:
    calls = env.slack.fake.calls_to("chat.postMessage")
    return [c for c in calls if has_buttons(c) and cp_id in str(c.params.get("blocks"))]


async def test_ask_card_click_and_the_waiter_gets_the_typed_decision(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    status, cp, _ = await env.call(
        "POST", "/api/v1/checkpoints", token, ask_body(), {"Idempotency-Key": "k1"}
    )
    assert status == 201, cp
    assert (cp["status"], cp["title"], cp["assignees"]) == ("open", "Note to ACME", ["role:manager"])
    assert cp["show"] == {"customer": "ACME", "amount": 120}
    waiter = asyncio.create_task(env.call("GET", f"/api/v1/checkpoints/{cp['id']}/decision?wait=25", token))
    cards = await env.until(lambda: _cards(env, cp["id"]))
    assert "Send this note to ACME?" in str(cards[0].params)
    assert not waiter.done(), "the waiter holds until a decision"
    status, _ = await env.slack.send("interaction", env.slack.click(APPROVE, cp["id"], MANAGER))
    assert status == 200
    status, decision, _ = await asyncio.wait_for(waiter, 30)
    assert status == 200
    assert decision["outcome"] == "approved"
    assert decision["actor"] == {"id": MANAGER, "name": None}
    assert (decision["resolved_by"], decision["channel"]) == ("human", "slack")
    assert decision["data"] == {"message": "We refunded 120 USD."}
    assert decision["shown_hash"] == cp["shown_hash"]
    stored = await env.container.store.get_checkpoint(cp["id"])
    assert decision["shown_hash"] == f"sha256:{stored.shown_hash}"
    # the ask's run ends with its checkpoint
    run = await env.until(lambda: _final(env, cp["run_id"]))
    assert run.status.value == "succeeded"


async def _final(env: ApiEnv, run_id: str) -> Any:
    run = await env.container.store.get_run(run_id)
    return run if run.status.final else None


async def test_the_same_key_twice_gives_the_same_checkpoint_and_one_card(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    first = await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="same"))
    again = await env.call("POST", "/api/v1/checkpoints", token, ask_body(), {"Idempotency-Key": "same"})
    assert (first[0], again[0]) == (201, 200)
    assert again[2].get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first[2]
    assert again[1]["id"] == first[1]["id"]
    # two at once with a new key: still one checkpoint
    both = await asyncio.gather(
        *(
            env.call("POST", "/api/v1/checkpoints", token, ask_body(), {"Idempotency-Key": "race"})
            for _ in range(2)
        )
    )
    assert sorted(s for s, _, _ in both) == [200, 201]
    assert both[0][1]["id"] == both[1][1]["id"]
    assert len(await env.container.store.list_checkpoints()) == 2
    await env.until(lambda: _cards(env, first[1]["id"]))
    await asyncio.sleep(0.3)  # anything queued twice would be posted by now
    assert len(await _cards(env, first[1]["id"])) == 2, "one card per manager (user and group member), once"


async def test_a_key_reused_with_another_request_is_a_conflict(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    assert (await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="k")))[0] == 201
    status, problem, headers = await env.call(
        "POST", "/api/v1/checkpoints", token, ask_body(key="k", prompt="Other?")
    )
    assert status == 409
    assert headers["Content-Type"].startswith("application/problem+json")
    assert problem["code"] == "idempotency_conflict"
    assert len(await env.container.store.list_checkpoints()) == 1
    # keys are scoped per API key: another client may use the same key
    other, _ = await env.key(ASK, name="other")
    assert (await env.call("POST", "/api/v1/checkpoints", other, ask_body(key="k", prompt="Other?")))[
        0
    ] == 201
    status, problem, _ = await env.call("POST", "/api/v1/checkpoints", token, ask_body())
    assert (status, problem["code"]) == (400, "idempotency_key_required")


async def test_a_decision_made_before_anyone_waits_is_kept(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    _, cp, _ = await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="early"))
    edit = Decide(
        checkpoint_id=cp["id"], action="edit", actor=MANAGER, channel="cli", data={"message": "Refunded."}
    )
    await env.container.engine.decide(edit)
    status, decision, _ = await env.call("GET", f"/api/v1/checkpoints/{cp['id']}/decision?wait=0", token)
    assert status == 200
    assert (decision["outcome"], decision["data"], decision["channel"]) == (
        "edited",
        {"message": "Refunded."},
        "cli",
    )
    status, view, _ = await env.call("GET", f"/api/v1/checkpoints/{cp['id']}", token)
    assert view["status"] == "resolved"
    assert view["decision"] == decision


async def test_a_timeout_is_timed_out_never_a_reject(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    _, cp, _ = await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="t", timeout="1s"))
    status, decision, _ = await env.call("GET", f"/api/v1/checkpoints/{cp['id']}/decision?wait=25", token)
    assert status == 200, decision
    assert decision["outcome"] == "timed_out"
    assert (decision["resolved_by"], decision["actor"], decision["rule"]) == ("timeout", None, "auto_reject")
    status, again, _ = await env.call("GET", f"/api/v1/checkpoints/{cp['id']}/decision", token)
    assert (status, again) == (200, decision), "the decision stays readable"


async def test_open_checkpoint_answers_202_after_the_wait(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    _, cp, _ = await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="p"))
    status, pending, _ = await env.call("GET", f"/api/v1/checkpoints/{cp['id']}/decision?wait=1", token)
    assert (status, pending["status"], pending["checkpoint_id"]) == (202, "open", cp["id"])


async def test_an_agent_key_can_never_decide_and_the_refusal_is_audited(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    _, cp, _ = await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="a"))
    status, problem, _ = await env.call(
        "POST", f"/api/v1/checkpoints/{cp['id']}/decisions", token, {"action": "approve"}
    )
    assert status == 403
    assert (problem["code"], problem["rule"]) == ("agent_cannot_decide", "agent_cannot_decide")
    refused = [e for e in await env.container.store.audit_events() if e.kind == "decision.refused"]
    assert [(e.channel, e.payload["rule"]) for e in refused] == [("api", "agent_cannot_decide")]
    assert refused[0].actor.startswith("api:key_")
    assert (await env.container.store.get_checkpoint(cp["id"])).status is CheckpointStatus.open


async def test_a_persons_key_decides_through_the_gate(env: ApiEnv) -> None:
    agent, _ = await env.key(ASK)
    _, cp, _ = await env.call("POST", "/api/v1/checkpoints", agent, ask_body(key="p"))
    stranger, _ = await env.key("checkpoints:decide", as_user=STRANGER, name="stranger")
    status, problem, _ = await env.call(
        "POST", f"/api/v1/checkpoints/{cp['id']}/decisions", stranger, {"action": "approve"}
    )
    assert (status, problem["code"], problem["rule"]) == (403, "not_allowed", "not_assignee")
    reader, _ = await env.key("checkpoints:read", as_user=MANAGER, name="reader")
    status, problem, _ = await env.call(
        "POST", f"/api/v1/checkpoints/{cp['id']}/decisions", reader, {"action": "approve"}
    )
    assert (status, problem["code"]) == (403, "insufficient_scope")
    manager, _ = await env.key("checkpoints:decide", as_user=MANAGER, name="mia")
    bad = {"action": "edit", "data": {"message": "no"}}
    status, problem, _ = await env.call("POST", f"/api/v1/checkpoints/{cp['id']}/decisions", manager, bad)
    assert (status, problem["code"]) == (400, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["message"]
    good = {
        "action": "edit",
        "data": {"message": "Refunded in full."},
        "comment": "ok",
        "version": cp["version"],
    }
    status, decision, _ = await env.call("POST", f"/api/v1/checkpoints/{cp['id']}/decisions", manager, good)
    assert status == 200, decision
    assert (decision["outcome"], decision["actor"]["id"], decision["channel"]) == ("edited", MANAGER, "api")
    status, problem, _ = await env.call("POST", f"/api/v1/checkpoints/{cp['id']}/decisions", manager, good)
    assert (status, problem["code"], problem["winner"]) == (409, "conflict", MANAGER)
    refusals = [
        e.payload["rule"] for e in await env.container.store.audit_events() if e.kind == "decision.refused"
    ]
    assert refusals == ["not_assignee"]


async def test_withdrawing_an_ask(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    _, cp, _ = await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="w"))
    other, _ = await env.key(ASK, name="other")
    status, problem, _ = await env.call("POST", f"/api/v1/checkpoints/{cp['id']}/cancel", other)
    assert (status, problem["code"]) == (403, "not_allowed"), "only the agent that asked (or an admin)"
    status, view, _ = await env.call(
        "POST", f"/api/v1/checkpoints/{cp['id']}/cancel", token, {"reason": "not needed"}
    )
    assert status == 200
    assert view["decision"]["outcome"] == "cancelled"
    assert view["decision"]["comment"] == "not needed"
    status, decision, _ = await env.call("GET", f"/api/v1/checkpoints/{cp['id']}/decision?wait=5", token)
    assert (status, decision["outcome"], decision["actor"]) == (200, "cancelled", None)


async def test_invalid_asks_are_400s_naming_the_field(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    cases: list[tuple[dict[str, Any], str]] = [
        (ask_body(assignee="role:nobody"), "assignee"),
        (ask_body(timeout="soon"), "timeout"),
        (ask_body(assignee="user:{{ inputs.x }}"), "assignee"),
        (
            ask_body(escalation={"action": "escalate", "to": "{% if 1 %}x{% endif %}"}, timeout="1h"),
            "escalation",
        ),
        (ask_body(quorum=0), "quorum"),
        (ask_body(promt="typo"), "promt"),
        (ask_body(response_schema={"type": "nonsense"}), "response_schema"),
    ]
    for n, (body, fld) in enumerate(cases):
        status, problem, _ = await env.call("POST", "/api/v1/checkpoints", token, {**body, "key": f"bad{n}"})
        assert status == 400, (body, problem)
        assert problem["code"] == "validation_failed"
        assert fld in [e["field"] for e in problem["errors"]], problem
    assert await env.container.store.list_checkpoints() == []


async def test_agent_content_is_shown_as_data_never_compiled(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    body = ask_body(key="tpl", prompt="{{ 7 * 6 }} {% raw %}", show={"x": "{{ inputs }}"}, title="{{ run }}")
    status, cp, _ = await env.call("POST", "/api/v1/checkpoints", token, body)
    assert status == 201, cp
    # the prompt is shown as text: the agent's characters that would format in Slack are inert
    assert (cp["prompt"], cp["title"], cp["show"]) == (
        "{{ 7 \uff0a 6 }} {% raw %}",
        "{{ run }}",
        {"x": "{{ inputs }}"},
    )


async def test_another_client_reusing_a_key_and_body_never_gets_the_first_clients_ask(env: ApiEnv) -> None:
    # an idempotency key is the client's own: the same key and body from another API key is a
    # new request, not a replay that would hand over the first client's checkpoint
    first, _ = await env.key(ASK)
    other, _ = await env.key(ASK, name="other")
    mine = await env.call("POST", "/api/v1/checkpoints", first, ask_body(key="shared"))
    theirs = await env.call("POST", "/api/v1/checkpoints", other, ask_body(key="shared"))
    assert (mine[0], theirs[0]) == (201, 201)
    assert "Idempotent-Replayed" not in theirs[2]
    assert theirs[1]["id"] != mine[1]["id"]
    assert len(await env.container.store.list_checkpoints()) == 2
