"""Multi-workspace settings, tokens encrypted at rest, and the signed OAuth state."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import Fernet

from bot._doctor_checks import check_slack
from bot.config import ConfigError, Settings
from bot.doctor import variables
from bot.slack.install import SignedStates, TokenCipher

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APP = {
    "SLACK_SIGNING_SECRET": SECRET,
    "SLACK_CLIENT_ID": "111.222",
    "SLACK_CLIENT_SECRET": "shh",
    "SIGNOFF_SLACK_TEAMS": "T0ACME001, E0GRID001",
}


def test_client_credentials_without_a_bot_token_mean_many_workspaces() -> None:
    key = Fernet.generate_key().decode()
    settings = Settings.from_env({**APP, "SIGNOFF_TOKEN_KEY": key})
    assert settings.slack_multi
    assert settings.slack_enabled
    assert settings.token_key is not None
    assert settings.token_key.get_secret_value() == key


def test_a_bot_token_means_one_workspace_and_the_client_serves_the_sign_in_only() -> None:
    env = {
        **APP,
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SIGNOFF_AUTH": "slack",
        "SIGNOFF_PUBLIC_URL": "https://s.example",
    }
    settings = Settings.from_env(env)
    assert not settings.slack_multi
    assert settings.slack_enabled
    assert settings.login.slack is not None, "Sign in with Slack keeps working"
    assert settings.token_key is None


def test_many_workspaces_name_the_workspaces_that_may_install() -> None:
    key = Fernet.generate_key().decode()
    settings = Settings.from_env({**APP, "SIGNOFF_TOKEN_KEY": key})
    assert settings.slack_teams == frozenset({"T0ACME001", "E0GRID001"})
    unlisted = {k: v for k, v in APP.items() if k != "SIGNOFF_SLACK_TEAMS"}
    with pytest.raises(ConfigError, match="needs SIGNOFF_SLACK_TEAMS"):
        Settings.from_env({**unlisted, "SIGNOFF_TOKEN_KEY": key})
    with pytest.raises(ConfigError, match=r"acme\.slack\.com is not a Slack workspace id"):
        Settings.from_env({**APP, "SIGNOFF_TOKEN_KEY": key, "SIGNOFF_SLACK_TEAMS": "acme.slack.com"})


def test_many_workspaces_need_the_token_key() -> None:
    with pytest.raises(ConfigError, match="set SIGNOFF_TOKEN_KEY"):
        Settings.from_env(APP)


@pytest.mark.parametrize("bad", ["short", "not-base64!" * 4])
def test_a_token_key_that_is_not_a_fernet_key_is_named(bad: str) -> None:
    good = Fernet.generate_key().decode()
    with pytest.raises(ConfigError, match="SIGNOFF_TOKEN_KEY: key 2 is not a Fernet key"):
        Settings.from_env({**APP, "SIGNOFF_TOKEN_KEY": f"{good},{bad}"})


def test_a_signing_secret_alone_says_what_else_to_set() -> None:
    with pytest.raises(ConfigError, match="SLACK_CLIENT_ID and SLACK_CLIENT_SECRET"):
        Settings.from_env({"SLACK_SIGNING_SECRET": SECRET})


def test_tokens_are_sealed_and_a_replaced_key_still_opens_old_ones() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = TokenCipher(old).seal("xoxb-secret-token")
    assert sealed is not None
    assert "xoxb" not in sealed
    assert TokenCipher(f"{new},{old}").open(sealed, "T1") == "xoxb-secret-token"
    assert TokenCipher(old).seal(None) is None
    with pytest.raises(ConfigError, match="does not open the stored tokens of Slack workspace T1"):
        TokenCipher(new).open(sealed, "T1")


async def test_the_oauth_state_is_signed_and_expires() -> None:
    key = Fernet.generate_key().decode()
    states = SignedStates(key, ttl_s=600)
    state = await states.async_issue()
    assert await states.async_consume(state)
    assert await SignedStates(f"{key},{Fernet.generate_key().decode()}").async_consume(state), "any replica"
    assert not await SignedStates(Fernet.generate_key().decode()).async_consume(state), "another key"
    issued, nonce, signature = state.split(".")
    assert not await states.async_consume(f"{int(issued) + 1}.{nonce}.{signature}"), "tampered"
    old = f"{int(time.time()) - 601}.{nonce}"
    assert not await states.async_consume(f"{old}.{states._sign(old)}"), "expired"
    assert not await states.async_consume("garbage")


async def test_doctor_names_the_install_page_with_many_workspaces() -> None:
    key = Fernet.generate_key().decode()
    settings = Settings.from_env({**APP, "SIGNOFF_TOKEN_KEY": key, "SIGNOFF_PUBLIC_URL": "https://s.example"})
    [found] = await check_slack(settings, None)
    assert "https://s.example/slack/install" in found.detail
    names = [v.name for v in variables()]
    assert "SIGNOFF_TOKEN_KEY" in names
    assert names.count("SLACK_CLIENT_ID") == names.count("SLACK_CLIENT_SECRET") == 1
