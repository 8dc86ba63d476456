"""``SlackSender``: sends outbox rows to Slack and reports what happened to the outbox.

Slack errors never leave this module: a 429 becomes a retryable result with its
``Retry-After``, 5xx and network errors are retryable, and a channel or user that does not
exist gets a fallback (a DM to the requester) plus an audit event.

Every post names its outbox row in the message metadata. A row sent again (a previous attempt
may have reached Slack before the process recorded it) first looks for that message with
``conversations.history`` and keeps it rather than posting a second copy.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.blocks._kit import ident, principal
from bot.blocks.checkpoint import question_message
from bot.blocks.modals import again_modal
from bot.blocks.notices import notice_message
from bot.slack._errors import slack_error
from bot.slack._escalation import escalation_note, reminder_text
from bot.slack._post import Poster
from bot.slack.cards import current_card
from bot.slack.deps import HOME, REPLY, SlackDeps
from bot.slack.inbox import affected_users, home_for
from bot.slack.install import TEAM
from engine.errors import NotFound
from engine.model import Delivery
from engine.outbox import same_message
from engine.policy import expand_principals
from engine.ports import SendResult
from engine.roles import parse_principal

__all__ = ["SlackSender"]

log = logging.getLogger("signoff.slack.sender")

_RETRYABLE = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
_UNREACHABLE = {"channel_not_found", "user_not_found", "users_not_found", "is_archived", "not_in_channel"}
_Handler = Callable[[Delivery, list[Delivery]], Awaitable[SendResult]]
# how far before a row's creation its message may be stamped (clock skew between us and Slack)
_LOOKBACK_S = 60.0
# the poster of the row being sent: its workspace's token (one per concurrent send)
_POSTER: ContextVar[Poster] = ContextVar("signoff_slack_poster")


class SlackSender:
    """Implements ``engine.ports.Sender`` over the Slack Web API.

    Kinds: ``checkpoint`` (post a card to a user's DM or a channel; user groups and roles
    fan out to one row per person), ``checkpoint_update`` (``chat.update`` every posted copy),
    ``checkpoint_question`` (the verifier's question, in the thread of the person's copy or by
    DM), ``requester_notice`` (thread reply or DM), ``notify``, ``slack.reply`` and ``slack.home``.
    """

    def __init__(self, deps: SlackDeps) -> None:
        self.deps = deps
        self._single = Poster(deps.client)
        self._handlers: dict[str, _Handler] = {
            "checkpoint": self._checkpoint,
            "checkpoint_update": self._update,
            "checkpoint_question": self._question,
            "requester_notice": self._notice,
            "notify": self._notify,
            "reminder": self._reminder,
            REPLY: self._reply,
            HOME: self._home,
        }

    @property
    def post(self) -> Poster:
        """Posts with the token of the row's workspace (the one bot token in single-workspace mode)."""
        return _POSTER.get(self._single)

    async def _team(self, delivery: Delivery) -> str | None:
        """The workspace a row belongs to: its own, its checkpoint's, or its run's."""
        if not self.deps.multi:
            return None
        store = self.deps.container.store
        team = delivery.payload.get("team")
        if not team and delivery.checkpoint_id:
            team = (await store.get_checkpoint(delivery.checkpoint_id)).team
        if not team and delivery.run_id:
            team = (await store.get_run(delivery.run_id)).team
        return str(team) if team else None

    async def send(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        """Send one row, with its workspace's token; ``related`` are the other rows of the same
        checkpoint."""
        if not self.deps.multi:
            return await self._send(delivery, related)
        try:
            team = TEAM.set(await self._team(delivery))
        except NotFound as exc:
            return SendResult(ok=False, error=str(exc))
        try:
            return await self._send(delivery, related, workspace=True)
        finally:
            TEAM.reset(team)

    async def _send(
        self, delivery: Delivery, related: list[Delivery], *, workspace: bool = False
    ) -> SendResult:
        handler = self._handlers.get(delivery.kind)
        if handler is None:
            return SendResult(ok=False, error=f"no Slack sender for {delivery.kind!r}")
        poster = None
        try:
            if workspace:
                poster = _POSTER.set(Poster(await self.deps.web()))
            return await handler(delivery, related)
        except SlackApiError as exc:
            return await self._failed(delivery, exc)
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            return SendResult(ok=False, retryable=True, error=f"{type(exc).__name__}: {exc}")
        except NotFound as exc:
            return SendResult(ok=False, error=str(exc))
        except ValueError as exc:
            # a target that is not a Slack principal (a CLI user such as "alice" or "<!channel>"):
            # this row can never be sent, and must not stop the rows after it
            log.warning("delivery %s cannot be sent to Slack: %s", delivery.id, exc)
            return SendResult(ok=False, error=str(exc))
        finally:
            if poster is not None:
                _POSTER.reset(poster)

    # ------------------------------------------------------------------ kinds

    async def _checkpoint(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        kind, name = parse_principal(delivery.target)
        if kind in {"group", "role"}:
            return await self._fan_out(delivery, related)
        cp = await self.deps.container.store.get_checkpoint(str(delivery.checkpoint_id))
        card = await current_card(self.deps.container, cp, watcher=delivery.payload.get("role") == "watcher")
        note = escalation_note(delivery.payload)
        if note is not None:
            block = {
                "type": "section",
                "block_id": f"escalation:{delivery.id}",
                "text": {"type": "mrkdwn", "text": note},
            }
            card = {
                **card,
                "text": f"{note}\n{card['text']}",
                "blocks": [block, *card.get("blocks", [])][:50],
            }
        channel, ts = await self._message(delivery, kind, name, card, refresh=True)
        if kind == "user":
            await self.deps.publish_home([name])
        return SendResult(ok=True, channel_ref=channel, message_ts=ts)

    async def _fan_out(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        """One row per person behind a group or role, so each copy keeps its own channel and ts."""
        c = self.deps.container
        users, _ = await expand_principals([delivery.target], c.roles, self.deps.directory)
        have = {d.target for d in related if same_message(delivery, d)}
        now = c.clock.now()
        # new rows, due now: not the claimed row's attempt count and claim time
        rows = [
            delivery.model_copy(
                update={
                    "id": c.ids.new("dlv_"),
                    "target": f"user:{u}",
                    "created_at": now,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "error": None,
                }
            )
            for u in sorted(users)
            if f"user:{u}" not in have
        ]
        if rows:
            await self.deps.queue(rows)
        return SendResult(ok=True, channel_ref=f"fanout:{len(rows)}")

    async def _update(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        c = self.deps.container
        cp = await c.store.get_checkpoint(str(delivery.checkpoint_id))
        flagged = next(
            (
                str(d.payload["flagged"])
                for d in [delivery, *related]
                if d.kind == "checkpoint_update" and d.payload.get("flagged")
            ),
            None,
        )
        cards: dict[bool, dict[str, Any]] = {}
        retry: SlackApiError | None = None
        for copy in related:
            if copy.kind != "checkpoint" or not copy.channel_ref or not copy.message_ts:
                continue
            if copy.channel_ref.startswith("fanout:"):
                continue
            watcher = copy.payload.get("role") == "watcher"
            if watcher not in cards:
                cards[watcher] = await current_card(c, cp, watcher=watcher, flagged=flagged)
            try:
                await self.post.update(copy.channel_ref, copy.message_ts, cards[watcher])
            except SlackApiError as exc:
                # one unreachable copy must not leave the others showing live buttons
                if (await self._failed(delivery, exc)).retryable:
                    retry = retry or exc
                else:
                    log.warning("copy %s of %s cannot be updated: %s", copy.id, cp.id, slack_error(exc))
        await self.deps.publish_home(await affected_users(c, self.deps.directory, cp))
        if retry is not None:
            raise retry  # the outbox retries; copies already updated get the same card again
        return SendResult(ok=True)

    async def _notice(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        origin = delivery.payload.get("origin") or {}
        # the engine's sentence carries data (titles, names, reasons, comments): plain text
        detail = delivery.payload.get("detail")
        retry = delivery.run_id if delivery.payload.get("retry") else None
        message = notice_message(
            str(delivery.payload.get("text", "")), str(detail) if detail else None, retry_run=retry
        )
        thread = origin.get("thread_ts")
        channel = origin.get("slack_channel")
        if thread and channel:
            got_channel, ts = await self.post.thread(
                str(channel), str(thread), message["text"], blocks=message["blocks"], delivery_id=delivery.id
            )
        else:
            kind, name = parse_principal(delivery.target)
            got_channel, ts = await self._message(delivery, kind, name, message)
        if delivery.target.startswith("user:"):
            await self.deps.publish_home([delivery.target.removeprefix("user:")])
        return SendResult(ok=True, channel_ref=got_channel, message_ts=ts)

    async def _reminder(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        """Remind one person, in the thread of the message they got (or by DM)."""
        kind, name = parse_principal(delivery.target)
        if kind in {"group", "role"}:
            return await self._fan_out(delivery, related)
        cp = await self.deps.container.store.get_checkpoint(str(delivery.checkpoint_id))
        text = reminder_text(cp.title or cp.node_id, delivery.payload.get("left_s"))
        copy = next(
            (
                d
                for d in related
                if d.kind == "checkpoint" and d.target == delivery.target and d.channel_ref and d.message_ts
            ),
            None,
        )
        if copy is not None and copy.channel_ref and copy.message_ts:
            channel, ts = await self.post.thread(
                copy.channel_ref, copy.message_ts, text, broadcast=True, delivery_id=delivery.id
            )
        else:
            channel, ts = await self._message(delivery, kind, name, {"text": text})
        return SendResult(ok=True, channel_ref=channel, message_ts=ts)

    async def _question(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        """The verifier's question, in the thread of the person's copy of the request (or by DM)."""
        user = delivery.target.removeprefix("user:")
        cp = await self.deps.container.store.get_checkpoint(str(delivery.checkpoint_id))
        p = delivery.payload
        action = str(p.get("action", ""))
        reopen = f"{cp.id}|{delivery.id}" if again_modal(cp, p) is not None else None
        message = question_message(cp, str(p.get("question", "")), action=action, reopen=reopen)
        copy = _copy_of(related, delivery.target)
        if copy is not None and copy.channel_ref and copy.message_ts:
            channel, ts = await self.post.thread(
                copy.channel_ref,
                copy.message_ts,
                message["text"],
                blocks=message["blocks"],
                delivery_id=delivery.id,
            )
        else:
            channel, ts = await self._message(delivery, "user", user, message)
        return SendResult(ok=True, channel_ref=channel, message_ts=ts)

    async def _notify(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        kind, name = parse_principal(delivery.target)
        if kind in {"group", "role"}:
            return await self._fan_out(delivery, [])
        # the author's markup, with every interpolated value made inert when the node rendered it
        channel, ts = await self._message(
            delivery, kind, name, {"text": str(delivery.payload.get("text", ""))}
        )
        return SendResult(ok=True, channel_ref=channel, message_ts=ts)

    async def _reply(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        user = delivery.target.removeprefix("user:")
        p = delivery.payload
        message = {"text": str(p.get("text", "")), **({"blocks": p["blocks"]} if p.get("blocks") else {})}
        url = p.get("response_url")
        if url and self._trusted(str(url)):
            response = await AsyncWebhookClient(str(url)).send_dict({"response_type": "ephemeral", **message})
            if response.status_code < 300:
                return SendResult(ok=True)
            if response.status_code >= 500:
                return SendResult(ok=False, retryable=True, error=f"response_url {response.status_code}")
        if p.get("channel"):
            try:
                await self.post.ephemeral(str(p["channel"]), user, message)
                return SendResult(ok=True)
            except SlackApiError as exc:
                if slack_error(exc) not in _UNREACHABLE | {"user_not_in_channel"}:
                    raise
        channel, ts = await self._message(delivery, "user", user, message)
        return SendResult(ok=True, channel_ref=channel, message_ts=ts)

    async def _home(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        user = delivery.target.removeprefix("user:")
        page = int(delivery.payload.get("page") or 0)
        view = await home_for(self.deps.container, self.deps.directory, user, page)
        await (await self.deps.web()).views_publish(user_id=user, view=view)
        return SendResult(ok=True)

    # ------------------------------------------------------------------ posting once

    async def _message(
        self, delivery: Delivery, kind: str, name: str, message: dict[str, Any], *, refresh: bool = False
    ) -> tuple[str, str]:
        """Post ``message`` for ``delivery`` to a user's DM or a channel; returns ``(channel, ts)``.

        The row was claimed for this attempt, so ``attempts`` > 1 means an earlier attempt may
        have posted it before the process recorded the ts (a crash, a timeout): that message is
        looked up by the row id in its metadata and kept (updated to ``message`` with
        ``refresh``) instead of posting a copy that nothing would ever update.
        """
        if delivery.attempts > 1:
            channel = await self.post.channel(kind, name)
            ts = await self._earlier_copy(channel, delivery)
            if ts is not None:
                log.info(
                    "delivery %s was already posted (%s %s); keeping that message", delivery.id, channel, ts
                )
                if refresh:
                    await self.post.update(channel, ts, message, delivery_id=delivery.id)
                return channel, ts
        return await self.post.message(kind, name, message, delivery_id=delivery.id)

    async def _earlier_copy(self, channel: str, delivery: Delivery) -> str | None:
        """The ts of the message an earlier attempt of ``delivery`` left in ``channel``, if any.

        A 429 or 5xx is raised (the row is retried later); any other refusal (a missing history
        scope, a channel the bot cannot read) is logged and the message is posted.
        """
        created = delivery.created_at
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        try:
            return await self.post.find(channel, delivery.id, created.timestamp() - _LOOKBACK_S)
        except SlackApiError as exc:
            error = slack_error(exc)
            if exc.response.status_code == 429 or exc.response.status_code >= 500 or error in _RETRYABLE:
                raise
            log.warning(
                "could not look for an earlier post of delivery %s in %s: %s", delivery.id, channel, error
            )
            return None

    # ------------------------------------------------------------------ failures

    def _trusted(self, url: str) -> bool:
        """response_urls come from signed payloads; still only post them to Slack (or its test double)."""
        base = str(self.deps.client.base_url)
        origin = "/".join(base.split("/")[:3])
        return url.startswith(("https://hooks.slack.com/", origin + "/"))

    async def _failed(self, delivery: Delivery, exc: SlackApiError) -> SendResult:
        status = exc.response.status_code
        error = slack_error(exc)
        # the Web API method that refused (``chat.postMessage``), for the send-failure metric
        method = str(exc.response.api_url).rstrip("/").rsplit("/", 1)[-1] or None
        if status == 429:
            return SendResult(
                ok=False, retryable=True, retry_after=_retry_after(exc), error=error, method=method
            )
        if status >= 500 or error in _RETRYABLE:
            return SendResult(ok=False, retryable=True, error=error, method=method)
        if error in _UNREACHABLE:
            await self._undeliverable(delivery, error)
        return SendResult(ok=False, error=error, method=method)

    async def _undeliverable(self, delivery: Delivery, error: str) -> None:
        """DM the requester that a message could not be delivered, with an audit event."""
        c = self.deps.container
        requester = ""
        if delivery.run_id:
            try:
                requester = (await c.store.get_run(delivery.run_id)).requester
            except NotFound:
                requester = ""
        audit = self.deps.audit(
            "slack.undeliverable",
            "engine",
            {"delivery": delivery.id, "kind": delivery.kind, "target": delivery.target, "error": error},
            run_id=delivery.run_id,
            checkpoint_id=delivery.checkpoint_id,
        )
        rows = []
        fallback = delivery.kind in {REPLY, HOME} or delivery.target == f"user:{requester}"
        if requester and not fallback:
            target, run = principal(delivery.target), ident(delivery.run_id or "")
            text = f"I could not deliver a message to {target} (`{ident(error)}`); run `{run}`."
            rows = [self.deps.row(REPLY, requester, {"text": text, "fallback": True}, delivery.run_id)]
        await self.deps.queue(rows, [audit])


def _copy_of(related: list[Delivery], target: str) -> Delivery | None:
    """The posted checkpoint message that ``target`` got, if any."""
    return next(
        (
            d
            for d in related
            if d.kind == "checkpoint" and d.target == target and d.channel_ref and d.message_ts
        ),
        None,
    )


def _retry_after(exc: SlackApiError) -> float:
    headers = {str(k).lower(): v for k, v in (exc.response.headers or {}).items()}
    raw = headers.get("retry-after")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        return max(float(raw), 0.0) if raw is not None else 1.0
    except (TypeError, ValueError):
        return 1.0
