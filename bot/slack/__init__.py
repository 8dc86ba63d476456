"""The Slack surface: Bolt listeners, the Slack outbox sender, user groups, App Home.

Public API: ``SlackSurface`` (what ``signoff serve`` builds), ``build_app``, ``SlackSender``,
``SlackDirectory``, ``SlackDeps``. See bot/slack/README.md.
"""

from __future__ import annotations

from bot.slack.app import Authorizer, build_app
from bot.slack.deps import SlackDeps
from bot.slack.directory import SlackDirectory
from bot.slack.sender import SlackSender
from bot.slack.surface import EVENTS_PATH, INSTALL_PATH, REDIRECT_PATH, SlackSurface

__all__ = [
    "EVENTS_PATH",
    "INSTALL_PATH",
    "REDIRECT_PATH",
    "Authorizer",
    "SlackDeps",
    "SlackDirectory",
    "SlackSender",
    "SlackSurface",
    "build_app",
]
