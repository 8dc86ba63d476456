"""Helpers for the email channel tests: a project, a real SMTP server that can refuse
addresses, and reading the links out of the messages it received."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bot.config import Settings
from bot.login_config import LoginSettings, SmtpSettings
from tests.e2e._login import free_port

PAY = """\
id: pay
title: Release a payment
inputs:
  type: object
  properties:
    amount: {type: number}
    iban: {type: string}
    memo: {type: string}
nodes:
  - id: release
    type: human
    title: "Pay {{ inputs.amount }} EUR"
    prompt: "Release the payment of *{{ inputs.amount }} EUR*?"
    proposed:
      amount: "{{ inputs.amount }}"
      iban: "{{ inputs.iban }}"
      memo: "{{ inputs.memo }}"
    response_schema:
      type: object
      properties:
        amount: {type: number, title: Amount (EUR)}
        iban: {type: string, title: Account, writeOnly: true}
        memo: {type: string, title: Memo}
    options: [approve, reject, edit]
    assignee: role:finance
    quorum: 2
  - {id: paid, type: set, data: {ok: true}}
edges: [{from: release, to: paid, when: "response.action == 'approve'"}]
"""
ROLES = """\
finance:
  members: ["email:ann@corp.example", "user:felix", "user:fred", "email:gone@bounce.example"]
people:
  user:fred: {prefers: email, email: fred@bounce.example}
"""
IBAN = "DE89370400440532013000"
INPUTS = {"amount": 1200, "iban": IBAN, "memo": "Invoice 7 <b>bold</b>\nAmount (EUR): 1"}
LINK = re.compile(r"https?://[^\s\"<]+/mail/decide/[A-Za-z0-9._\-]+")


@dataclass
class Smtp:
    """A real SMTP server on 127.0.0.1: its port, what it received, the addresses it refuses."""

    port: int
    messages: list[Message] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Refuse the addresses in ``refuse`` with a permanent 550."""
        if address.lower() in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep the message."""
        assert isinstance(envelope.content, bytes)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        """The messages addressed to ``address``."""
        return [m for m in self.messages if m["To"] == address]


@contextlib.contextmanager
def smtp_server(refuse: set[str] | None = None) -> Iterator[Smtp]:
    """Start the server; stop it after the block."""
    smtp = Smtp(free_port(), refuse=set(refuse or ()))
    controller = Controller(smtp, hostname="127.0.0.1", port=smtp.port)
    controller.start()
    try:
        yield smtp
    finally:
        controller.stop()


def write_project(root: Path, workflow: str = PAY, roles: str = ROLES) -> None:
    """The workflows folder and the roles file."""
    (root / "workflows").mkdir(exist_ok=True)
    (root / "workflows" / "pay.yml").write_text(workflow, encoding="utf-8")
    (root / "roles.yml").write_text(roles, encoding="utf-8")


def mail_settings(root: Path, port: int, smtp_port: int, **extra: object) -> Settings:
    """Settings with SMTP (the email channel) and email sign-in, served at 127.0.0.1:``port``."""
    smtp = SmtpSettings(host="127.0.0.1", port=smtp_port, sender="signoff@corp.example", starttls=False)
    values: dict[str, object] = {
        "database_url": f"sqlite:///{root}/s.db",
        "workflows_dir": root / "workflows",
        "skills_dir": root / "none",
        "roles_file": root / "roles.yml",
        "workspace_dir": root / "workspaces",
        "secret_key_file": root / "secret_key",
        "public_url": f"http://127.0.0.1:{port}",
        "login": LoginSettings(providers=("email",), smtp=smtp),
        **extra,
    }
    return Settings.model_validate(values)


def parts(message: Message) -> dict[str, str]:
    """The text parts of a message by content type."""
    out: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            out[part.get_content_type()] = payload.decode()
    return out


def links(message: Message) -> set[str]:
    """Every decision link in a message (both parts), as paths."""
    found = {m.group(0) for text in parts(message).values() for m in LINK.finditer(text)}
    return {urlsplit(link).path for link in found}
