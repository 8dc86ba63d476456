"""A Signoff process with Slack on, against FakeSlack: signed HTTP requests or Socket Mode frames.

Payloads are built from the shared fixture files (../shared/fixtures/slack), with our ids patched in.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.config import Settings
from bot.server import create_app
from bot.slack import EVENTS_PATH, SlackSurface
from bot.wiring import Container, build
from bot.worker import Worker
from tests.conftest import SLACK_FIXTURES
from tests.fakes.slack import FakeSlack, sign_request

if TYPE_CHECKING:
    from bot.telemetry._tracing import Tracing

FIXTURES = SLACK_FIXTURES
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
REQUESTER = "UREQ0001"
MANAGER = "UMGR0001"
GROUP_MEMBER = "UMGR0002"
STRANGER = "USTRANGE1"
GROUP = "SAPPROVE1"

WORKFLOW = """\
id: refund
title: Customer refund
inputs:
  type: object
  properties:
    customer: {type: string, title: Customer, minLength: 1}
    amount: {type: number, minimum: 0, maximum: 10000, title: Amount (USD)}
  required: [customer, amount]
nodes:
  - id: draft
    type: set
    data:
      message: "We refunded {{ inputs.amount }} USD to {{ inputs.customer }}."
  - id: approval
    type: human
    title: "Refund {{ inputs.amount }} USD to {{ inputs.customer }}"
    prompt: "Approve a refund of *{{ inputs.amount }} USD* for *{{ inputs.customer }}*?"
    context:
      message: "{{ nodes.draft.data.message }}"
      customer: "{{ inputs.customer }}"
    options: [approve, reject, edit]
    response_schema:
      type: object
      properties:
        message: {type: string, title: Note to the customer, minLength: 10}
      required: [message]
    assignee: role:manager
    display: {highlight: [message]}
    priority: high
  - id: send
    type: set
    data:
      note: "{{ nodes.approval.data.message }}"
  - id: tell
    type: notify
    to: requester
    text: "Refund sent: {{ nodes.send.data.note }}"
edges:
  - {from: draft, to: approval}
  - {from: approval, to: send, when: "response.action == 'approve' || response.action == 'edit'"}
  - {from: send, to: tell}
"""
ROLES = f"""\
manager:
  members: [user:{MANAGER}, group:{GROUP}]
ops_admin:
  members: [user:UADMIN001]
  admin: true
