"""The Python client (``signoff_client``) against the real server: typed asks and decisions,
idempotency keys, long-poll rounds, problems as typed exceptions, retries, runs, the sync client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field

from bot.blocks.checkpoint import APPROVE
from engine.commands import Decide
from signoff_client import (
    AsyncSignoff,
    BadRequest,
    Decision,
    Forbidden,
    IdempotencyConflict,
    NotFound,
    ServerError,
    Signoff,
    TransportError,
    Unauthenticated,
    WaitTimeout,
    WebhookVerificationError,
    verify_webhook,
)
from tests.e2e.api_harness import ApiEnv, api_env
from tests.e2e.client_harness import faulty_proxy
from tests.scenario._harness import MANAGER

ASK = "checkpoints:create,checkpoints:read"


class Note(BaseModel):
    """The data the manager approves or edits."""

    message: str = Field(min_length=5)


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path, database_url) as running:
        yield running


async def _client(env: ApiEnv, scopes: str = ASK, **kwargs: Any) -> AsyncSignoff:
    token, _ = await env.key(scopes)
    return AsyncSignoff(env.base, token, **kwargs)


async def _open(env: ApiEnv, sg: AsyncSignoff, key: str) -> str:
    cp = await sg.checkpoints.create(
        "Send this note to ACME?",
        key=key,
        assignee="role:manager",
        show={"customer": "ACME"},
        proposed=Note(message="We refunded 120 USD."),
        response_model=Note,
    )
    return cp.id


async def test_ask_waits_for_a_slack_click_and_returns_the_typed_decision(env: ApiEnv) -> None:
    async with await _client(env) as sg:
        asking = asyncio.create_task(
            sg.ask(
                "Send this note to ACME?",
                key="note-1",
                assignee="role:manager",
                show={"customer": "ACME", "amount": 120},
                proposed={"message": "We refunded 120 USD."},
                response_model=Note,
            )
        )
        [cp] = await env.until(lambda: env.container.store.list_checkpoints())
        await env.until(lambda: env.api.waiters.waiting)  # the client's long poll is held
        assert not asking.done()
        await env.slack.send("interaction", env.slack.click(APPROVE, cp.id, MANAGER))
        decision = await asyncio.wait_for(asking, 30)
    assert isinstance(decision, Decision)
    assert isinstance(decision.data, Note)
    assert decision.data.message == "We refunded 120 USD."
    assert (decision.outcome, decision.approved, decision.resolved_by) == ("approved", True, "human")
    assert decision.actor is not None
    assert decision.actor.id == MANAGER
    assert decision.channel == "slack"
    assert decision.shown_hash == f"sha256:{(await env.container.store.get_checkpoint(cp.id)).shown_hash}"
    stored = await env.container.store.get_checkpoint(cp.id)
    assert stored.response_schema["properties"]["message"]["minLength"] == 5, (
        "the model's JSON Schema was sent"
    )


async def test_keys_are_explicit_and_a_reused_key_with_another_request_is_a_typed_conflict(
    env: ApiEnv,
) -> None:
    async with await _client(env) as sg:
        first = await sg.checkpoints.create("Deploy 42?", key="k1", assignee="role:manager")
        again = await sg.checkpoints.create("Deploy 42?", key="k1", assignee="role:manager")
        assert (again.id, first.replayed, again.replayed) == (first.id, False, True)
        other = await sg.checkpoints.create("Deploy 42?", key="k2", assignee="role:manager")
        assert other.id != first.id, "the same content under another key is another question"
        with pytest.raises(IdempotencyConflict) as raised:
            await sg.checkpoints.create("Deploy 43?", key="k1", assignee="role:manager")
    assert (raised.value.status, raised.value.code) == (409, "idempotency_conflict")
    assert len(await env.container.store.list_checkpoints()) == 2


async def test_a_decision_made_before_the_wait_and_a_server_timeout_are_outcomes(env: ApiEnv) -> None:
    async with await _client(env) as sg:
        cp_id = await _open(env, sg, "early")
        edit = Decide(
            checkpoint_id=cp_id, action="edit", actor=MANAGER, channel="cli", data={"message": "Refunded."}
        )
        await env.container.engine.decide(edit)
        decision = await sg.checkpoints.wait(cp_id, response_model=Note, timeout=5)
        assert (decision.outcome, decision.channel) == ("edited", "cli")
        assert decision.data == Note(message="Refunded.")
        late = await sg.ask("Deploy?", key="late", assignee="role:manager", timeout="1s", response_model=Note)
    assert (late.outcome, late.resolved_by, late.actor, late.approved) == (
        "timed_out",
        "timeout",
        None,
        False,
    )
    assert late.data is None, "a timeout carries no approved data"


async def test_a_rejection_is_an_outcome_with_no_typed_data(env: ApiEnv) -> None:
    async with await _client(env) as sg:
        cp_id = await _open(env, sg, "no")
        reject = Decide(checkpoint_id=cp_id, action="reject", actor=MANAGER, channel="cli", comment="no")
        await env.container.engine.decide(reject)
        decision = await sg.checkpoints.wait(cp_id, response_model=Note, timeout=20)
    assert (decision.outcome, decision.approved, decision.data) == ("rejected", False, None)


async def test_long_poll_rounds_until_the_total_timeout(env: ApiEnv) -> None:
    waits: list[str] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/decision"):
            waits.append(request.url.params["wait"])

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        async with await _client(env, round_s=1, http=http) as sg:
            cp_id = await _open(env, sg, "slow")
            with pytest.raises(WaitTimeout) as raised:
                await sg.checkpoints.wait(cp_id, timeout=2.5)
        assert raised.value.resource_id == cp_id
        assert len(waits) >= 3, waits
        assert set(waits) <= {"0", "1"}, waits
        waits.clear()
        async with await _client(env, http=http) as sg:
            with pytest.raises(WaitTimeout):
                await sg.checkpoints.wait(cp_id, timeout=0.5)
        assert waits == ["1"], "a round never waits past the total timeout (rounded up to a second)"
    assert AsyncSignoff(env.base, "k", round_s=90).checkpoints._waiting.round_s == 25, (
        "rounds of at most 25 s"
    )


async def test_problems_are_typed_exceptions_with_their_code(env: ApiEnv) -> None:
    async with AsyncSignoff(env.base, "so_key_nope.nope", retries=0) as bad:
        with pytest.raises(Unauthenticated) as unauth:
            await bad.checkpoints.get("cp_x")
    assert unauth.value.code == "unauthenticated"
    async with await _client(env) as sg:
        with pytest.raises(NotFound) as missing:
            await sg.checkpoints.get("cp_missing")
        assert missing.value.code == "not_found"
        with pytest.raises(BadRequest) as invalid:
            await sg.checkpoints.create("Deploy?", key="q", assignee="role:manager", quorum=0)
        assert invalid.value.code == "validation_failed"
        assert [e.field for e in invalid.value.errors] == ["quorum"]
        cp_id = await _open(env, sg, "agent")
        with pytest.raises(Forbidden) as refused:
            await sg.checkpoints.decide(cp_id, "approve")
        assert (refused.value.code, refused.value.rule) == ("agent_cannot_decide", "agent_cannot_decide")
        with pytest.raises(Forbidden) as scope:
            await sg.runs.get("run_x")
        assert scope.value.code == "insufficient_scope"


async def test_retries_5xx_with_retry_after_but_never_a_4xx(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    async with faulty_proxy(env.base) as proxy:
        async with AsyncSignoff(proxy.url, token, backoff_s=0.01) as sg:
            proxy.faults = [(503, "1"), (502, None)]
            cp = await sg.checkpoints.create("Deploy?", key="r1", assignee="role:manager")
            tries = proxy.to("/api/v1/checkpoints")
            assert len(tries) == 3, "two failures, then the request went through"
            assert tries[1].at - tries[0].at >= 1.0, "Retry-After: 1 was honoured"
            assert (await sg.checkpoints.create("Deploy?", key="r1", assignee="role:manager")).replayed
            proxy.seen.clear()
            with pytest.raises(IdempotencyConflict):
                await sg.checkpoints.create("Other?", key="r1", assignee="role:manager")
            assert len(proxy.seen) == 1, "a 4xx is never retried"
            proxy.faults = ["drop"]
            assert (await sg.checkpoints.get(cp.id)).id == cp.id, "a dropped connection is retried"
            proxy.seen.clear()
            proxy.faults = ["drop"]
            with pytest.raises(TransportError):
                await sg.checkpoints.decide(cp.id, "approve")
            assert len(proxy.seen) == 1, "a decision that may have arrived is never sent twice"
        async with AsyncSignoff(proxy.url, token, retries=2, backoff_s=0.01) as sg:
            proxy.seen.clear()
            proxy.faults = [(500, None)] * 3
            with pytest.raises(ServerError) as failed:
                await sg.checkpoints.get(cp.id)
            assert (failed.value.status, len(proxy.seen)) == (500, 3)


async def test_connection_refused_is_a_transport_error_after_the_retries() -> None:
    async with AsyncSignoff("http://127.0.0.1:9", "so_key_x.y", retries=2, backoff_s=0.01) as sg:
        with pytest.raises(TransportError):
            await sg.checkpoints.get("cp_x")


async def test_list_and_cancel(env: ApiEnv) -> None:
    async with await _client(env) as sg:
        first = await _open(env, sg, "l1")
        second = await _open(env, sg, "l2")
        page = await sg.checkpoints.list(limit=1)
        assert [c.id for c in page.items] == [second]
        assert page.next_cursor
        rest = await sg.checkpoints.list(limit=5, cursor=page.next_cursor)
        assert [c.id for c in rest.items] == [first]
        assert [c.id for c in (await sg.checkpoints.list(assignee="role:manager")).items] == [second, first]
        cancelled = await sg.checkpoints.cancel(first, reason="not needed")
        assert cancelled.status == "resolved"
        decision = await sg.checkpoints.wait(first, timeout=5)
        assert (decision.outcome, decision.resolved_by) == ("cancelled", "policy")
        assert await sg.checkpoints.decision(second) is None


async def test_runs_start_wait_and_list(env: ApiEnv) -> None:
    async with await _client(env, "runs:write,runs:read,checkpoints:read") as sg:
        run = await sg.runs.start("refund", {"customer": "ACME", "amount": 40}, key="refund-1")
        assert (await sg.runs.start("refund", {"customer": "ACME", "amount": 40}, key="refund-1")).replayed
        waiting = await env.until(lambda: _open_checkpoints(sg, run.id))
        assert (waiting.status, waiting.outcome) == ("waiting", None)
        with pytest.raises(WaitTimeout):
            await sg.runs.wait(run.id, timeout=0.5)
        await env.slack.send("interaction", env.slack.click(APPROVE, waiting.open_checkpoints[0], MANAGER))
        result = await sg.runs.wait(run.id, timeout=30)
        assert (result.run.status, result.run.outcome) == ("succeeded", "approved")
        assert (await sg.runs.get(run.id)).outcome == "approved"
        assert result.outputs["send"]["note"].startswith("We refunded 40")
        assert [r.id for r in (await sg.runs.list(workflow="refund")).items] == [run.id]


async def _open_checkpoints(sg: AsyncSignoff, run_id: str) -> Any:
    run = await sg.runs.get(run_id)
    return run if run.open_checkpoints else None


async def test_the_sync_client_from_plain_code(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)

    def agent() -> Decision[Note]:
        with Signoff(env.base, token) as sg:
            fields: dict[str, Any] = {"assignee": "role:manager", "proposed": {"message": "Hello!"}}
            cp = sg.checkpoints.create("Sync?", key="s1", response_model=Note, **fields)
            assert sg.checkpoints.get(cp.id).status == "open"
            return sg.ask("Sync?", key="s1", response_model=Note, **fields)

    asking = asyncio.create_task(asyncio.to_thread(agent))
    [cp] = await env.until(lambda: env.container.store.list_checkpoints())
    await env.until(lambda: env.api.waiters.waiting)
    await env.slack.send("interaction", env.slack.click(APPROVE, cp.id, MANAGER))
    decision = await asyncio.wait_for(asking, 30)
    assert decision.data == Note(message="Hello!")


async def test_verify_webhook_accepts_the_servers_webhooks_and_refuses_a_forgery(env: ApiEnv) -> None:
    token, secret = await env.key(ASK)
    async with AsyncSignoff(env.base, token) as sg:
        await sg.checkpoints.create(
            "Hook?", key="h1", assignee="role:manager", callback_url=env.receiver.at("cb")
        )
    [got] = await env.until(lambda: env.receiver.got.get("cb"))
    event = verify_webhook(secret, got.headers, got.body)
    assert event["type"] == "checkpoint.opened"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, got.headers, got.body.replace(b"checkpoint.opened", b"checkpoint.decided"))
    _, other_secret = await env.key(ASK, name="other")
    with pytest.raises(WebhookVerificationError):
        verify_webhook(other_secret, got.headers, got.body)
