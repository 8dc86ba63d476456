"""Every path that can decide x every rule of the decision gate.

Each case sets up a checkpoint, makes one attempt the gate must refuse through one real surface,
and asserts the same three things whatever the path: the person is told why (where they are),
nothing changed in the database, and exactly one ``decision.refused`` audit event records who
tried what and the rule that refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.blocks.checkpoint import APPROVE, CONFIRM_SUBMIT
from bot.blocks.modals import CONFIRM_BLOCK
from bot.config import Settings
from bot.web import add_routes
from bot.wiring import Container, build
from engine.commands import Decide
from engine.delegation import delegate
from engine.errors import NotAllowed
from engine.ports import CheckpointUpdate
from engine.timeouts import Timeouts
from tests.e2e._console import act_as, browser, payload, serving
from tests.e2e._process import cli, env_for, free_port
from tests.e2e.conftest import RecordingSender
from tests.scenario._harness import SlackEnv, fixture, slack_env

PAY = """\
id: pay
inputs: {type: object, properties: {amount: {type: number}}, required: [amount]}
nodes:
  - id: release
    type: human
    title: Release the payment
    prompt: "Release {{ inputs.amount }} USD?"
    assignee: role:payers
    quorum: 2
    options: [approve, reject, edit]
    response_schema: {type: object, properties: {amount: {type: number, title: Amount (USD)}}}
    proposed: {amount: "{{ inputs.amount }}"}
    timeout: 1h
  - {id: paid, type: set, data: {ok: true}}
edges: [{from: release, to: paid, when: "response.action != 'reject'"}]
"""
WORD = """\
id: word
nodes:
  - {id: wire, type: human, prompt: "Wire?", assignee: role:payers, confirm: PAY, options: [approve, reject]}
"""
CHANNEL = """\
id: chan
nodes:
  - {id: queue, type: human, prompt: "Anyone in the queue?", assignee: "channel:CQUEUE"}
"""
ROLES = """\
payers:
  members: [user:UP1, user:UP2, user:UP3]
  delegates: [user:UD1]
"""


@dataclass
class Case:
    """One refused attempt: the checkpoint it is made on, who makes it, and the rule that refuses."""

    rule: str
    workflow: str
    actor: str
    action: str = "approve"
    requester: str = "UREQ"
    stale: bool = False  # the attempt is made on the copy shown before a quorum edit
    confirm: str | None = None
    told: str = ""  # what the refusal says


CASES = {
    "not_assignee": Case("not_assignee", "pay", "USTRANGER", told="only the assignees"),
    "self_approval": Case("self_approval", "pay", "UP1", requester="UP1", told="you started this run"),
    "delegate_counted_twice": Case("already_voted", "pay", "UD1", told="already approved"),
    "channel_non_member": Case("not_assignee", "chan", "UOUTSIDE", told="only the assignees"),
    "stale_version": Case("stale_version", "pay", "UP1", stale=True, told="after your copy was shown"),
    "confirm_word": Case("confirm_word", "word", "UP1", confirm="NOPE", told="type PAY to confirm"),
}


@contextlib.asynccontextmanager
async def _process(tmp_path: Path, database_url: str) -> AsyncIterator[Container]:
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name, text in {"pay": PAY, "word": WORD, "chan": CHANNEL}.items():
        (folder / f"{name}.yml").write_text(text, encoding="utf-8")
    (tmp_path / "roles.yml").write_text(ROLES, encoding="utf-8")
    settings = Settings(
        database_url=database_url,
        workflows_dir=folder,
        skills_dir=tmp_path / "none",
        roles_file=tmp_path / "roles.yml",
        workspace_dir=tmp_path / "workspaces",
        secret_key_file=tmp_path / "secret_key",
    )
    built = await build(settings, sender=RecordingSender(), with_sandbox=False)
    assert not built.catalog.errors, [str(e) for e in built.catalog.errors]
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def container(tmp_path: Path, database_url: str) -> AsyncIterator[Container]:
    """A process on SQLite or PostgreSQL."""
    async with _process(tmp_path, database_url) as built:
        yield built


@pytest.fixture
async def sqlite_container(tmp_path: Path) -> AsyncIterator[Container]:
    """A process on a SQLite file, which a CLI process can open too."""
    async with _process(tmp_path, f"sqlite:///{tmp_path / 'gate.db'}") as built:
        yield built


async def _prepare(c: Container, case: Case) -> str:
    """The checkpoint of ``case``, as it is when the person's copy is shown."""
    inputs = {"amount": 100} if case.workflow == "pay" else {}
    run = await c.engine.start(case.workflow, inputs, requester=case.requester)
    await c.engine.drive(run.id)
    [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    if case.rule == "already_voted":
        until = c.clock.now() + timedelta(days=2)
        await delegate(c.engine, delegator="UP1", to="UD1", until=until, actor="UP1", channel="cli")
        await c.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="UP1"))
    return cp.id


