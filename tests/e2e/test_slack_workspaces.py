"""Multi-workspace Slack end to end: the OAuth v2 install flow against FakeSlack, a second
workspace, each workspace's token for its own work, token rotation, uninstall events, and a
decision from one workspace refused on another's checkpoint.

The real server (``SlackSurface`` on the process's aiohttp app) with the real Bolt OAuth flow and
slack_sdk clients; FakeSlack issues the tokens (``oauth.v2.access``) and answers per token.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.blocks.checkpoint import APPROVE
from bot.config import Settings
from bot.login_config import LoginSettings, OidcClient, SmtpSettings
from bot.server import create_app
from bot.slack import EVENTS_PATH, INSTALL_PATH, REDIRECT_PATH, SlackSurface
from bot.slack.inbox import waiting_for as slack_waiting_for
from bot.slack.install import TEAM, TeamDirectory
from bot.wiring import Container, build
from bot.worker import Worker
from engine.commands import Decide
from engine.delegation import delegate
from engine.installations import InstallationStore
from engine.model import Checkpoint, CheckpointStatus, DeliveryStatus
from tests.e2e._console import browser
from tests.e2e._login import sign_in
from tests.e2e._mail import smtp_server
from tests.fakes.oidc import FakeOidc
from tests.fakes.slack import Call, FakeSlack
from tests.scenario._flow import has_buttons
from tests.scenario._harness import (
    GROUP,
    GROUP_MEMBER,
    MANAGER,
    REQUESTER,
    SECRET,
    STRANGER,
    SlackEnv,
    write_project,
)

TEAM_A, TEAM_B = "T0ACME001", "T0GLOBEX1"


@dataclass
class Multi:
    """A multi-workspace process: the Slack env (for signed requests), its base URL and key."""

    env: SlackEnv
    base: str
    key: str
    db: Path
    server: TestServer

    @property
    def fake(self) -> FakeSlack:
        return self.env.fake

    @property
    def container(self) -> Container:
        return self.env.container

    async def install(self, team: str, *, expires_in: int | None = None) -> tuple[int, str]:
        """Visit /slack/install, approve in Slack (FakeSlack grants a code), follow the redirect."""
        http = self.env.http
        async with http.get(self.base + INSTALL_PATH, allow_redirects=False) as page:
            assert page.status == 200
            html = await page.text()
            cookie = page.headers.get("Set-Cookie", "")
        state = re.search(r"state=([^&\"']+)", html)
        assert state is not None, html
        code = self.fake.oauth.grant(team, name=f"Workspace {team}", expires_in=expires_in)
        jar = cookie.split(";")[0]  # Bolt binds the state to this browser with a cookie
        url = f"{self.base}{REDIRECT_PATH}?code={code}&state={state.group(1)}"
        async with http.get(url, headers={"Cookie": jar}, allow_redirects=False) as done:
            return done.status, await done.text()

    async def command(self, text: str, team: str, user: str = REQUESTER) -> None:
        payload = self.env.command(text, user)
        payload.update(team_id=team, enterprise_id="")
        status, _ = await self.env.send("command", payload)
        assert status == 200

    async def click(self, cp: Checkpoint, user: str, team: str) -> None:
        payload = self.env.click(APPROVE, cp.id, user)
        payload["team"]["id"] = payload["user"]["team_id"] = team
        status, _ = await self.env.send("interaction", payload)
        assert status == 200

    async def event(self, team: str, event: dict[str, Any]) -> int:
        body = {
            "token": "legacy",
            "team_id": team,
            "api_app_id": self.fake.oauth.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
        }
        status, _ = await self.env.send("event", body)
        return status

    async def open_checkpoint(self, team: str) -> Checkpoint:
        store = self.container.store

        async def found() -> list[Checkpoint]:
            cps = await store.list_checkpoints(open_only=True)
            return [c for c in cps if c.team == team]

        cps: list[Checkpoint] = await self.env.until(found)
        return cps[0]


def _settings(root: Path, db: Path, fake: FakeSlack, key: str) -> Settings:
    return Settings(
        database_url=f"sqlite:///{db}",
        workflows_dir=root / "workflows",
        skills_dir=root / "none",
        roles_file=root / "roles.yml",
        workspace_dir=root / "workspaces",
        slack_signing_secret=SECRET,
        slack_client_id=fake.oauth.client_id,
        slack_client_secret=SecretStr(fake.oauth.client_secret),
        token_key=SecretStr(key),
        slack_api_url=fake.base_url,
        slack_teams=frozenset({TEAM_A, TEAM_B}),
    )


@asynccontextmanager
async def _serving(
    tmp_path: Path, *, workflows: dict[str, str] | None = None, **update: Any
) -> AsyncIterator[Multi]:
    """A multi-workspace process; ``workflows``: more workflow files by name; ``update``: more
    settings (mail, login, ...)."""
    write_project(tmp_path, extra=workflows)
    key = Fernet.generate_key().decode()
    db = tmp_path / "s.db"
    async with FakeSlack(usergroups={GROUP: [GROUP_MEMBER]}) as fake:
        settings = _settings(tmp_path, db, fake, key).model_copy(update=update)
        assert settings.slack_multi
        assert settings.slack_enabled
        container = await build(settings, with_sandbox=False)
        worker = Worker(container, poll_s=0.2, outbox_poll_s=0.05)
        container.engine.on_change = worker.wake
        surface = SlackSurface(container, settings, wake=worker.wake)
        app: web.Application = await create_app(container)
        surface.mount(app)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        await surface.start()
        worker.start()
        try:
            async with aiohttp.ClientSession() as http:
                env = SlackEnv(fake, container, surface, str(server.make_url(EVENTS_PATH)), http, False)
                yield Multi(env, str(server.make_url("")).rstrip("/"), key, db, server)
        finally:
            await worker.stop()
            await server.close()
            await container.close()


@pytest.fixture
async def multi(tmp_path: Path) -> AsyncIterator[Multi]:
    async with _serving(tmp_path) as running:
        yield running


def _stored(db: Path) -> list[dict[str, Any]]:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM slack_installations ORDER BY team_id")).mappings()
            return [dict(r) for r in rows]
    finally:
        engine.dispose()


async def _audit_kinds(m: Multi) -> list[str]:
    return [e.kind for e in await m.container.store.audit_events()]


async def test_install_stores_the_workspace_with_its_tokens_encrypted(multi: Multi) -> None:
    status, page = await multi.install(TEAM_A)
    assert status == 200, page
    rows = _stored(multi.db)
    assert [r["team_id"] for r in rows] == [TEAM_A]
    token = next(t for t, v in multi.fake.oauth.tokens.items() if v.team_id == TEAM_A)
    assert rows[0]["bot_token"] != token
    assert token.encode() not in multi.db.read_bytes(), "no token in the database file"
    assert Fernet(multi.key.encode()).decrypt(rows[0]["bot_token"].encode()).decode() == token
    assert (rows[0]["bot_user_id"], rows[0]["user_id"]) == (f"UB{TEAM_A}", "UINSTALL1")
    assert "slack.installed" in await _audit_kinds(multi)
    events = [e for e in await multi.container.store.audit_events() if e.kind == "slack.installed"]
    assert token not in json.dumps(events[0].payload)


async def test_a_workspace_not_listed_in_signoff_slack_teams_installs_nothing(multi: Multi) -> None:
    # anyone can start the install flow from their own workspace; only the listed ones complete it
    status, page = await multi.install("T0EVIL999")
    assert status != 200, page
    assert _stored(multi.db) == []
    assert "slack.installed" not in await _audit_kinds(multi)
    before = len(multi.fake.calls_to("chat.postMessage"))
    await multi.command("run refund customer=ACME amount=10", "T0EVIL999")
    assert await multi.container.store.list_runs() == [], "its members start nothing"
    assert len(multi.fake.calls_to("chat.postMessage")) == before


async def test_a_redirect_with_a_forged_state_installs_nothing(multi: Multi) -> None:
    code = multi.fake.oauth.grant(TEAM_A)
    url = f"{multi.base}{REDIRECT_PATH}?code={code}&state=1700000000.abc.forged"
    cookie = {"Cookie": "slack-app-oauth-state=1700000000.abc.forged"}
    async with multi.env.http.get(url, headers=cookie, allow_redirects=False) as response:
        assert response.status == 401
    assert _stored(multi.db) == []
    assert not multi.fake.calls_to("oauth.v2.access"), "the code was never exchanged"


async def test_each_workspace_is_served_with_its_own_token(multi: Multi) -> None:
    assert (await multi.install(TEAM_A))[0] == 200
    assert (await multi.install(TEAM_B))[0] == 200
    await multi.command("run refund customer=ACME amount=10", TEAM_A)
    cp_a = await multi.open_checkpoint(TEAM_A)
    await multi.env.until(lambda: [c for c in multi.fake.calls_to("chat.postMessage") if has_buttons(c)])
    used_a = set(multi.fake.tokens_used("chat.postMessage"))
    assert used_a
    assert all(t.startswith(f"xoxb-{TEAM_A}-") for t in used_a), used_a
    assert (await multi.container.store.get_run(cp_a.run_id)).team == TEAM_A

    async def a_sent() -> bool:
        # every message of A's run has gone out before B's are told apart from them
        rows = await multi.container.store.list_deliveries(run_id=cp_a.run_id)
        return bool(rows) and all(d.status is not DeliveryStatus.pending for d in rows)

    await multi.env.until(a_sent, timeout=30)
    used_a = set(multi.fake.tokens_used("chat.postMessage"))
    assert all(t.startswith(f"xoxb-{TEAM_A}-") for t in used_a), used_a
    before = len(multi.fake.calls_to("chat.postMessage"))
    await multi.command("run refund customer=Globex amount=20", TEAM_B)
    await multi.open_checkpoint(TEAM_B)
    await multi.env.until(lambda: len(multi.fake.calls_to("chat.postMessage")) >= before + 2)
    used_b = set(multi.fake.tokens_used("chat.postMessage")[before:])
    assert used_b
    assert all(t.startswith(f"xoxb-{TEAM_B}-") for t in used_b), used_b
    # the group of role:manager was read with A's token for A's checkpoint
    assert any(t.startswith(f"xoxb-{TEAM_A}-") for t in multi.fake.tokens_used("usergroups.users.list"))


async def test_a_decision_from_another_workspace_is_refused(multi: Multi) -> None:
    await multi.install(TEAM_A)
    await multi.install(TEAM_B)
    await multi.command("run refund customer=ACME amount=10", TEAM_A)
    cp = await multi.open_checkpoint(TEAM_A)
    await multi.click(cp, MANAGER, TEAM_B)
    refused = await multi.env.until(
        lambda: [t for t in multi.env.replies(MANAGER) if "another Slack workspace" in t]
    )
    assert refused
    store = multi.container.store
    assert (await store.get_checkpoint(cp.id)).status is CheckpointStatus.open
    assert await store.list_decisions() == []
    refusals = [e for e in await store.audit_events() if e.kind == "decision.refused"]
    assert [(e.payload["rule"], e.payload["team"]) for e in refusals] == [("wrong_team", TEAM_B)]
    await multi.click(cp, MANAGER, TEAM_A)
    await multi.env.until(store.list_decisions)
    assert (await store.get_checkpoint(cp.id)).status is CheckpointStatus.resolved


async def test_uninstall_and_revoked_tokens_delete_the_installation(multi: Multi) -> None:
    await multi.install(TEAM_A)
    await multi.install(TEAM_B)
    multi.fake.oauth.revoke(TEAM_A)
    assert await multi.event(TEAM_A, {"type": "app_uninstalled"}) == 200
    await multi.env.until(lambda: [r["team_id"] for r in _stored(multi.db)] == [TEAM_B])
    revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [f"UB{TEAM_B}"]}}
    assert await multi.event(TEAM_B, revoked) == 200
    await multi.env.until(lambda: _stored(multi.db) == [])
    removed = [e for e in await multi.container.store.audit_events() if e.kind == "slack.uninstalled"]
    assert [(e.payload["team"], e.payload["reason"]) for e in removed] == [
        (TEAM_A, "app_uninstalled"),
        (TEAM_B, "tokens_revoked"),
    ]
    # a command from the uninstalled workspace starts nothing
    await multi.command("run refund customer=ACME amount=10", TEAM_A)
    assert await multi.container.store.list_runs() == []


async def test_an_expiring_token_is_rotated_and_the_new_one_is_used(multi: Multi) -> None:
    # a token that expires within the rotation window (2 hours): the next use refreshes it
    await multi.install(TEAM_A, expires_in=3600)
    first = next(t for t, v in multi.fake.oauth.tokens.items() if v.team_id == TEAM_A)
    assert first.startswith("xoxe.xoxb-")
    multi.fake.oauth.tokens[first].expires_at = 0.0  # and it has expired by now at Slack
    await multi.command("run refund customer=ACME amount=10", TEAM_A)
    await multi.open_checkpoint(TEAM_A)
    await multi.env.until(lambda: [c for c in multi.fake.calls_to("chat.postMessage") if has_buttons(c)])
    refreshes = [c for c in multi.fake.calls_to("oauth.v2.access") if c.params.get("grant_type")]
    assert len(refreshes) == 1, "rotated once, then the fresh token is used"
    used = set(multi.fake.tokens_used("chat.postMessage"))
    assert first not in used
    assert all(t.startswith(f"xoxe.xoxb-1-{TEAM_A}-") for t in used), used
    stored = Fernet(multi.key.encode()).decrypt(_stored(multi.db)[0]["bot_token"].encode()).decode()
    assert stored in used
    assert stored != first
    assert "slack.tokens_rotated" in await _audit_kinds(multi)


async def test_another_workspace_neither_sees_nor_cancels_a_run(multi: Multi) -> None:
    await multi.install(TEAM_A)
    await multi.install(TEAM_B)
    await multi.command("run refund customer=ACME amount=10", TEAM_A)
    cp = await multi.open_checkpoint(TEAM_A)
    env = multi.env
    await env.until(lambda: [t for t in env.replies(REQUESTER) if t.startswith("Started")])
    before = len(env.replies(MANAGER))  # response_url answers name no user: every reply so far
    asks = [f"{verb} {cp.run_id}" for verb in ("status", "cancel", "pause", "resume")]
    for text in [*asks, "inbox"]:
        await multi.command(text, TEAM_B, user=MANAGER)
    await env.until(lambda: len(env.replies(MANAGER)) >= before + 5)
    assert sorted(env.replies(MANAGER)[before:]) == sorted(
        [f"There is no run `{cp.run_id}`."] * 4 + ["Nothing is waiting for you. :tada:"]
    )
    found = await multi.container.store.get_run(cp.run_id)
    assert (found.status.value, found.paused_at) == ("waiting", None)
    await multi.command("inbox", TEAM_A, user=MANAGER)
    listed = await env.until(lambda: [t for t in env.replies(MANAGER) if t.startswith("Waiting")])
    assert cp.run_id in listed[0]


async def test_a_group_member_decides_outside_slack_with_the_checkpoints_workspace(multi: Multi) -> None:
    """The console, an email link, the API and the CLI decide outside any Slack request: the
    user group of a checkpoint is read in the checkpoint's own workspace, with its token. Before,
    with two workspaces installed, nothing said which one, the lookup failed closed and no member
    of a group could decide outside Slack."""
    await multi.install(TEAM_A)
    await multi.install(TEAM_B)
    await multi.command("run refund customer=ACME amount=10", TEAM_A)
    cp = await multi.open_checkpoint(TEAM_A)
    engine = multi.container.engine
    before = len(multi.fake.tokens_used("usergroups.users.list"))
    assert await engine.can_decide(cp, GROUP_MEMBER)
    decision = await engine.decide(
        Decide(checkpoint_id=cp.id, action="approve", actor=GROUP_MEMBER, channel="web")
    )
    assert decision is not None
    assert (await multi.container.store.get_checkpoint(cp.id)).status is CheckpointStatus.resolved
    # read now or when the cards were sent (a short cache): always with A's token
    read_with = multi.fake.tokens_used("usergroups.users.list")
    assert read_with
    assert all(t.startswith(f"xoxb-{TEAM_A}-") for t in read_with[before:]), read_with


async def test_with_mail_on_a_group_card_reaches_each_member_in_the_runs_workspace(tmp_path: Path) -> None:
    """With mail on, a card to a user group is split into one row per member (Slack or mail,
    whichever reaches them) before the Slack sender knows the workspace. The group is read in the
    checkpoint's workspace; before, with two workspaces installed, it read as empty and no member
    of the group got a card."""
    with smtp_server() as smtp:
        login = LoginSettings(
            smtp=SmtpSettings(host="127.0.0.1", port=smtp.port, sender="signoff@corp.example", starttls=False)
        )
        extra: dict[str, Any] = {
            "login": login,
            "secret_key_file": tmp_path / "secret_key",
            "public_url": "http://127.0.0.1:9",
        }
        async with _serving(tmp_path, **extra) as m:
            await m.install(TEAM_A)
            await m.install(TEAM_B)
            await m.command("run refund customer=ACME amount=10", TEAM_A)
            cp = await m.open_checkpoint(TEAM_A)

            def card_to_member() -> list[Call]:
                to = {m.fake.api.dm_channel(GROUP_MEMBER), GROUP_MEMBER}
                return [c for c in m.fake.calls_to("chat.postMessage") if c.params.get("channel") in to]

            await m.env.until(card_to_member, timeout=30)
            rows = await m.container.store.list_deliveries(checkpoint_id=cp.id)
            assert any(d.target == f"user:{GROUP_MEMBER}" for d in rows), [d.target for d in rows]
            tokens = set(m.fake.tokens_used("usergroups.users.list"))
            assert all(t.startswith(f"xoxb-{TEAM_A}-") for t in tokens), tokens


PAYOUT = """\
id: payout
title: Pay a supplier
nodes:
  - id: release
    type: human
    prompt: "Release the payment?"
    assignee: group:SPAYOUT01
