"""SIGNOFF_AUTH and the settings that go with it: misconfiguration stops the start with one line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import ConfigError, Settings
from bot.web import refuse_exposure

SLACK = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s" * 32}
OIDC = {
    "SIGNOFF_AUTH": "oidc",
    "SIGNOFF_PUBLIC_URL": "https://signoff.corp.example",
    "SIGNOFF_OIDC_ISSUER": "https://corp.okta.com/",
    "SIGNOFF_OIDC_CLIENT_ID": "cid",
    "SIGNOFF_OIDC_CLIENT_SECRET": "secret",
}


def test_no_login_by_default() -> None:
    assert not Settings.from_env({}).login.enabled


def test_an_oidc_login() -> None:
    login = Settings.from_env(
        {**OIDC, "SIGNOFF_SESSION_IDLE": "30m", "SIGNOFF_AUTH_DOMAINS": "Corp.example"}
    ).login
    assert login.providers == ("oidc",)
    assert login.oidc is not None
    assert login.oidc.discovery_url == "https://corp.okta.com/.well-known/openid-configuration"
    assert login.idle == timedelta(minutes=30)
    assert login.absolute == timedelta(hours=12)
    assert login.domains == ("corp.example",)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIGNOFF_AUTH": "ldap"}, "SIGNOFF_AUTH must list oidc, slack or email"),
        ({**OIDC, "SIGNOFF_PUBLIC_URL": ""}, "SIGNOFF_AUTH needs SIGNOFF_PUBLIC_URL"),
        ({**OIDC, "SIGNOFF_OIDC_CLIENT_SECRET": ""}, "SIGNOFF_AUTH=oidc needs SIGNOFF_OIDC_CLIENT_SECRET"),
        (
            {**OIDC, "SIGNOFF_AUTH": "slack", "SLACK_CLIENT_ID": "1", "SLACK_CLIENT_SECRET": "2"},
            "needs Slack mode",
        ),
        ({**OIDC, "SIGNOFF_AUTH": "email"}, "SIGNOFF_AUTH=email needs SIGNOFF_SMTP_HOST, SIGNOFF_SMTP_FROM"),
        ({**OIDC, "SIGNOFF_SESSION_IDLE": "soon"}, "SIGNOFF_SESSION_IDLE must be a duration"),
        ({**OIDC, "SIGNOFF_SESSION_IDLE": "13h"}, "must not be longer than SIGNOFF_SESSION_MAX"),
        (
            {
                **OIDC,
                "SIGNOFF_AUTH": "email",
                "SIGNOFF_SMTP_HOST": "mx",
                "SIGNOFF_SMTP_FROM": "a@b.c",
                "SIGNOFF_SMTP_PORT": "x",
            },
            "SIGNOFF_SMTP_PORT must be a port number",
        ),
    ],
)
def test_misconfigured_logins_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_sign_in_with_slack_and_email() -> None:
    env = {
        **SLACK,
        **OIDC,
        "SIGNOFF_AUTH": "slack, email",
        "SLACK_CLIENT_ID": "1.2",
        "SLACK_CLIENT_SECRET": "x",
        "SIGNOFF_SMTP_HOST": "mail.corp.example",
        "SIGNOFF_SMTP_FROM": "signoff@corp.example",
        "SIGNOFF_SMTP_STARTTLS": "off",
    }
    login = Settings.from_env(env).login
    assert login.providers == ("slack", "email")
    assert login.slack is not None
    assert login.slack.discovery_url == "https://slack.com/.well-known/openid-configuration"
    assert login.smtp is not None
    assert (login.smtp.port, login.smtp.starttls) == (587, False)


def test_with_a_login_the_console_may_listen_anywhere_and_next_to_slack() -> None:
    settings = Settings.from_env({**OIDC, **SLACK, "SIGNOFF_HOST": "0.0.0.0", "SIGNOFF_WEB_CONSOLE": "on"})  # noqa: S104
    refuse_exposure(settings)  # nothing refused
    without = settings.model_copy(update={"login": Settings().login})
    with pytest.raises(ConfigError, match="SIGNOFF_WEB_CONSOLE=on is refused in Slack mode"):
        refuse_exposure(without)
