"""``signoff serve`` processes on one database, Slack requests signed and POSTed to them, FakeSlack
as their Web API, and the checks every reliability scenario ends with.

Everything here is async: FakeSlack answers the servers from this test's event loop, so nothing
may block it (a server calls ``auth.test`` before it listens).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp

from engine.model import CheckpointStatus, DeliveryStatus, RunStatus
from engine.ports import RunStore
from tests.e2e._process import SIGNOFF, env_for, free_port
from tests.fakes.slack import FakeSlack, sign_request
from tests.scenario._harness import GROUP, GROUP_MEMBER, MANAGER, REQUESTER, SECRET, fixture, write_project

T = TypeVar("T")

TIMED = """\
id: timed
title: Timed refund
inputs:
  type: object
  properties: {amount: {type: number}}
  required: [amount]
nodes:
  - id: draft
    type: set
    data: {amount: "{{ inputs.amount }}"}
  - id: approval
    type: human
    prompt: "Refund {{ inputs.amount }} USD?"
    assignee: role:manager
    options: [approve, reject]
    timeout: 2s
  - id: send
    type: set
    data: {sent: true}
edges:
  - {from: draft, to: approval}
  - {from: approval, to: send, when: "response.action == 'approve'"}
"""
LEASE_TTL_S = "2"


async def healthy(http: aiohttp.ClientSession, server: Server, timeout: float = 60.0) -> None:
    """Probe ``/healthz`` until it answers 200 or the deadline passes.

    A probe that is slow (a loaded machine) or refused counts as "not yet", never as a failure:
    each probe may take up to 5 s (at most what is left), then the next one starts.
    """
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{server.port}/healthz"
    while (left := deadline - time.monotonic()) > 0:
        if not server.alive:
            raise AssertionError(f"{server.name} exited with {server.proc.returncode}:\n{server.output()}")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            probe = aiohttp.ClientTimeout(total=max(0.1, min(5.0, left)))
            async with http.get(url, timeout=probe) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout}s:\n{server.output()}")


class ServerDied(Exception):
    """The process being waited on exited (as a fault point intends)."""


@dataclass
class Server:
    """One ``signoff serve`` process."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def events_url(self) -> str:
        """Its Slack endpoint."""
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def output(self) -> str:
        """What the process printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Cluster:
    """Servers sharing a database and a FakeSlack; counts the kills the scenarios caused."""

    root: Path
    database_url: str
    fake: FakeSlack
    http: aiohttp.ClientSession
    store: RunStore
    servers: list[Server] = field(default_factory=list)
    kills: int = 0

    # ------------------------------------------------------------------ processes

    async def start(
        self, *, fault: str | None = None, name: str = "s", env: dict[str, str] | None = None
    ) -> Server:
        """Start a server (with a fault plan, and ``env`` on top) and wait until /healthz answers."""
        port = free_port()
        extra = {
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.fake.base_url,
            "SIGNOFF_LEASE_TTL": LEASE_TTL_S,
            "SIGNOFF_WORKSPACE_DIR": str(self.root / "workspaces"),
            **(env or {}),
        }
        if fault:
            extra["SIGNOFF_TEST_FAULTS"] = fault
        env = env_for(self.database_url, self.root, port, **extra)
        log = self.root / f"{name}-{len(self.servers)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [SIGNOFF, "serve"], env=env, cwd=self.root, stdout=out, stderr=subprocess.STDOUT
            )
        server = Server(name, port, proc, log)
        self.servers.append(server)
        await self._healthy(server)
        return server

    async def _healthy(self, server: Server, timeout: float = 60.0) -> None:
        await healthy(self.http, server, timeout)

    async def died(self, server: Server, timeout: float = 30.0) -> int:
        """Wait for a server to die; returns its exit code (-9 for SIGKILL)."""
        deadline = time.monotonic() + timeout
        while server.alive:
            if time.monotonic() > deadline:
                raise AssertionError(f"{server.name} did not die within {timeout}s:\n{server.output()}")
            await asyncio.sleep(0.02)
        self.kills += 1
        return int(server.proc.returncode)

    def stop_all(self) -> None:
        """SIGKILL every server still running (only the ones this cluster started)."""
        for server in self.servers:
            if server.alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=30)

    # ------------------------------------------------------------------ Slack requests

    async def post(
        self,
        server: Server,
        body: str,
        content_type: str,
        *,
        secret: str = SECRET,
        ts: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """POST a body signed with ``secret`` at ``ts`` (now) to a server's /slack/events."""
        raw = body.encode()
        headers = {"Content-Type": content_type, **sign_request(secret, raw, ts), **(headers or {})}
        try:
            async with self.http.post(server.events_url, data=raw, headers=headers) as response:
                return response.status, await response.text()
        except aiohttp.ServerDisconnectedError:
            # the process crashed after it acked but before the answer left the socket: the
            # request was received (what Slack's user sees is an error, not a lost request)
            return 0, ""

    async def command(self, server: Server, text: str, user: str = REQUESTER) -> int:
        """``/signoff <text>`` from ``user``; returns the HTTP status."""
        p = fixture("slash_command.parsed.json")
        p.update(
            command="/signoff",
            text=text,
            user_id=user,
            trigger_id=self.fake.new_trigger_id(),
            response_url=self.fake.base_url + "hooks.commands",
            team_id=self.fake.api.team_id,
        )
        status, _ = await self.post(server, urlencode(p), "application/x-www-form-urlencoded")
        return status

    def click_payload(self, action_id: str, value: str, user: str) -> dict[str, Any]:
        """A ``block_actions`` click on a card in the clicker's DM."""
        p: dict[str, Any] = fixture("block_actions_message_button.json")
        p["user"]["id"] = user
        p["user"]["team_id"] = p["team"]["id"] = self.fake.api.team_id
        p["trigger_id"] = self.fake.new_trigger_id()
        p["response_url"] = self.fake.base_url + "hooks.actions"
        p["container"]["channel_id"] = p["channel"]["id"] = self.fake.api.dm_channel(user)
        action = p["actions"][0]
        action.update(action_id=action_id, value=value, block_id=f"actions:v0:{value}")
        p["actions"] = [action]
        return p

    async def interact(self, server: Server, payload: dict[str, Any], **headers: str) -> int:
        """POST an interaction payload (extra headers, e.g. a retry number); returns the status."""
        body = "payload=" + quote(json.dumps(payload))
        status, _ = await self.post(server, body, "application/x-www-form-urlencoded", headers=headers)
        return status

    # ------------------------------------------------------------------ waiting

    async def survive(self, check: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0) -> T:
        """``until`` on the newest server; when it dies (SIGKILL), restart it without a fault."""
        while True:
            server = self.servers[-1]
            try:
                return await self.until(check, watch=server, timeout=timeout)
            except ServerDied:
                code = await self.died(server)
                assert code == -signal.SIGKILL, f"{server.name} exited with {code}:\n{server.output()}"
                await self.start(name=server.name)

    async def until(
        self, check: Callable[[], Awaitable[T | None]], *, watch: Server | None = None, timeout: float = 30.0
    ) -> T:
        """Poll ``check`` until it returns something truthy; ServerDied if ``watch`` exits first."""
        deadline = time.monotonic() + timeout
        while True:
            result = await check()
            if result:
                return result
            if watch is not None and not watch.alive:
                raise ServerDied(watch.name)
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {s.name}\n{s.output()[-3000:]}" for s in self.servers)
                raise AssertionError(f"condition not met within {timeout}s\n{logs}")
            await asyncio.sleep(0.05)