async def _after_showing(c: Container, case: Case, cp_id: str) -> None:
    """What happens between the copy being shown and the attempt (a quorum edit, for a stale copy)."""
    if case.stale:
        await c.engine.decide(Decide(checkpoint_id=cp_id, action="edit", actor="UP2", data={"amount": 500}))


async def _snapshot(c: Container, cp_id: str) -> tuple[Any, ...]:
    cp = await c.store.get_checkpoint(cp_id)
    return (
        cp,
        await c.store.get_run(cp.run_id),
        await c.store.list_steps(cp.run_id),
        await c.store.list_decisions(run_id=cp.run_id),
    )


async def _refused(c: Container, case: Case, cp_id: str, attempt: Callable[[], Awaitable[str]]) -> None:
    before = await _snapshot(c, cp_id)
    events = len(await c.store.audit_events())
    told = await attempt()
    assert case.told in told, told
    assert await _snapshot(c, cp_id) == before
    new = (await c.store.audit_events())[events:]
    assert [(e.kind, e.actor) for e in new] == [("decision.refused", case.actor)], new
    assert new[0].payload["rule"] == case.rule
    assert new[0].checkpoint_id == cp_id


# ---------------------------------------------------------------- the web console


@pytest.mark.parametrize("name", list(CASES))
async def test_the_console_refuses(container: Container, name: str) -> None:
    case = CASES[name]
    app = web.Application()
    add_routes(app, container)
    async with serving(app) as server:
        client = await browser(server)
        try:
            await act_as(client, case.actor)
            cp_id = await _prepare(container, case)
            target = f"/checkpoints/{cp_id}/decide"
            form = await payload(client, f"/checkpoints/{cp_id}", target, case.action)
            await _after_showing(container, case, cp_id)
            if case.confirm is not None:
                form["confirm"] = case.confirm

            async def attempt() -> str:
                resp = await client.post(target, data=form, allow_redirects=False)
                assert resp.status in (403, 409), resp.status
                return await resp.text()

            await _refused(container, case, cp_id, attempt)
        finally:
            await client.close()


# ---------------------------------------------------------------- the CLI


@pytest.mark.parametrize("name", list(CASES))
async def test_the_cli_refuses(sqlite_container: Container, tmp_path: Path, name: str) -> None:
    case, c = CASES[name], sqlite_container
    cp_id = await _prepare(c, case)
    reviewed = (await c.store.get_checkpoint(cp_id)).version  # what `signoff tasks` showed
    await _after_showing(c, case, cp_id)
    env = env_for(
        c.settings.database_url, tmp_path, free_port(), SIGNOFF_ROLES_FILE=str(tmp_path / "roles.yml")
    )
    args = ["respond", cp_id, case.action, "--as", case.actor, "--version", str(reviewed)]
    if case.confirm is not None:
        args += ["--confirm", case.confirm]

    async def attempt() -> str:
        result = await asyncio.to_thread(cli, env, tmp_path, *args, check=2)
        return " ".join(result.stderr.split())

    await _refused(c, case, cp_id, attempt)


# ---------------------------------------------------------------- timers


async def test_a_timer_cannot_decide_before_the_deadline(container: Container) -> None:
    run = await container.engine.start("pay", {"amount": 100}, requester="UREQ")
    await container.engine.drive(run.id)
    [cp] = await container.store.list_checkpoints(run_id=run.id, open_only=True)
    assert await Timeouts(container.engine).fire_deadline(cp.id) == "not due"
    case = Case("not_due", "pay", "policy:auto_reject", action="reject", told="has not passed")
    forged = Decide(
        checkpoint_id=cp.id,
        action="reject",
        actor="policy:auto_reject",
        channel="scheduler",
        resolved_by="timeout",
        rule="auto_reject",
    )

    async def attempt() -> str:
        with pytest.raises(NotAllowed) as info:
            await container.engine.decide(forged)
        return str(info.value)

    await _refused(container, case, cp.id, attempt)


