"""The email channel: checkpoint mail with safe decision links, sent through the outbox.

With ``SIGNOFF_SMTP_HOST`` set, ``install`` puts a ``ChannelSender`` in front of the process's
sender: each person is reached on Slack or by email (``prefers``, the node's ``channels``, an
``email:`` principal), a refused address falls back to the other channel with an audit event,
and a closed checkpoint sends a "decided" notice to everyone it was mailed to. The decision
page behind a link is the console's (``bot/web/_mail_links.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.config import ConfigError
from bot.mail._choice import Reach, choose
from bot.mail._links import DecisionLinks, LinkClaim, Minted, Used
from bot.mail._render import Mail, checkpoint_mail, decided_mail
from bot.mail._smtp import MailFailed, MailRefused, deliver
from bot.mail.sender import DECIDED, ChannelSender, MailDeps
from engine.model import Priority
from engine.roles import load_preferences

if TYPE_CHECKING:
    from bot.wiring import Container

__all__ = [
    "DECIDED",
    "ChannelSender",
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


def needs_code(container: Container, priority: Priority) -> bool:
    """True when mail for a checkpoint of ``priority`` carries a one-time code
    (``SIGNOFF_DECISION_CODE``: off, high, urgent)."""
    level = container.settings.login.decision_code
    wanted = {"off": set(), "high": {Priority.high, Priority.urgent}, "urgent": {Priority.urgent}}
    return priority in wanted.get(level, set())


def links_for(container: Container) -> DecisionLinks | None:
    """The decision links of this process; None when the email channel is off.

    Raises:
        ConfigError: SMTP is set but ``SIGNOFF_PUBLIC_URL`` is not, or the secret key is unusable.
    """
    settings = container.settings
    if settings.login.smtp is None or container.people is None:
        return None
    if not settings.public_url:
        raise ConfigError("SIGNOFF_SMTP_HOST needs SIGNOFF_PUBLIC_URL: decision links point there")
    from bot.web._session import load_secret  # the console's key also signs its links

    return DecisionLinks(
        container.people, load_secret(settings), settings.public_url, settings.login.decision_link_ttl
    )


def install(container: Container, *, wake: Callable[[], None] = lambda: None) -> None:
    """Route the container's outbox through the email channel when SMTP is configured.

    Raises:
        ConfigError: see ``links_for``.
    """
    outbox = container.outbox
    links = links_for(container)
    smtp = container.settings.login.smtp
    if outbox is None or links is None or smtp is None or isinstance(outbox.sender, ChannelSender):
        return
    prefs = load_preferences(container.settings.roles_file)
    code_for = frozenset(p for p in Priority if needs_code(container, p))
    outbox.sender = ChannelSender(outbox.sender, MailDeps(container, smtp, links, prefs, wake, code_for))
