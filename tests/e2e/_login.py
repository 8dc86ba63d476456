"""Helpers for the console login tests: a console with SIGNOFF_AUTH on a known port, a fake
SMTP server, and signing in as a browser does."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr

from bot.config import Settings
from bot.login_config import LoginSettings, OidcClient, SmtpSettings
from bot.web import add_routes
from bot.wiring import Container, build
from engine.testing import FixedClock
from tests.e2e._console import Browser, browser, form_for
from tests.e2e.conftest import RecordingSender
from tests.fakes.oidc import FakeOidc

PAY = """\
id: pay
title: Release a payment
nodes:
  - id: release
    type: human
    prompt: "Release the payment?"
    assignee: role:finance
    quorum: 2
  - {id: paid, type: set, data: {ok: true}}
edges: [{from: release, to: paid, when: "response.action == 'approve'"}]
"""
ROLES = """\
finance:
  members: ["email:ann@corp.example", "user:felix", "user:fred"]
  delegates: ["email:dave@corp.example"]
"""


def free_port() -> int:
    """A port nothing listens on now (the console's public URL must name it before it starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[int, list[Message]]]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd): its port and the messages it received."""
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox.messages
    finally:
        controller.stop()


@dataclass
class Console:
    """A console with login, its container, its clock and the address it is served at."""

    container: Container
    clock: FixedClock
    server: TestServer
    url: str
    browsers: list[Browser] = field(default_factory=list)
    idp: FakeOidc | None = None

    async def browser(self) -> Browser:
        """A new browser on the console."""
        client = await browser(self.server)
        self.browsers.append(client)
        return client


def login_settings(
    tmp_path: Path,
    port: int,
    *,
    oidc: FakeOidc | None = None,
    slack: FakeOidc | None = None,
    smtp_port: int | None = None,
) -> Settings:
    """Settings with SIGNOFF_AUTH for the providers given."""
    workflows = tmp_path / "workflows"
    workflows.mkdir(exist_ok=True)
    (workflows / "pay.yml").write_text(PAY, encoding="utf-8")
    (tmp_path / "roles.yml").write_text(ROLES, encoding="utf-8")

    def client(fake: FakeOidc, label: str) -> OidcClient:
        return OidcClient(
            discovery_url=fake.base_url + "/.well-known/openid-configuration",
            client_id=fake.client_id,
            client_secret=SecretStr(fake.client_secret),
            label=label,
        )

    providers = [name for name, on in (("oidc", oidc), ("slack", slack), ("email", smtp_port)) if on]
    smtp = (
        SmtpSettings(host="127.0.0.1", port=smtp_port, sender="signoff@corp.example", starttls=False)
        if smtp_port
        else None
    )
    return Settings(
        database_url=f"sqlite:///{tmp_path}/s.db",
        workflows_dir=workflows,
        skills_dir=tmp_path / "none",
        roles_file=tmp_path / "roles.yml",
        workspace_dir=tmp_path / "workspaces",
        secret_key_file=tmp_path / "secret_key",
        public_url=f"http://127.0.0.1:{port}",
        login=LoginSettings(
            providers=tuple(providers),
            oidc=client(oidc, "Corp SSO") if oidc else None,
            slack=client(slack, "Slack") if slack else None,
            smtp=smtp,
        ),
    )


@contextlib.asynccontextmanager
async def console(settings: Settings, port: int, *, team: str | None = None) -> AsyncIterator[Console]:
    """The console of ``settings`` served on ``port``."""
    clock = FixedClock(datetime.fromtimestamp(time.time(), UTC))
    container = await build(settings, sender=RecordingSender(), clock=clock, with_sandbox=False)
    container.engine.gate.team = team
    app = web.Application()
    add_routes(app, container)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    made = Console(container, clock, server, f"http://127.0.0.1:{port}")
    try:
        yield made
    finally:
        for b in made.browsers:
            await b.close()
        await server.close()
        await container.close()


async def start_sign_in(client: Browser, provider: str, next_path: str = "/") -> Any:
    """Press "Sign in with ..." on the login page; the response redirects to the provider."""
    page = await client.get(f"/login?next={next_path}")
    assert page.status == 200, await page.text()
    form = form_for(await page.text(), f"/login/{provider}")
    resp = await client.post(f"/login/{provider}", data=form.hidden, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    return resp.headers["Location"]


async def at_provider(client: Browser, url: str) -> str:
    """Follow the redirect to the provider, which signs the person in and sends them back."""
    resp = await client.session.get(url, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    back = resp.headers["Location"]
    parts = urlsplit(back)
    return f"{parts.path}?{parts.query}"


async def sign_in(client: Browser, provider: str, next_path: str = "/") -> Any:
    """The whole round trip; returns the console's answer to the callback."""
    url = await start_sign_in(client, provider, next_path)
    callback = await at_provider(client, url)
    return await client.get(callback, allow_redirects=False)


async def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until ``check()`` holds (the SMTP server runs in its own thread)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
