"""Mailing a console login link (private), with ``aiosmtplib``."""

from __future__ import annotations

import html
import logging
from datetime import timedelta
from email.message import EmailMessage

import aiosmtplib

from bot.login_config import SmtpSettings
from engine.errors import EngineError

__all__ = ["MailFailed", "send_login_link"]

log = logging.getLogger("signoff.web.mail")
_TIMEOUT_S = 15.0


class MailFailed(EngineError):
    """The SMTP server could not be reached or refused the message."""


def login_message(smtp: SmtpSettings, to: str, link: str, valid_for: timedelta) -> EmailMessage:
    """The login mail: plain text and HTML, the link in both."""
    minutes = int(valid_for.total_seconds() // 60)
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = to
    message["Subject"] = "Your Signoff sign-in link"
    message.set_content(
        f"Open this link to sign in to Signoff:\n\n{link}\n\n"
        f"It works once, within {minutes} minutes, and only after you press the button on the page "
        "it opens. If you did not ask for it, ignore this message: nobody can sign in without it.\n"
    )
    shown = html.escape(link)
    message.add_alternative(
        "<p>Open this link to sign in to Signoff:</p>"
        f'<p><a href="{shown}">{shown}</a></p>'
        f"<p>It works once, within {minutes} minutes, and only after you press the button on the "
        "page it opens. If you did not ask for it, ignore this message.</p>",
        subtype="html",
    )
    return message


async def send_login_link(smtp: SmtpSettings, to: str, link: str, valid_for: timedelta) -> None:
    """Mail ``link`` to ``to``.

    Raises:
        MailFailed: the SMTP server could not be reached or refused the message.
    """
    message = login_message(smtp, to, link, valid_for)
    try:
        await aiosmtplib.send(
            message,
            hostname=smtp.host,
            port=smtp.port,
            start_tls=smtp.starttls,
            username=smtp.user,
            password=smtp.password.get_secret_value() if smtp.password else None,
            timeout=_TIMEOUT_S,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.exception("mailing a login link to %s through %s:%s failed", to, smtp.host, smtp.port)
        raise MailFailed("the sign-in link could not be mailed just now; try again in a few minutes") from exc