"""
PAYERS = "SPAYOUT01"  # a user group of that id in each workspace, with other members
PAYER_B = "UPAYERB01"  # in the group in workspace B, where the run starts
PAYER_A = "UPAYERA01"  # in the group of the same id in workspace A only
ADMIN = "UADMIN001"  # ops_admin in the roles file


def _slack_person(user: str, team: str) -> dict[str, Any]:
    return {
        "sub": user,
        "https://slack.com/user_id": user,
        "https://slack.com/team_id": team,
        "email": f"{user.lower()}@corp.example",
        "email_verified": True,
        "name": user,
    }


@asynccontextmanager
async def _with_group_checkpoint(tmp_path: Path) -> AsyncIterator[tuple[Multi, FakeOidc, Checkpoint]]:
    """Two workspaces installed, a console that signs in with Slack (FakeOidc speaking as Slack),
    and an open checkpoint of workspace B assigned to B's user group ``PAYERS``."""
    async with (
        FakeOidc(person=_slack_person(PAYER_B, TEAM_B), slack=True, client_id="1234.5678") as idp,
        _group_checkpoint(tmp_path, idp) as (m, cp),
    ):
        yield m, idp, cp


@asynccontextmanager
async def _group_checkpoint(tmp_path: Path, idp: FakeOidc) -> AsyncIterator[tuple[Multi, Checkpoint]]:
    login = LoginSettings(
        providers=("slack",),
        slack=OidcClient(
            discovery_url=idp.base_url + "/.well-known/openid-configuration",
            client_id=idp.client_id,
            client_secret=SecretStr(idp.client_secret),
            label="Slack",
        ),
    )
    extra: dict[str, Any] = {
        "login": login,
        "secret_key_file": tmp_path / "secret_key",
        "public_url": "http://127.0.0.1:9",
    }
    async with _serving(tmp_path, workflows={"payout.yml": PAYOUT}, **extra) as m:
        m.fake.team_usergroups.update({TEAM_A: {PAYERS: [PAYER_A]}, TEAM_B: {PAYERS: [PAYER_B]}})
        await m.install(TEAM_A)
        await m.install(TEAM_B)
        await m.command("run payout", TEAM_B)
        yield m, await m.open_checkpoint(TEAM_B)


