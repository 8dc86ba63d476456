"""Slack failures (issue 6 §5): 5xx and timeouts are retried, the outbox gives up only after its
last attempt (with an audit event), unreachable channels and users get a fallback DM and an audit
event, and in every case the checkpoint stays decidable and the run finishes.

429 with Retry-After and expired trigger ids are covered in tests/e2e/test_slack_http.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.blocks.checkpoint import APPROVE
from engine.model import Checkpoint, Delivery, DeliveryStatus, RunStatus
from tests.reliability._cluster import card_posts, has_buttons
from tests.scenario._harness import MANAGER, REQUESTER, SlackEnv, slack_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[SlackEnv]:
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db") as running:
        assert running.container.outbox is not None
        running.container.outbox.base_delay = 0.05  # back-off in tens of milliseconds, same rules
        yield running


async def _start(env: SlackEnv) -> Checkpoint:
    status, _ = await env.send("command", env.command("run refund customer=ACME amount=120"))
    assert status == 200
    cps: list[Checkpoint] = await env.until(lambda: env.container.store.list_checkpoints(open_only=True))
    return cps[0]


async def _cards(env: SlackEnv, cp: Checkpoint) -> list[Delivery]:
    rows = await env.container.store.list_deliveries(checkpoint_id=cp.id)
    return [d for d in rows if d.kind == "checkpoint" and d.target.startswith("user:")]


async def _settled_cards(env: SlackEnv, cp: Checkpoint) -> list[Delivery]:
    rows = await _cards(env, cp)
    return rows if len(rows) == 2 and all(d.status is not DeliveryStatus.pending for d in rows) else []


async def _decide_and_finish(env: SlackEnv, cp: Checkpoint) -> None:
    """The checkpoint is still decidable: one click, one decision, the run succeeds."""
    status, _ = await env.send("interaction", env.click(APPROVE, cp.id, MANAGER))
    assert status == 200
    store = env.container.store

    async def done() -> bool:
        return (await store.get_run(cp.run_id)).status is RunStatus.succeeded

    await env.until(done)
    assert len(await store.list_decisions(checkpoint_id=cp.id)) == 1


async def _audit_kinds(env: SlackEnv, run_id: str) -> list[str]:
    return [e.kind for e in await env.container.store.audit_events(run_id=run_id)]


async def test_5xx_is_retried_until_sent(env: SlackEnv) -> None:
    env.fake.server_error("chat.postMessage", status=503, times=2)
    env.fake.server_error("chat.update", status=500, times=1)
    cp = await _start(env)
    cards = await env.until(lambda: _settled_cards(env, cp))
    assert all(d.status is DeliveryStatus.sent for d in cards)
    assert sum(d.attempts for d in cards) >= 3, "two 5xx answers, then sent"
    await _decide_and_finish(env, cp)

    async def updated() -> bool:
        rows = await env.container.store.list_deliveries(checkpoint_id=cp.id)
        return all(d.status is DeliveryStatus.sent for d in rows if d.kind == "checkpoint_update")

    await env.until(updated)
    assert len(env.fake.calls_to("chat.update")) >= 3, "the update refused with 500 was sent again"


class Proxy:
    """Sits between the bot and FakeSlack; the first call of ``method`` misbehaves as told."""

    def __init__(self, env: SlackEnv, method: str, how: str) -> None:
        self.env, self.method, self.how = env, method, how
        self.hit: list[str] = []
        app = web.Application()
        app.router.add_route("*", "/{method}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if method == self.method and not self.hit:
            self.hit.append(method)
            if self.how == "lost":
                await self.forward(request, method)  # Slack accepts the call ...
                await asyncio.sleep(5)  # ... and its answer never comes back in time
            elif self.how == "hang":
                await asyncio.sleep(5)  # never answers in time, and never reaches Slack
            else:
                return web.Response(status=502, text="502 Bad Gateway", content_type="text/plain")
        return await self.forward(request, method)

    async def forward(self, request: web.Request, method: str) -> web.Response:
        """Pass the call on to FakeSlack and return its answer."""
        headers = {k: v for k, v in request.headers.items() if k.lower() in {"content-type", "authorization"}}
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method,
                self.env.fake.base_url + method,
                params=request.query,
                data=await request.read(),
                headers=headers,
            ) as answer,
        ):
            return web.Response(
                body=await answer.read(), status=answer.status, content_type="application/json"
            )


@pytest.mark.parametrize("how", ["hang", "plain-text 502"])
async def test_a_call_that_times_out_or_gets_a_non_json_5xx_is_retried(env: SlackEnv, how: str) -> None:
    proxy = Proxy(env, "chat.postMessage", how)
    async with proxy.server:
        env.surface.client.base_url = str(proxy.server.make_url("/"))
        env.surface.client.timeout = 1
        cp = await _start(env)
        cards = await env.until(lambda: _settled_cards(env, cp), timeout=15)
        assert proxy.hit == ["chat.postMessage"]
        assert all(d.status is DeliveryStatus.sent for d in cards)
        assert sorted(d.attempts for d in cards) == [1, 2]
        await _decide_and_finish(env, cp)


async def _lost_card_answer(env: SlackEnv) -> tuple[Checkpoint, Proxy]:
    """The first card post reaches Slack but its answer is lost (client timeout); the outbox
    sends the row again."""
    proxy = Proxy(env, "chat.postMessage", "lost")
    await proxy.server.start_server()
    env.surface.client.base_url = str(proxy.server.make_url("/"))
    env.surface.client.timeout = 1
    cp = await _start(env)
    await env.until(lambda: _settled_cards(env, cp), timeout=15)
    return cp, proxy


def _card_posts(env: SlackEnv) -> list[dict[str, Any]]:
    """The checkpoint cards FakeSlack received in chat.postMessage calls."""
    return [
        c.params for c in env.fake.calls_to("chat.postMessage") if "actions:" in str(c.params.get("blocks"))
    ]


async def test_a_card_whose_answer_was_lost_is_found_by_its_metadata_not_posted_again(env: SlackEnv) -> None:
    cp, proxy = await _lost_card_answer(env)
    try:
        cards = await _cards(env, cp)
        assert sorted(d.attempts for d in cards) == [1, 2]
        assert len(_card_posts(env)) == 2, "one card per assignee, none posted twice"
        [lookup] = env.fake.calls_to("conversations.history")
        retried = next(d for d in cards if d.attempts == 2)
        assert lookup.params["channel"] == retried.channel_ref
        assert str(lookup.params["include_all_metadata"]).lower() in {"1", "true"}
        assert float(lookup.params["oldest"]) < retried.created_at.timestamp()
        stored = env.fake.api.messages[(str(retried.channel_ref), str(retried.message_ts))]
        assert stored["metadata"] == {
            "event_type": "signoff_delivery",
            "event_payload": {"delivery_id": retried.id},
        }
        await _decide_and_finish(env, cp)
        await env.until(lambda: _all_cards_final(env))
    finally:
        await proxy.server.close()


async def test_a_history_lookup_slack_refuses_falls_back_to_posting_again(env: SlackEnv) -> None:
    """Without the history scope the message cannot be found: sent again (at least once)."""
    env.fake.fail("conversations.history", error="missing_scope")
    cp, proxy = await _lost_card_answer(env)
    try:
        assert all(d.status is DeliveryStatus.sent for d in await _cards(env, cp))
        assert len(_card_posts(env)) == 3, "the card whose answer was lost is posted again"
        await _decide_and_finish(env, cp)
    finally:
        await proxy.server.close()


async def _all_cards_final(env: SlackEnv) -> bool:
    cards = card_posts(env.fake)
    return len(cards) == 2 and not any(has_buttons(m) for m in cards)


async def test_outbox_gives_up_only_after_its_last_attempt_with_an_audit_event(env: SlackEnv) -> None:
    assert env.container.outbox is not None
    env.container.outbox.max_attempts = 3
    env.fake.fail("chat.postMessage", error="internal_error", times=6)  # both cards, every attempt
    cp = await _start(env)
    cards = await env.until(lambda: _settled_cards(env, cp))
    assert [(d.status, d.attempts, d.error) for d in cards] == [
        (DeliveryStatus.failed, 3, "internal_error")
    ] * 2
    events = await env.container.store.audit_events(run_id=cp.run_id)
    gave_up = [e for e in events if e.kind == "delivery.failed"]
    assert sorted(e.payload["delivery"] for e in gave_up) == sorted(d.id for d in cards)
    assert (await env.container.store.get_checkpoint(cp.id)).status.value == "open"
    await _decide_and_finish(env, cp)


@pytest.mark.parametrize(
    ("method", "error"), [("chat.postMessage", "channel_not_found"), ("conversations.open", "user_not_found")]
)
async def test_unreachable_target_gets_a_fallback_and_an_audit_event(
    env: SlackEnv, method: str, error: str
) -> None:
    env.fake.fail(method, error=error, times=1)
    cp = await _start(env)
    cards = await env.until(lambda: _settled_cards(env, cp))
    failed = [d for d in cards if d.status is DeliveryStatus.failed]
    assert len(failed) == 1, "not retried: the target does not exist"
    assert failed[0].attempts == 1
    assert "slack.undeliverable" in await _audit_kinds(env, cp.run_id)
    dm = env.fake.api.dm_channel(REQUESTER)
    told = await env.until(
        lambda: [
            c
            for c in env.fake.calls_to("chat.postMessage")
            if c.params.get("channel") in {REQUESTER, dm} and "could not deliver" in str(c.params.get("text"))
        ]
    )
    assert error in told[0].params["text"]
    await _decide_and_finish(env, cp)
