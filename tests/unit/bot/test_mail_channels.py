"""The email channel's configuration: SMTP alone turns it on, who is reached where
(``prefers``, the node's ``channels``, the principal), and the roles file's ``people:``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import bot.mail
from bot.config import ConfigError, Settings
from bot.mail import Reach, choose
from engine.errors import InvalidWorkflow
from engine.loader import load_workflow_text
from engine.model import HumanConfig
from engine.roles import load_preferences, load_roles

SMTP = {"SIGNOFF_SMTP_HOST": "smtp.corp.example", "SIGNOFF_SMTP_FROM": "signoff@corp.example"}


def test_smtp_alone_turns_on_the_email_channel_without_a_login() -> None:
    login = Settings.from_env(
        {**SMTP, "SIGNOFF_PUBLIC_URL": "https://signoff.corp.example", "SIGNOFF_DECISION_LINK_TTL": "8h"}
    ).login
    assert not login.enabled
    assert login.smtp is not None
    assert login.smtp.host == "smtp.corp.example"
    assert login.decision_link_ttl == timedelta(hours=8)
    assert login.decision_code == "high"


def test_the_public_api_is_pinned() -> None:
    assert sorted(bot.mail.__all__) == [
        "ChannelSender",
        "DECIDED",
        "DecisionLinks",
        "LinkClaim",
        "Mail",
        "MailDeps",
        "MailFailed",
        "MailRefused",
        "Minted",
        "Reach",
        "Used",
        "checkpoint_mail",
        "choose",
        "decided_mail",
        "deliver",
        "install",
        "links_for",
        "needs_code",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (SMTP, "SIGNOFF_SMTP_HOST needs SIGNOFF_PUBLIC_URL"),
        ({"SIGNOFF_SMTP_HOST": "smtp.corp.example"}, "SIGNOFF_SMTP_FROM is not"),
        (
            {**SMTP, "SIGNOFF_PUBLIC_URL": "https://s.example", "SIGNOFF_DECISION_LINK_TTL": "soon"},
            "SIGNOFF_DECISION_LINK_TTL must be a duration",
        ),
        (
            {**SMTP, "SIGNOFF_PUBLIC_URL": "https://s.example", "SIGNOFF_DECISION_CODE": "always"},
            "SIGNOFF_DECISION_CODE must be off, high or urgent",
        ),
    ],
)
def test_an_incomplete_smtp_setting_names_what_is_missing(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


SLACK_AND_MAIL = Reach(slack="user:U1", email="ann@corp.example")


@pytest.mark.parametrize(
    ("named_by", "reach", "allowed", "order", "forced"),
    [
        ("user", SLACK_AND_MAIL, [], ["slack", "email"], False),
        ("email", SLACK_AND_MAIL, [], ["email", "slack"], False),
        ("user", Reach(slack="user:U1", email="a@x.example", prefers="email"), [], ["email", "slack"], False),
        (
            "email",
            Reach(slack="user:U1", email="a@x.example", prefers="slack"),
            [],
            ["slack", "email"],
            False,
        ),
        ("user", SLACK_AND_MAIL, ["email"], ["email"], False),
        ("email", SLACK_AND_MAIL, ["slack"], ["slack"], False),
        # an email-only person is reached by email only
        ("email", Reach(slack=None, email="ann@corp.example"), [], ["email"], False),
        # a node that allows only Slack cannot reach them: the channel that can, and it says so
        ("email", Reach(slack=None, email="ann@corp.example"), ["slack"], ["email"], True),
        ("user", Reach(slack=None, email=None), [], [], False),
    ],
)
def test_who_is_reached_where(
    named_by: str, reach: Reach, allowed: list[str], order: list[str], forced: bool
) -> None:
    assert choose(named_by, reach, allowed) == (order, forced)


def test_the_roles_file_says_how_people_prefer_to_be_reached(tmp_path: Path) -> None:
    path = tmp_path / "roles.yml"
    path.write_text(
        "finance:\n  members: [user:U1, 'email:ann@corp.example']\n"
        "people:\n  user:U1: {prefers: email, email: Felix@Corp.example}\n"
        "  email:ann@corp.example: {prefers: email}\n",
        encoding="utf-8",
    )
    assert set(load_roles(path)) == {"finance"}  # people: is not a role
    prefs = load_preferences(path)
    assert prefs["user:U1"].prefers == "email"
    assert prefs["user:U1"].email == "felix@corp.example"
    assert prefs["email:ann@corp.example"].prefers == "email"


@pytest.mark.parametrize(
    ("people", "message"),
    [
        ("  user:U1: {prefers: pigeon}\n", "people 'user:U1'"),
        ("  role:finance: {prefers: email}\n", "people are named by user: or email:"),
        ("  user:U1: {prefers: email, email: not-an-address}\n", "people 'user:U1'"),
        ("  user:U1: {prefer: email}\n", "people 'user:U1'"),
    ],
)
def test_a_bad_preference_is_refused_at_load(tmp_path: Path, people: str, message: str) -> None:
    path = tmp_path / "roles.yml"
    path.write_text(f"finance:\n  members: [user:U1]\npeople:\n{people}", encoding="utf-8")
    with pytest.raises(InvalidWorkflow, match=message):
        load_roles(path)


def test_a_node_names_its_channels_and_an_unknown_one_is_refused_at_load() -> None:
    source = "id: w\nnodes:\n  - id: ok\n    type: human\n    assignee: user:U1\n    channels: [{}]\n"
    config = load_workflow_text(source.format("email"), file="w.yml").nodes["ok"].config
    assert isinstance(config, HumanConfig)
    assert config.channels == ["email"]
    with pytest.raises(InvalidWorkflow, match="channels"):
        load_workflow_text(source.format("fax"), file="w.yml")