async def _console_inbox(m: Multi, idp: FakeOidc, user: str, team: str) -> str:
    """The console's "waiting for me" page of ``user`` signed in with Slack from ``team``."""
    idp.person = _slack_person(user, team)
    client = await browser(m.server)
    try:
        assert (await sign_in(client, "slack")).status == 303
        page = await client.get("/inbox")
        assert page.status == 200
        return await page.text()
    finally:
        await client.close()


async def test_a_group_member_sees_the_groups_checkpoint_in_the_console_with_two_workspaces(
    tmp_path: Path,
) -> None:
    """Outside a Slack request nothing says which workspace a user group belongs to: with two
    workspaces installed, "waiting for me" read the group nowhere and a member of the group that
    a checkpoint names did not find it in the console. The group is read in the workspace of the
    checkpoints assigned to it; a member of a group of the same id in another workspace, and
    anyone else, still see nothing."""
    async with _with_group_checkpoint(tmp_path) as (m, idp, cp):
        link = f'href="/checkpoints/{cp.id}"'
        text = await _console_inbox(m, idp, PAYER_B, TEAM_B)
        assert link in text
        assert 'Waiting for me <span class="count">1</span>' in text
        for user, team in ((PAYER_A, TEAM_A), (STRANGER, TEAM_B), (STRANGER, TEAM_A)):
            other = await _console_inbox(m, idp, user, team)
            assert link not in other, user
            assert 'Waiting for me <span class="count">0</span>' in other, user
        # read with B's token, the workspace of the checkpoint
        assert any(t.startswith(f"xoxb-{TEAM_B}-") for t in m.fake.tokens_used("usergroups.users.list"))


