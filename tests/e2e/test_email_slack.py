"""A decision made from an emailed link, in Slack mode: the Slack card of the other assignee is
updated to the outcome, and the decision fires the same audit event and webhook event as a
click in Slack (FakeSlack for the Web API, aiosmtpd for the mail)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bot.login_config import LoginSettings, SmtpSettings
from bot.server import create_app
from bot.slack import SlackSurface
from bot.wiring import Container, build
from bot.worker import Worker
from engine.events import EVENT_KIND
from engine.model import CheckpointStatus
from tests.e2e._console import form_for
from tests.e2e._login import free_port, wait_for
from tests.e2e._mail import Smtp, links, parts, smtp_server
from tests.fakes.slack import FakeSlack
from tests.scenario._harness import MANAGER, REQUESTER, settings_for, write_project

ROLES = f"""\
manager:
  members: [user:{MANAGER}, "email:ann@corp.example"]
"""


@dataclass
class Env:
    fake: FakeSlack
    smtp: Smtp
    container: Container
    base: str


@asynccontextmanager
async def _env(root: Path, roles: str = ROLES) -> AsyncIterator[Env]:
    write_project(root, roles=roles)
    port = free_port()
    with smtp_server() as smtp:
        async with FakeSlack() as fake:
            settings = settings_for(root, f"sqlite:///{root}/s.db", fake).model_copy(
                update={
                    "public_url": f"http://127.0.0.1:{port}",
                    "secret_key_file": root / "secret_key",
                    "login": LoginSettings(
                        smtp=SmtpSettings(
                            host="127.0.0.1", port=smtp.port, sender="signoff@corp.example", starttls=False
                        )
                    ),
                }
            )
            container = await build(settings, with_sandbox=False)
            worker = Worker(container, poll_s=0.2, outbox_poll_s=0.05)
            container.engine.on_change = worker.wake
            surface = SlackSurface(container, settings, wake=worker.wake)
            app = await create_app(container)
            server = TestServer(app, host="127.0.0.1", port=port)
            await server.start_server()
            await surface.start()
            worker.start()
            try:
                yield Env(fake, smtp, container, f"http://127.0.0.1:{port}")
            finally:
                await worker.stop()
                await server.close()
                await container.close()


async def test_a_decision_by_email_updates_the_slack_card_and_fires_the_same_events(tmp_path: Path) -> None:
    async with _env(tmp_path) as env:
        c = env.container
        run = await c.engine.start("refund", {"customer": "ACME", "amount": 40}, requester=REQUESTER)
        await c.engine.drive(run.id)
        await wait_for(lambda: bool(env.smtp.to("ann@corp.example")))
        [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)

        def card_posted() -> bool:
            return any(call.params.get("channel") for call in env.fake.calls_to("chat.postMessage"))

        await wait_for(card_posted)
        mail = env.smtp.to("ann@corp.example")[0]
        [path] = links(mail)
        # a high-priority request: the page also wants the one-time code written in the mail
        found = re.search(
            r"one-time code \(it is in this mail only, never in a link\): (\d{6})", parts(mail)["text/plain"]
        )
        assert found is not None
        assert found.group(1) not in path
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(env.base + path) as page:
                assert page.status == 200
                form = form_for(await page.text(), path)
            assert env.fake.calls_to("chat.update") == []  # the GET changed nothing anywhere
            data = {**form.hidden, "decision": "approve", "code": found.group(1)}
            async with browser.post(env.base + path, data=data) as resp:
                assert resp.status == 200, await resp.text()
        assert (await c.store.get_checkpoint(cp.id)).status is CheckpointStatus.resolved
        # the manager's Slack card now shows the outcome, and has no buttons left
        await wait_for(lambda: bool(env.fake.calls_to("chat.update")), seconds=15)
        update = env.fake.calls_to("chat.update")[-1]
        assert "ann@corp.example" in str(update.params)
        assert "checkpoint.approve" not in str(update.params)
        # the same evidence and the same webhook event as any other path
        [decision] = await c.store.list_decisions(checkpoint_id=cp.id)
        assert (decision.actor, decision.channel) == ("email:ann@corp.example", "email")
        kinds = [e.kind for e in await c.store.audit_events(run_id=run.id) if e.checkpoint_id == cp.id]
        assert "decision.recorded" in kinds
        events = [
            d.payload["type"] for d in await c.store.list_deliveries(run_id=run.id) if d.kind == EVENT_KIND
        ]
        assert "checkpoint.decided" in events


GONE = """\
manager:
  members: [user:UGONE0001]
people:
  user:UGONE0001: {email: gone@corp.example}
"""


async def test_a_slack_user_slack_cannot_reach_gets_the_mail_instead(tmp_path: Path) -> None:
    async with _env(tmp_path, GONE) as env:
        c = env.container
        env.fake.fail("conversations.open", error="user_not_found")
        run = await c.engine.start("refund", {"customer": "ACME", "amount": 40}, requester=REQUESTER)
        await c.engine.drive(run.id)
        await wait_for(lambda: bool(env.smtp.to("gone@corp.example")), seconds=15)
        [mail] = env.smtp.to("gone@corp.example")
        assert len(links(mail)) == 1
        events = {e.kind: e for e in await c.store.audit_events(run_id=run.id)}
        assert events["slack.undeliverable"].payload["target"] == "user:UGONE0001"
        fallback = events["delivery.fallback"].payload
        assert (fallback["from"], fallback["to"], fallback["error"]) == ("slack", "email", "user_not_found")