"""


def fixture(name: str) -> Any:
    """A fixture file, parsed (a fresh copy each time)."""
    return json.loads((FIXTURES / name).read_text())


def write_project(
    root: Path, workflow: str = WORKFLOW, *, roles: str = ROLES, extra: dict[str, str] | None = None
) -> None:
    """The workflows folder and roles file of the test process (``extra``: more files by name)."""
    (root / "workflows").mkdir(exist_ok=True)
    (root / "workflows" / "refund.yml").write_text(workflow)
    for name, text in (extra or {}).items():
        (root / "workflows" / name).write_text(text)
    (root / "roles.yml").write_text(roles)


def settings_for(
    root: Path, database_url: str, fake: FakeSlack, *, socket: bool = False, llm_url: str | None = None
) -> Settings:
    """Slack-mode settings pointing the Web API at FakeSlack (and the LLM at ``llm_url``)."""
    return Settings(
        database_url=database_url,
        workflows_dir=root / "workflows",
        skills_dir=root / "none",
        roles_file=root / "roles.yml",
        workspace_dir=root / "workspaces",
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_app_token="xapp-1-test" if socket else None,
        slack_api_url=fake.base_url,
        anthropic_api_key="sk-test" if llm_url else None,
        anthropic_base_url=llm_url,
    )


@dataclass
class SlackEnv:
    """A running process: container, Slack surface, worker, and how to reach its endpoint."""

    fake: FakeSlack
    container: Container
    surface: SlackSurface
    url: str
    http: aiohttp.ClientSession
    socket: bool

    # ------------------------------------------------------------------ transport

    async def post(
        self, body: str, content_type: str, *, ts: int | None = None, secret: str = SECRET
    ) -> tuple[int, str]:
        """POST a signed body to /slack/events; returns (status, text)."""
        raw = body.encode()
        headers = {"Content-Type": content_type, **sign_request(secret, raw, ts)}
        async with self.http.post(self.url, data=raw, headers=headers) as response:
            return response.status, await response.text()

    async def send(self, kind: str, payload: dict[str, Any]) -> tuple[int, Any]:
        """Deliver a payload the way this env's transport does; returns (status, ack body)."""
        if self.socket:
            envelope = {"command": "slash_commands", "interaction": "interactive", "event": "events_api"}[
                kind
            ]
            frame = await self.fake.socket_send(envelope, payload, accepts_response_payload=kind != "event")
            return 200, frame.get("payload")
        if kind == "command":
            status, text = await self.post(urlencode(payload), "application/x-www-form-urlencoded")
        elif kind == "interaction":
            body = "payload=" + quote(json.dumps(payload))
            status, text = await self.post(body, "application/x-www-form-urlencoded")
        else:
            status, text = await self.post(json.dumps(payload), "application/json")
        return status, (json.loads(text) if text.startswith("{") else text)

    # ------------------------------------------------------------------ payloads

    def command(self, text: str, user: str = REQUESTER) -> dict[str, Any]:
        """A ``/signoff`` slash command from the fixture, with a fresh trigger id."""
        p = fixture("slash_command.parsed.json")
        p.update(
            command="/signoff",
            text=text,
            user_id=user,
            trigger_id=self.fake.new_trigger_id(),
            response_url=self.fake.base_url + "hooks.commands",
            team_id=self.fake.api.team_id,
        )
        return dict(p)

    def click(self, action_id: str, value: str, user: str, *, channel: str = "C0DEMO001") -> dict[str, Any]:
        """A ``block_actions`` button click on a message, from the fixture."""
        p = fixture("block_actions_message_button.json")
        p["user"]["id"] = user
        self.our_team(p)
        p["trigger_id"] = self.fake.new_trigger_id()
        p["response_url"] = self.fake.base_url + "hooks.actions"
        p["container"]["channel_id"] = p["channel"]["id"] = channel
        action = p["actions"][0]
        action.update(action_id=action_id, value=value, block_id=f"actions:v0:{value}")
        p["actions"] = [action]
        return dict(p)

    def submission(self, view: dict[str, Any], values: dict[str, Any], user: str) -> dict[str, Any]:
        """A ``view_submission`` of a view FakeSlack stored, with ``state.values`` filled in."""
        p = fixture("view_submission_inputs.json")
        p["user"]["id"] = user
        self.our_team(p)
        sent = copy.deepcopy(view)
        sent["state"] = {"values": values}
        p["view"] = {**p["view"], **sent}
        return dict(p)

    def our_team(self, p: dict[str, Any]) -> None:
        """Payloads come from the workspace FakeSlack's ``auth.test`` names (the gate checks it)."""
        team = self.fake.api.team_id
        if isinstance(p.get("team"), dict):
            p["team"]["id"] = team
        if isinstance(p.get("user"), dict):
            p["user"]["team_id"] = team
        if isinstance(p.get("view"), dict):
            p["view"]["team_id"] = team

    def replies(self, user: str) -> list[str]:
        """Texts sent to ``user`` only: response_url posts and ephemeral messages."""
        hooks = [c for c in self.fake.calls if c.method.startswith("hooks.")]
        texts = [str(c.params.get("text")) for c in hooks if c.params.get("user", user) == user]
        ephemeral = self.fake.calls_to("chat.postEphemeral")
        return texts + [str(c.params["text"]) for c in ephemeral if c.params["user"] == user]

    # ------------------------------------------------------------------ waiting

    async def until(self, check: Callable[[], Any], timeout: float = 8.0) -> Any:
        """Poll ``check`` (sync or async) until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s")
            await asyncio.sleep(0.02)


def text_input(value: str) -> dict[str, Any]:
    """The ``state.values`` entry of a plain_text_input."""
    return {"value": {"type": "plain_text_input", "value": value}}


def number_input(value: str) -> dict[str, Any]:
    """The ``state.values`` entry of a number_input (Slack sends the number as a string)."""
    return {"value": {"type": "number_input", "value": value}}


@asynccontextmanager
async def slack_env(
    root: Path,
    database_url: str,
    *,
    socket: bool = False,
    workflow: str = WORKFLOW,
    llm_url: str | None = None,
    roles: str = ROLES,
    extra: dict[str, str] | None = None,
    tracing: Tracing | None = None,
) -> AsyncIterator[SlackEnv]:
    """Start FakeSlack, the process (container + Slack surface + worker) and its HTTP server
    (with ``tracing``: its spans, as ``signoff serve`` makes them with an OTLP endpoint)."""
    write_project(root, workflow, roles=roles, extra=extra)
    async with FakeSlack(usergroups={GROUP: [GROUP_MEMBER]}) as fake:
        settings = settings_for(root, database_url, fake, socket=socket, llm_url=llm_url)
        container = await build(settings, with_sandbox=False)
        worker = Worker(container, poll_s=0.2, outbox_poll_s=0.05)
        container.engine.on_change = worker.wake
        surface = SlackSurface(container, settings, wake=worker.wake)
        app: web.Application = await create_app(container, tracing=tracing)
        if not socket:
            surface.mount(app)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        await surface.start()
        worker.start()
        try:
            async with aiohttp.ClientSession() as http:
                url = str(server.make_url(EVENTS_PATH))
                yield SlackEnv(fake, container, surface, url, http, socket)
        finally:
            await surface.close()
            await worker.stop()
            await server.close()
            await container.close()