async def test_a_timer_approves_only_where_the_workflow_says_so(container: Container) -> None:
    run = await container.engine.start("pay", {"amount": 100}, requester="UREQ")
    await container.engine.drive(run.id)
    [cp] = await container.store.list_checkpoints(run_id=run.id, open_only=True)
    case = Case("no_auto_approve", "pay", "policy:auto_approve", told="does not approve")
    forged = Decide(
        checkpoint_id=cp.id,
        action="approve",
        actor="policy:auto_approve",
        channel="scheduler",
        resolved_by="timeout",
        rule="auto_approve",
    )
    # the deadline passes (moved in the store: the process runs on the wall clock)
    now = container.clock.now()
    passed = CheckpointUpdate(
        checkpoint_id=cp.id, expected_version=cp.version, at=now, due_at=now - timedelta(1)
    )
    await container.store.update_checkpoint(passed)

    async def attempt() -> str:
        with pytest.raises(NotAllowed) as info:
            await container.engine.decide(forged)
        return str(info.value)

    await _refused(container, case, cp.id, attempt)


# ---------------------------------------------------------------- Slack (signed requests over HTTP)

SLACK_PATHS = ["button", "home", "modal"]
SLACK_CASES = {**CASES, "wrong_team": Case("wrong_team", "pay", "UP1", told="another Slack workspace")}


def _slack_applies(path: str, name: str) -> bool:
    # on a card or the Home tab, a confirm word opens a form: the word is checked on its submission
    return not (name == "confirm_word" and path != "modal")


# what Slack says for each rule (its own words, in bot/messages.py)
SLACK_TOLD = {
    "not_assignee": "can decide this. nothing was changed",
    "self_approval": "cannot approve your own request",
    "delegate_counted_twice": "already approved",
    "channel_non_member": "can decide this. nothing was changed",
    "stale_version": "after your copy was shown",
    "confirm_word": "type pay exactly to confirm",
    "wrong_team": "another slack workspace",
}


@pytest.mark.parametrize(
    ("path", "name"),
    [(p, n) for p in SLACK_PATHS for n in SLACK_CASES if _slack_applies(p, n)],
)
async def test_slack_refuses(tmp_path: Path, path: str, name: str) -> None:
    case = replace(SLACK_CASES[name], told=SLACK_TOLD[name])
    extra = {"pay.yml": PAY, "word.yml": WORD, "chan.yml": CHANNEL}
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db", roles=ROLES, extra=extra) as env:
        env.fake.api.channel_members["CQUEUE"] = ["UINSIDE"]
        c = env.container
        cp_id = await _prepare(c, case)
        shown = (await c.store.get_checkpoint(cp_id)).version
        await _after_showing(c, case, cp_id)
        payload = _slack_payload(env, path, cp_id, shown, case)
        if name == "wrong_team":
            payload["team"] = {"id": "TOTHER", "domain": "other"}
            payload["user"]["team_id"] = "TOTHER"

        async def attempt() -> str:
            status, ack = await env.send("interaction", payload)
            assert status == 200
            if path == "modal":
                return json.dumps(ack).lower()
            said = await env.until(lambda: [t for t in _private(env, case.actor) if case.told in t.lower()])
            return str(said[0]).lower()

        await _refused(c, case, cp_id, attempt)


def _private(env: SlackEnv, user: str) -> list[str]:
    """What only ``user`` was told: response_url posts, ephemerals, or a DM (a Home click has
    neither a response_url nor a channel)."""
    dm = env.fake.api.dm_channel(user)
    direct = [
        str(c.params.get("text")) for c in env.fake.calls_to("chat.postMessage") if c.params["channel"] == dm
    ]
    return [*env.replies(user), *direct]


def _slack_payload(env: SlackEnv, path: str, cp_id: str, version: int, case: Case) -> dict[str, Any]:
    if path == "modal":
        view = {
            "callback_id": CONFIRM_SUBMIT,
            "private_metadata": json.dumps({"checkpoint_id": cp_id, "version": version}),
            "blocks": [],
        }
        values = {CONFIRM_BLOCK: {"value": {"type": "plain_text_input", "value": case.confirm or ""}}}
        return env.submission(view, values, case.actor)
    click = env.click(APPROVE, cp_id, case.actor)
    click["actions"][0]["block_id"] = f"actions:v{version}:{cp_id}"
    if path == "home":
        home = fixture("block_actions_home_tab.docs.json")
        env.our_team(home)
        home["user"]["id"] = case.actor
        home["trigger_id"] = click["trigger_id"]
        home["actions"] = click["actions"]
        return dict(home)
    return click