async def test_waiting_for_lists_a_group_checkpoint_only_for_its_members_in_its_workspace(
    tmp_path: Path,
) -> None:
    """``Engine.waiting_for``, which the console, the API's people and the CLI read: the member of
    B's group finds B's checkpoint, as a page of the assignee index, and so does the person
    standing in for them; the member of A's group of the same id does not."""
    async with _with_group_checkpoint(tmp_path) as (m, _, cp):
        engine = m.container.engine
        page = await engine.waiting_for(PAYER_B)
        assert [c.id for c in page.items] == [cp.id]
        assert f"group:{PAYERS}" in page.principals
        for user in (PAYER_A, STRANGER, REQUESTER, MANAGER):
            assert (await engine.waiting_for(user)).items == [], user
            assert f"group:{PAYERS}" not in await engine.principals_of(user), user
        until = engine.clock.now() + timedelta(days=1)
        await delegate(engine, delegator=PAYER_B, to=MANAGER, until=until, actor=ADMIN, channel="web")
        assert [c.id for c in (await engine.waiting_for(MANAGER)).items] == [cp.id]
        assert (await engine.waiting_for(PAYER_A)).items == []
        # the group of the same id gets a checkpoint in A too: each member finds their own only
        await m.command("run payout", TEAM_A)
        cp_a = await m.open_checkpoint(TEAM_A)
        assert [c.id for c in (await engine.waiting_for(PAYER_A)).items] == [cp_a.id]
        assert [c.id for c in (await engine.waiting_for(PAYER_B)).items] == [cp.id]
        assert (await engine.waiting_for(STRANGER)).items == []