def card_posts(fake: FakeSlack) -> list[dict[str, Any]]:
    """Messages FakeSlack holds that are checkpoint cards (a header block with a checkpoint id)."""
    return [
        m
        for m in fake.api.messages.values()
        if any(str(b.get("block_id", "")).startswith("header:v") for b in _blocks(m.get("blocks")))
    ]


def has_buttons(message: dict[str, Any]) -> bool:
    """True while a message still offers decision buttons."""
    return any(
        b.get("type") == "actions" and str(b.get("block_id", "")).startswith("actions:")
        for b in message.get("blocks") or []
    )


@dataclass
class Figures:
    """What one scenario found; every duplicate count must be 0."""

    runs: int = 0
    kills: int = 0
    steps_rerun: int = 0
    decisions_lost: int = 0
    decisions_doubled: int = 0
    deliveries_unsent: int = 0
    cards_not_final: int = 0
    cards_doubled: int = 0
    messages_doubled: int = 0

    @property
    def duplicates(self) -> int:
        """Every kind of loss or duplicate, summed."""
        return (
            self.steps_rerun
            + self.decisions_lost
            + self.decisions_doubled
            + self.deliveries_unsent
            + self.cards_not_final
            + self.cards_doubled
            + self.messages_doubled
        )

    @property
    def lost_or_doubled_state(self) -> int:
        """Losses and duplicates of state (steps, decisions, deliveries), leaving out Slack copies."""
        return self.steps_rerun + self.decisions_lost + self.decisions_doubled + self.deliveries_unsent


