"""Sending one message with ``aiosmtplib`` (private), and what an SMTP failure means.

A recipient the server refuses with a 5xx code (unknown mailbox, rejected address) is
``MailRefused``: sending again would not help, so the caller tries the person's other channel.
Anything else (no connection, a timeout, a 4xx) is ``MailFailed``, retried by the outbox.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from bot.login_config import SmtpSettings
from bot.mail._render import Mail
from engine.errors import EngineError

__all__ = ["MailFailed", "MailRefused", "deliver"]

log = logging.getLogger("signoff.mail")
_TIMEOUT_S = 15.0


class MailFailed(EngineError):
    """The message could not be sent just now (retry later)."""


class MailRefused(EngineError):
    """The server refused the address for good (a bounce at send time)."""


def message(smtp: SmtpSettings, to: str, mail: Mail, delivery_id: str) -> EmailMessage:
    """The MIME message: plain text first, HTML as the alternative."""
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = to
    msg["Subject"] = mail.subject
    msg["Message-ID"] = make_msgid(idstring=delivery_id, domain=smtp.sender.rsplit("@", 1)[-1])
    msg["X-Signoff-Delivery"] = delivery_id
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    return msg


async def deliver(smtp: SmtpSettings, to: str, mail: Mail, delivery_id: str) -> None:
    """Send ``mail`` to ``to``.

    Raises:
        MailRefused: the server refused the address with a permanent (5xx) answer.
        MailFailed: anything else went wrong; sending again later may work.
    """
    try:
        await aiosmtplib.send(
            message(smtp, to, mail, delivery_id),
            hostname=smtp.host,
            port=smtp.port,
            start_tls=smtp.starttls,
            username=smtp.user,
            password=smtp.password.get_secret_value() if smtp.password else None,
            timeout=_TIMEOUT_S,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        why = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        if any(code >= 500 for code in codes):
            raise MailRefused(f"the mail server refused {to}: {why}") from exc
        raise MailFailed(f"the mail server deferred {to}: {why}") from exc
    except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
        if exc.code >= 500:
            raise MailRefused(
                f"the mail server refused the message to {to}: {exc.code} {exc.message}"
            ) from exc
        raise MailFailed(f"the mail server answered {exc.code} {exc.message}") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.warning("mail for delivery %s through %s:%s failed: %s", delivery_id, smtp.host, smtp.port, exc)
        raise MailFailed(f"the mail server could not be reached ({type(exc).__name__})") from exc