async def test_a_role_held_through_a_user_group_lists_its_checkpoints_with_two_workspaces(
    tmp_path: Path,
) -> None:
    """``role:manager`` names the user group ``GROUP``: a member of it in workspace B finds B's
    checkpoint of that role outside Slack, a member of A's group of the same id does not."""
    async with _with_group_checkpoint(tmp_path) as (m, _, _cp):
        m.fake.team_usergroups[TEAM_A][GROUP] = [PAYER_A]
        m.fake.team_usergroups[TEAM_B][GROUP] = [GROUP_MEMBER]
        await m.command("run refund customer=Globex amount=20", TEAM_B)

        async def refund() -> list[Checkpoint]:
            cps = await m.container.store.list_checkpoints(open_only=True)
            return [c for c in cps if c.team == TEAM_B and c.node_id == "approval"]

        [cp] = await m.env.until(refund)
        engine = m.container.engine
        assert [c.id for c in (await engine.waiting_for(GROUP_MEMBER)).items] == [cp.id]
        assert "role:manager" in await engine.principals_of(GROUP_MEMBER)
        assert [c.id for c in (await engine.waiting_for(MANAGER)).items] == [cp.id]  # named
        for user in (PAYER_A, STRANGER):
            assert cp.id not in [c.id for c in (await engine.waiting_for(user)).items], user


