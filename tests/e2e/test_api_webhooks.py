"""Webhooks: signed per the Standard Webhooks spec (checked with its reference library), retried
after a failure, fired by every path that resolves a checkpoint, rotatable, redeliverable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bot.blocks.checkpoint import APPROVE
from engine.commands import Decide
from tests.e2e.api_harness import ApiEnv, Received, api_env, ask_body
from tests.scenario._harness import MANAGER

HOOKS = "webhooks:manage,checkpoints:create,checkpoints:read"


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[ApiEnv]:
    """The process on SQLite, and on PostgreSQL when it is configured."""
    async with api_env(tmp_path, database_url) as running:
        yield running


def verified(secret: str, got: Received) -> dict[str, Any]:
    """The payload, if the reference verifier accepts the signature (raises otherwise)."""
    payload: dict[str, Any] = Webhook(secret).verify(got.body, got.headers)
    return payload


async def _subscribe(env: ApiEnv, token: str, name: str, events: list[str]) -> dict[str, Any]:
    body = {"url": env.receiver.at(name), "events": events, "description": "test"}
    status, endpoint, _ = await env.call("POST", "/api/v1/webhook-endpoints", token, body)
    assert status == 201, endpoint
    assert endpoint["secret"].startswith("whsec_")
    return endpoint


async def test_signed_retried_after_a_500_and_verified(env: ApiEnv) -> None:
    token, callback_secret = await env.key(HOOKS)
    endpoint = await _subscribe(env, token, "sub", ["checkpoint.decided"])
    env.receiver.script["sub"] = [500]
    body = ask_body(key="w1", callback_url=env.receiver.at("cb"))
    _, cp, _ = await env.call("POST", "/api/v1/checkpoints", token, body)
    opened = await env.until(lambda: env.receiver.got.get("cb"))
    assert verified(callback_secret, opened[0])["type"] == "checkpoint.opened"
    await env.slack.send("interaction", env.slack.click(APPROVE, cp["id"], MANAGER))
    got = await env.until(lambda: env.receiver.got.get("sub", [])[1:])
    first, second = env.receiver.got["sub"][:2]
    assert got
    assert first.headers["webhook-id"] == second.headers["webhook-id"], "a retry keeps its webhook-id"
    assert first.body == second.body
    event = verified(endpoint["secret"], second)
    assert event["type"] == "checkpoint.decided"
    decision = event["data"]["decision"]
    assert (decision["outcome"], decision["actor"]["id"], decision["channel"]) == (
        "approved",
        MANAGER,
        "slack",
    )
    assert event["data"]["checkpoint"]["id"] == cp["id"]
    # the checkpoint's own callback got the decision too, signed with the key's secret
    decided = await env.until(lambda: [r for r in env.receiver.got["cb"] if b"checkpoint.decided" in r.body])
    assert verified(callback_secret, decided[0])["data"]["decision"]["outcome"] == "approved"
    # the delivery log shows the retry
    status, log, _ = await env.call("GET", f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries", token)
    assert status == 200
    [row] = log["items"]
    assert (row["status"], row["attempts"], row["id"]) == ("sent", 2, first.headers["webhook-id"])


async def test_a_wrong_signature_or_secret_is_rejected_by_the_verifier(env: ApiEnv) -> None:
    token, secret = await env.key(HOOKS)
    await env.call(
        "POST", "/api/v1/checkpoints", token, ask_body(key="w2", callback_url=env.receiver.at("cb"))
    )
    [got] = await env.until(lambda: env.receiver.got.get("cb"))
    verified(secret, got)
    tampered = Received(got.headers, got.body.replace(b"checkpoint.opened", b"checkpoint.decided"))
    with pytest.raises(WebhookVerificationError):
        verified(secret, tampered)
    _, other = await env.key(HOOKS, name="other")
    with pytest.raises(WebhookVerificationError):
        verified(other, got)
    forged = Received({**got.headers, "webhook-id": "evt_forged"}, got.body)
    with pytest.raises(WebhookVerificationError):
        verified(secret, forged)


async def test_every_completion_path_fires_the_webhook(env: ApiEnv, tmp_path: Path) -> None:
    token, secret = await env.key(HOOKS)
    person, _ = await env.key("checkpoints:decide", as_user=MANAGER, name="mia")

    async def ask(name: str, **changes: Any) -> str:
        body = ask_body(key=name, callback_url=env.receiver.at(name), **changes)
        status, cp, _ = await env.call("POST", "/api/v1/checkpoints", token, body)
        assert status == 201
        cp_id: str = cp["id"]
        return cp_id

    slack = await ask("slack")
    await env.slack.send("interaction", env.slack.click(APPROVE, slack, MANAGER))
    api = await ask("api")
    await env.call("POST", f"/api/v1/checkpoints/{api}/decisions", person, {"action": "reject"})
    cli = await ask("cli")
    await env.container.engine.decide(
        Decide(checkpoint_id=cli, action="approve", actor=MANAGER, channel="cli")
    )
    await ask("timer", timeout="1s")
    cancelled = await ask("cancel")
    await env.call("POST", f"/api/v1/checkpoints/{cancelled}/cancel", token)
    expected = {
        "slack": "checkpoint.decided",
        "api": "checkpoint.decided",
        "cli": "checkpoint.decided",
        "timer": "checkpoint.timed_out",
        "cancel": "checkpoint.cancelled",
    }
    for name, kind in expected.items():

        async def arrived(name: str = name, kind: str = kind) -> list[dict[str, Any]]:
            events = [verified(secret, r) for r in env.receiver.got.get(name, [])]
            return [e for e in events if e["type"] == kind]

        [event] = await env.until(arrived, timeout=20)
        assert event["data"]["decision"] is not None, name

        def ended(name: str = name) -> list[Received]:
            return [r for r in env.receiver.got.get(name, []) if b"run.finished" in r.body]

        finished = await env.until(ended)
        assert verified(secret, finished[0])["data"]["run"]["status"] in {
            "succeeded",
            "rejected",
            "cancelled",
        }


async def test_rotation_signs_with_both_secrets_then_redelivery(env: ApiEnv) -> None:
    token, _ = await env.key(HOOKS)
    endpoint = await _subscribe(env, token, "rot", ["checkpoint.opened"])
    status, rotated, _ = await env.call("POST", f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate", token)
    assert status == 200
    assert rotated["secret"] != endpoint["secret"]
    assert rotated["previous_secret_expires_at"] is not None
    await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="r"))
    [got] = await env.until(lambda: env.receiver.got.get("rot"))
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert verified(endpoint["secret"], got) == verified(rotated["secret"], got)
    status, listing, _ = await env.call("GET", "/api/v1/webhook-endpoints", token)
    assert [e["id"] for e in listing["items"]] == [endpoint["id"]]
    assert "secret" not in listing["items"][0], "a secret is shown only when made"
    webhook_id = got.headers["webhook-id"]
    status, row, _ = await env.call("POST", f"/api/v1/webhook-deliveries/{webhook_id}/redeliver", token)
    assert (status, row["id"], row["status"]) == (202, webhook_id, "pending")
    again = await env.until(lambda: env.receiver.got["rot"][1:])
    assert again[0].headers["webhook-id"] == webhook_id
    other, _ = await env.key(HOOKS, name="other")
    status, problem, _ = await env.call("POST", f"/api/v1/webhook-deliveries/{webhook_id}/redeliver", other)
    assert (status, problem["code"]) == (404, "not_found"), "another key's deliveries are not found"
    status, _, _ = await env.call("DELETE", f"/api/v1/webhook-endpoints/{endpoint['id']}", token)
    assert status == 204
    await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="r2"))
    await asyncio.sleep(0.5)
    assert len(env.receiver.got["rot"]) == 2, "nothing is sent to a deleted endpoint"


async def test_a_failing_receiver_is_marked_failed_after_the_last_retry(tmp_path: Path) -> None:
    async with api_env(tmp_path, f"sqlite:///{tmp_path}/s.db", webhook_delays=(0.1, 0.1)) as env:
        token, _ = await env.key(HOOKS)
        endpoint = await _subscribe(env, token, "down", ["checkpoint.opened"])
        env.receiver.script["down"] = [503, 503, 503, 503]
        await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="f"))

        async def failed() -> list[dict[str, Any]]:
            _, log, _ = await env.call("GET", f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries", token)
            return [r for r in log["items"] if r["status"] == "failed"]

        [row] = await env.until(failed)
        assert row["attempts"] == 3
        assert row["last_error"] == "the receiver answered HTTP 503"
        kinds = [e.kind for e in await env.container.store.audit_events()]
        assert "delivery.failed" in kinds


async def test_a_revoked_keys_endpoints_receive_nothing_more(env: ApiEnv) -> None:
    token, _ = await env.key(HOOKS)
    await _subscribe(env, token, "gone", ["checkpoint.opened"])
    other, _ = await env.key(HOOKS, name="other")
    await _subscribe(env, other, "kept", ["checkpoint.opened"])
    c = env.container
    assert c.clients is not None
    [first, _] = await c.clients.list_api_keys()
    await c.clients.revoke_api_key(first.id, c.clock.now(), [])
    await env.call("POST", "/api/v1/checkpoints", other, ask_body(key="after"))
    await env.until(lambda: env.receiver.got.get("kept"))
    assert "gone" not in env.receiver.got


async def test_a_callback_to_an_address_the_deployment_does_not_allow_is_never_called(env: ApiEnv) -> None:
    """A callback URL is the agent's choice: it goes through the egress policy like an http node."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    hits: list[str] = []

    async def inside(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="internal secrets")

    internal = web.Application()
    internal.router.add_post("/{tail:.*}", inside)
    async with TestServer(internal, host="127.0.0.1") as server:
        token, _ = await env.key(HOOKS)
        body = ask_body(key="ssrf", callback_url=str(server.make_url("/latest/meta-data")))
        status, _, _ = await env.call("POST", "/api/v1/checkpoints", token, body)
        assert status == 201

        async def refused() -> list[Any]:
            rows = await env.container.store.list_deliveries()
            return [d for d in rows if d.kind == "webhook" and d.status.value == "failed"]

        [row] = await env.until(refused)
        assert "refused" in (row.error or "")
        assert "internal secrets" not in (row.error or "")
    assert hits == []
