"""manifest.yml against what the Bolt app registers: commands, events, interactivity, Home tab, scopes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_bolt.async_app import AsyncApp

from bot.slack import REDIRECT_PATH, SlackSurface
from bot.slack.install import BOT_SCOPES
from tests.scenario._harness import slack_env

MANIFEST = Path(__file__).parents[3] / "manifest.yml"
# Every Web API method the Slack surface calls, and the bot scope it needs (docs/slack-platform.md).
SCOPES_USED = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "conversations.open": "im:write",
    "usergroups.users.list": "usergroups:read",
    "conversations.members": "channels:read",
}
# conversations.history (a re-sent post looks for its earlier copy): one scope per conversation type
HISTORY_SCOPES = {"im:history", "channels:history", "groups:history"}
# Events API: the event type a listener names -> the subscription in the manifest.
SUBSCRIPTION = {"app_home_opened": "app_home_opened", "message": "message.im"}


@pytest.fixture
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return data


@pytest.fixture
async def registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """What ``build_app`` registers, recorded by spying on AsyncApp's decorators."""
    seen: dict[str, list[Any]] = {"command": [], "event": [], "action": [], "view": []}
    for name in seen:
        original = getattr(AsyncApp, name)

        def spy(
            self: AsyncApp, key: Any, *args: Any, _name: str = name, _orig: Any = original, **kw: Any
        ) -> Any:
            seen[_name].append(key)
            return _orig(self, key, *args, **kw)

        monkeypatch.setattr(AsyncApp, name, spy)
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db") as env:
        assert isinstance(env.surface, SlackSurface)
    return seen


def test_slash_commands_match(manifest: dict[str, Any], registered: dict[str, list[Any]]) -> None:
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert commands == registered["command"] == ["/signoff"]


def test_bot_events_match(manifest: dict[str, Any], registered: dict[str, list[Any]]) -> None:
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    # Bolt's token revocation listeners, registered in multi-workspace mode only
    assert {"app_uninstalled", "tokens_revoked"} <= subscribed
    subscribed -= {"app_uninstalled", "tokens_revoked"}
    assert {SUBSCRIPTION[e] for e in registered["event"]} == subscribed
    assert "app_home_opened" in subscribed


def test_interactivity_and_home_tab_are_on(
    manifest: dict[str, Any], registered: dict[str, list[Any]]
) -> None:
    assert registered["action"], "buttons need interactivity"
    assert registered["view"], "modals need interactivity"
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_bot_scopes_cover_what_the_sender_calls(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert set(SCOPES_USED.values()) | {"commands", "users:read"} <= scopes
    assert "im:history" in scopes, "message.im needs im:history"
    assert scopes >= HISTORY_SCOPES, "conversations.history in DMs, public and private channels"
    assert {"channels:read", "groups:read"} <= scopes, "conversations.members, public and private"


def test_urls_point_at_the_events_endpoint(manifest: dict[str, Any]) -> None:
    urls = json.dumps(manifest)
    assert urls.count("/slack/events") == 3
    assert len(manifest["display_information"]["name"]) <= 35


def test_the_install_flow_asks_for_the_manifest_scopes_and_redirects_where_it_listens(
    manifest: dict[str, Any],
) -> None:
    assert set(BOT_SCOPES) == set(manifest["oauth_config"]["scopes"]["bot"])
    assert len(BOT_SCOPES) == len(set(BOT_SCOPES))
    assert manifest["oauth_config"]["redirect_urls"] == [f"https://signoff.example.com{REDIRECT_PATH}"]
