"""The Web API methods FakeSlack answers, with the contracts our code relies on (private).

Each method takes the merged request params and returns the JSON body Slack would send.
Shapes follow docs.slack.dev method pages (docs/slack-platform.md §1.5, §1.9, §1.14, §1.15).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

_MESSAGE_BLOCKS = 50
_VIEW_BLOCKS = 100
_TEXT = 4000
_VIEW_TITLE = 24
_HISTORY_LIMIT = 999


def _err(error: str, **extra: Any) -> Json:
    return {"ok": False, "error": error, **extra}


def _flag(value: Any) -> bool:
    """A boolean argument as Slack reads it: ``true``/``1`` (form or query) or a JSON ``true``."""
    return value is True or str(value).lower() in {"1", "true"}


def _json_arg(value: Any) -> Any:
    """Form bodies carry ``view``/``blocks`` as JSON strings; JSON bodies carry objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@dataclass
class WebApi:
    """State and answers of the fake Web API.

    ``messages`` holds every message by ``(channel, ts)``; a ts is wall-clock seconds (``wall``)
    with a sequence number as its fraction, so ``oldest``/``latest`` compare as on Slack.
    """

    clock: Callable[[], float]
    trigger_ttl: float
    wall: Callable[[], float] = time.time
    team_id: str = "T0FAKE"
    bot_user_id: str = "U0BOT"
    bot_id: str = "B0BOT"
    app_id: str = "A0FAKE"
    ws_url: str = ""
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    channel_members: dict[str, list[str]] = field(default_factory=dict)
    users: dict[str, Json] = field(default_factory=dict)
    # the bot token's scopes, sent as ``x-oauth-scopes`` on every answer (None: no header)
    scopes: list[str] | None = None
    messages: dict[tuple[str, str], Json] = field(default_factory=dict)
    views: dict[str, Json] = field(default_factory=dict)
    triggers: dict[str, float] = field(default_factory=dict)
    used_triggers: set[str] = field(default_factory=set)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # ------------------------------------------------------------------ ids

    def new_trigger_id(self) -> str:
        """A single-use trigger id in Slack's ``digits.digits.hex`` shape, valid for ``trigger_ttl``."""
        n = next(self._seq)
        trigger = f"{1000000 + n}.{2000000 + n}.{hashlib.sha256(str(n).encode()).hexdigest()[:32]}"
        self.triggers[trigger] = self.clock()
        return trigger

    def _ts(self) -> str:
        n = next(self._seq)
        return f"{int(self.wall())}.{n:06d}"

    def dm_channel(self, user: str) -> str:
        """The stable DM channel id of a user, as conversations.open returns it."""
        return "D" + hashlib.sha256(user.encode()).hexdigest()[:10].upper()

    # ------------------------------------------------------------------ methods

    def headers(self) -> dict[str, str]:
        """Headers Slack adds to every Web API answer for a token: its granted scopes."""
        return {} if self.scopes is None else {"x-oauth-scopes": ",".join(self.scopes)}

    def answer(self, method: str, p: Json) -> Json | None:
        """The answer of ``method``, or None when the method is not modelled."""
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        return None if handler is None else handler(p)

    def m_auth_test(self, p: Json) -> Json:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake",
            "user": "signoff",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _channel(self, p: Json) -> str | None:
        channel = str(p.get("channel") or "")
        if not channel or channel.startswith("#bad") or channel == "C_NOT_FOUND":
            return None
        # Posting to a user id lands in the bot DM with that user (App Home Messages tab).
        return self.dm_channel(channel) if channel[0] in "UW" else channel

    def _message(self, p: Json, ts: str, before: Json | None = None) -> Json:
        message: Json = {
            "type": "message",
            "text": p.get("text", ""),
            "blocks": _json_arg(p.get("blocks")) or [],
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "ts": ts,
            "team": self.team_id,
        }
        # chat.update keeps the thread and the metadata unless it is given new metadata
        for key in ("thread_ts", "subtype"):
            if before and key in before:
                message[key] = before[key]
        if p.get("thread_ts") and p["thread_ts"] != ts:
            message["thread_ts"] = str(p["thread_ts"])
            if _flag(p.get("reply_broadcast")):
                message["subtype"] = "thread_broadcast"
        metadata = _json_arg(p.get("metadata"))
        if isinstance(metadata, dict) and metadata.get("event_type"):
            message["metadata"] = {
                "event_type": str(metadata["event_type"]),
                "event_payload": dict(metadata.get("event_payload") or {}),
            }
        elif before and "metadata" in before:
            message["metadata"] = before["metadata"]
        return message

    def _blocks_error(self, p: Json) -> Json | None:
        blocks = _json_arg(p.get("blocks"))
        if isinstance(blocks, list) and len(blocks) > _MESSAGE_BLOCKS:
            return _err("invalid_blocks", errors=[f"must provide at most {_MESSAGE_BLOCKS} items"])
        if not p.get("text") and not blocks and not p.get("attachments"):
            return _err("no_text")
        return None

    def m_chat_postMessage(self, p: Json) -> Json:
        channel = self._channel(p)
        if channel is None:
            return _err("channel_not_found")
        if error := self._blocks_error(p):
            return error
        ts = self._ts()
        message = self._message(p, ts)
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def m_chat_update(self, p: Json) -> Json:
        channel, ts = str(p.get("channel") or ""), str(p.get("ts") or "")
        if (channel, ts) not in self.messages:
            return _err("message_not_found" if channel and channel[0] not in "UW" else "channel_not_found")
        if len(str(p.get("text") or "")) > _TEXT:
            return _err("msg_too_long")
        if error := self._blocks_error(p):
            return error
        message = self._message(p, ts, self.messages[(channel, ts)])
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"], "message": message}

    def m_conversations_history(self, p: Json) -> Json:
        """Top-level messages and thread broadcasts, newest first; ``oldest``/``latest`` exclusive
        unless ``inclusive``; ``metadata`` only with ``include_all_metadata``; cursor paging."""
        channel = str(p.get("channel") or "")
        if not channel or channel[0] not in "CDG" or channel == "C_NOT_FOUND":
            return _err("channel_not_found")
        try:
            oldest = float(p.get("oldest") or 0)
            latest = float(p["latest"]) if p.get("latest") else float("inf")
            limit = int(p.get("limit") or 100)
            offset = int(base64.b64decode(str(p["cursor"])).decode()) if p.get("cursor") else 0
        except ValueError:
            return _err("invalid_arguments")
        if limit < 1 or limit > _HISTORY_LIMIT:
            limit = 100
        inclusive = _flag(p.get("inclusive"))

        def within(ts: float) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        found = sorted(
            (
                m
                for (c, ts), m in self.messages.items()
                if c == channel
                and within(float(ts))
                and (m.get("thread_ts") in (None, ts) or m.get("subtype") == "thread_broadcast")
            ),
            key=lambda m: float(m["ts"]),
            reverse=True,
        )
        page = found[offset : offset + limit]
        with_metadata = _flag(p.get("include_all_metadata"))
        messages = [m if with_metadata else {k: v for k, v in m.items() if k != "metadata"} for m in page]
        more = offset + limit < len(found)
        cursor = base64.b64encode(str(offset + limit).encode()).decode() if more else ""
        return {
            "ok": True,
            "messages": messages,
            "has_more": more,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }

    def m_chat_postEphemeral(self, p: Json) -> Json:
        if self._channel(p) is None:
            return _err("channel_not_found")
        if not p.get("user"):
            return _err("user_not_in_channel")
        return {"ok": True, "message_ts": self._ts()}

    def m_conversations_open(self, p: Json) -> Json:
        raw = p.get("users") or ""
        users = [u for u in (raw if isinstance(raw, list) else str(raw).split(",")) if u]
        if not users:
            return _err("users_list_not_supplied")
        if len(users) > 1:
            return {"ok": True, "channel": {"id": "G" + self.dm_channel(",".join(sorted(users)))[1:]}}
        return {"ok": True, "channel": {"id": self.dm_channel(users[0])}}

    def _take_trigger(self, p: Json) -> Json | None:
        trigger = str(p.get("trigger_id") or "")
        if trigger in self.used_triggers:
            return _err("exchanged_trigger_id")
        issued = self.triggers.pop(trigger, None)
        if issued is None:
            return _err("invalid_trigger_id")
        self.used_triggers.add(trigger)
        if self.clock() - issued > self.trigger_ttl:
            return _err("expired_trigger_id")
        return None

    def _store_view(self, p: Json, view_id: str | None = None) -> Json:
        view = _json_arg(p.get("view"))
        if not isinstance(view, dict):
            return _err("invalid_arguments", response_metadata={"messages": ["[ERROR] missing view"]})
        title = (view.get("title") or {}).get("text", "")
        if len(view.get("blocks") or []) > _VIEW_BLOCKS or len(title) > _VIEW_TITLE:
            return _err("invalid_arguments", response_metadata={"messages": ["[ERROR] view limits"]})
        n = next(self._seq)
        stored = {**view, "id": view_id or f"V{n:08d}", "hash": f"{n}.fake", "team_id": self.team_id}
        stored.setdefault("state", {"values": {}})
        self.views[stored["id"]] = stored
        return {"ok": True, "view": stored}

    def m_views_open(self, p: Json) -> Json:
        return self._take_trigger(p) or self._store_view(p)

    def m_views_push(self, p: Json) -> Json:
        return self._take_trigger(p) or self._store_view(p)

    def m_views_update(self, p: Json) -> Json:
        view_id = p.get("view_id")
        if not view_id and p.get("external_id"):
            ext = p["external_id"]
            view_id = next((k for k, v in self.views.items() if v.get("external_id") == ext), None)
        if not view_id or view_id not in self.views:
            return _err("not_found")
        if p.get("hash") and p["hash"] != self.views[view_id]["hash"]:
            return _err("hash_conflict")
        return self._store_view(p, str(view_id))

    def m_views_publish(self, p: Json) -> Json:
        if not p.get("user_id"):
            return _err("invalid_arguments")
        return self._store_view(p, f"VH{p['user_id']}")

    def m_usergroups_users_list(self, p: Json) -> Json:
        group = str(p.get("usergroup") or "")
        if group not in self.usergroups:
            return _err("no_such_subteam")
        return {"ok": True, "users": list(self.usergroups[group])}

    def m_conversations_members(self, p: Json) -> Json:
        """Members of a channel, ``limit`` at a time, with Slack's cursor paging."""
        channel = str(p.get("channel") or "")
        if channel not in self.channel_members:
            return _err("channel_not_found")
        members = list(self.channel_members[channel])
        limit = int(p.get("limit") or 100)
        start = int(str(p.get("cursor") or "0") or 0)
        page = members[start : start + limit]
        following = str(start + limit) if start + limit < len(members) else ""
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": following}}

    def _user(self, user_id: str) -> Json | None:
        if user_id in self.users:
            return {"id": user_id, **self.users[user_id]}
        if user_id[:1] not in ("U", "W"):
            return None
        name = user_id.lower()
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": name.title(),
            "tz": "UTC",
            "tz_offset": 0,
            "is_bot": False,
            "deleted": False,
            "profile": {"display_name": name, "real_name": name.title(), "email": f"{name}@example.com"},
        }

    def m_users_info(self, p: Json) -> Json:
        user = self._user(str(p.get("user") or ""))
        return {"ok": True, "user": user} if user else _err("user_not_found")

    def m_users_lookupByEmail(self, p: Json) -> Json:
        email = str(p.get("email") or "")
        for user_id in self.users:
            user = self._user(user_id)
            if user and user.get("profile", {}).get("email") == email:
                return {"ok": True, "user": user}
        return _err("users_not_found")

    def m_apps_connections_open(self, p: Json) -> Json:
        return {"ok": True, "url": self.ws_url}