async def test_a_workspace_whose_token_cannot_be_read_leaves_the_others_lists_whole(tmp_path: Path) -> None:
    """B's stored token cannot be opened (``SIGNOFF_TOKEN_KEY`` replaced without the old key):
    its user groups read as nobody, and "waiting for me" still answers, in Slack in workspace A
    and in the console, instead of failing for everyone."""
    async with _with_group_checkpoint(tmp_path) as (m, _, cp):
        store = m.container.store
        assert isinstance(store, InstallationStore)
        row = await store.get_installation(TEAM_B)
        assert row is not None
        await store.save_installation(row.model_copy(update={"bot_token": "gAAAAA-not-a-fernet-token"}), [])
        _clear_group_caches(m)
        assert await _slack_inbox_in_a(m, STRANGER) == []
        # outside Slack: B's group cannot be read, so its member is not found through it
        page = await m.container.engine.waiting_for(PAYER_B)
        assert cp.id not in [c.id for c in page.items]


async def test_a_slack_request_reads_no_user_group_of_another_workspace(tmp_path: Path) -> None:
    """App Home and /signoff inbox in workspace A show A's items only, so they read none of B's
    user groups with B's token (``usergroups.users.list`` is rate-limited per workspace)."""
    async with _with_group_checkpoint(tmp_path) as (m, _, _cp):
        _clear_group_caches(m)  # as after the cache's time to live

        def read_with_b() -> int:
            used = m.fake.tokens_used("usergroups.users.list")
            return len([t for t in used if t.startswith(f"xoxb-{TEAM_B}-")])

        before = read_with_b()
        assert await _slack_inbox_in_a(m, STRANGER) == []
        assert read_with_b() == before


async def _slack_inbox_in_a(m: Multi, user: str) -> list[Checkpoint]:
    """What App Home and /signoff inbox list for ``user`` in workspace A."""
    token = TEAM.set(TEAM_A)
    try:
        directory = m.container.engine.deps.directory
        assert directory is not None
        return await slack_waiting_for(m.container, directory, user)
    finally:
        TEAM.reset(token)


def _clear_group_caches(m: Multi) -> None:
    directory = m.container.engine.deps.directory
    assert isinstance(directory, TeamDirectory)
    for cached in directory.workspaces._directories.values():
        cached._cache.clear()