async def check_everything(cluster: Cluster, expected: dict[str, RunStatus]) -> Figures:
    """The end-of-scenario checks (docs/reliability.md): runs final, no step twice, one decision
    per checkpoint, every delivery sent, every card showing the final state."""
    store = cluster.store
    figures = Figures(runs=len(expected), kills=cluster.kills)
    for run_id, status in expected.items():
        run = await store.get_run(run_id)
        assert run.status is status, f"{run_id}: {run.status} ({run.reason}), wanted {status}"
        events = await store.audit_events(run_id=run_id)
        done = collections.Counter(
            e.payload["node"] for e in events if e.kind in {"step.succeeded", "checkpoint.opened"}
        )
        figures.steps_rerun += sum(n - 1 for n in done.values())
        steps = collections.Counter(s.node_id for s in await store.list_steps(run_id))
        figures.steps_rerun += sum(n - 1 for n in steps.values())
        for cp in await store.list_checkpoints(run_id=run_id):
            assert cp.status is CheckpointStatus.resolved, cp
            decisions = await store.list_decisions(checkpoint_id=cp.id)
            recorded = [e for e in events if e.kind == "decision.recorded" and e.checkpoint_id == cp.id]
            figures.decisions_lost += int(not decisions)
            figures.decisions_doubled += max(len(decisions), len(recorded)) - 1 if decisions else 0
    for run_id in expected:
        for delivery in await store.list_deliveries(run_id=run_id):
            figures.deliveries_unsent += int(delivery.status is not DeliveryStatus.sent)
    cards = card_posts(cluster.fake)
    figures.cards_not_final = sum(has_buttons(c) for c in cards)
    per_copy = collections.Counter(
        (c.params.get("channel"), _checkpoint_of(c.params.get("blocks")))
        for c in cluster.fake.calls_to("chat.postMessage")
        if _checkpoint_of(c.params.get("blocks")) and has_buttons({"blocks": _blocks(c.params.get("blocks"))})
    )
    figures.cards_doubled = sum(n - 1 for n in per_copy.values())
    sent = collections.Counter(
        (c.method, c.params.get("channel"), c.params.get("text"))
        for c in cluster.fake.calls
        if c.method == "chat.postMessage" or c.method.startswith("hooks.")
    )
    figures.messages_doubled = sum(n - 1 for n in sent.values())
    return figures


def _blocks(raw: Any) -> list[dict[str, Any]]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    return list(value or [])


def _checkpoint_of(raw: Any) -> str | None:
    for block in _blocks(raw):
        block_id = str(block.get("block_id", ""))
        if block_id.startswith("actions:"):
            return block_id.rsplit(":", 1)[-1]
    return None


__all__ = [
    "GROUP",
    "GROUP_MEMBER",
    "MANAGER",
    "REQUESTER",
    "TIMED",
    "Cluster",
    "Figures",
    "Server",
    "ServerDied",
    "card_posts",
    "check_everything",
    "has_buttons",
    "write_project",
]
