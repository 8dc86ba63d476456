"""Values a workflow marks sensitive are masked on every surface, and given to the steps that use them.

Surface by surface: the console's run and checkpoint pages, the CLI (``show``, ``tasks``, their
``--json``), audit exports, Slack (cards, decided cards, App Home, ``/signoff status``) and the
process's logs. The step that uses the values gets them unmasked.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.config import Settings
from bot.web import add_routes
from bot.wiring import Container, build
from engine.commands import Decide
from engine.model import RunStatus
from tests.e2e._console import act_as, browser, serving
from tests.e2e._process import cli, env_for, free_port
from tests.e2e.conftest import RecordingSender
from tests.scenario._harness import MANAGER, SlackEnv, slack_env

CARD = "4242-4242-4242-4242"
OTP = "831-552-907"
CARD_FLOW = """\
id: charge
inputs:
  type: object
  properties:
    customer: {type: string}
    card: {type: string, x-signoff-sensitive: true}
  required: [customer, card]
nodes:
  - id: prep
    type: set
    data: {note: "charge {{ inputs.card }} for {{ inputs.customer }}"}
  - id: verify
    type: human
    kind: input
    prompt: "Code for {{ inputs.customer }}?"
    context: {card: "{{ inputs.card }}", note: "{{ nodes.prep.data.note }}"}
    assignee: role:ops
    response_schema: {type: object, properties: {otp: {type: string, writeOnly: true}}, required: [otp]}
  - id: approve
    type: human
    prompt: "Charge {{ inputs.customer }}?"
    assignee: role:ops
    options: [approve, reject, edit]
    response_schema:
      type: object
      properties: {card: {type: string, x-signoff-sensitive: true}, amount: {type: number}}
    proposed: {card: "{{ inputs.card }}", amount: 10}
  - id: done
    type: set
    data: {used: "{{ inputs.card }}/{{ nodes.verify.data.otp }}"}
edges:
  - {from: prep, to: verify}
  - {from: verify, to: approve}
  - {from: approve, to: done, when: "response.action == 'approve'"}
"""


def _clean(text: str, where: str) -> None:
    for secret in (CARD, OTP):
        assert secret not in text, f"{secret} shown in {where}"


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[Container]:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "charge.yml").write_text(CARD_FLOW)
    (tmp_path / "roles.yml").write_text("ops:\n  members: [user:olga, user:UMGR0001]\n")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 's.db'}",
        workflows_dir=tmp_path / "workflows",
        skills_dir=tmp_path / "none",
        roles_file=tmp_path / "roles.yml",
        workspace_dir=tmp_path / "workspaces",
        secret_key_file=tmp_path / "secret_key",
    )
    built = await build(settings, sender=RecordingSender(), with_sandbox=False)
    yield built
    await built.close()


async def _through(c: Container, caplog: pytest.LogCaptureFixture) -> tuple[str, list[str]]:
    """Start a run, answer the code and approve; returns the run id and the checkpoints."""
    caplog.set_level(logging.DEBUG)
    run = await c.engine.start("charge", {"customer": "ACME", "card": CARD}, requester="rita")
    await c.engine.drive(run.id)
    [verify] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    await c.engine.decide(Decide(checkpoint_id=verify.id, action="answer", actor="olga", data={"otp": OTP}))
    [approve] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    return run.id, [verify.id, approve.id]


async def test_console_cli_exports_and_logs_mask_them(
    local: Container, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_id, (verify_id, approve_id) = await _through(local, caplog)
    env = env_for(local.settings.database_url, tmp_path, free_port())
    # the open approval, as the CLI lists it
    for args in (["tasks"], ["tasks", "--json"], ["show", run_id], ["show", run_id, "--json"]):
        _clean((await asyncio.to_thread(cli, env, tmp_path, *args)).stdout, " ".join(args))
    app = web.Application()
    add_routes(app, local)
    async with serving(app) as server:
        client = await browser(server)
        try:
            await act_as(client, "olga")
            for path in (f"/runs/{run_id}", f"/checkpoints/{verify_id}", f"/checkpoints/{approve_id}", "/"):
                resp = await client.get(path)
                assert resp.status == 200
                _clean(await resp.text(), path)
        finally:
            await client.close()
    await local.engine.decide(Decide(checkpoint_id=approve_id, action="approve", actor="UMGR0001"))
    await local.engine.drive(run_id)
    finished = await local.store.get_run(run_id)
    assert finished.status is RunStatus.succeeded
    # the step that uses the values gets them
    done = next(s for s in await local.store.list_steps(run_id) if s.node_id == "done")
    assert done.output is not None
    assert done.output.data == {"used": f"{CARD}/{OTP}"}
    for args in (
        ["show", run_id],
        ["show", run_id, "--json"],
        ["audit", "export"],
        ["audit", "export", "--format", "csv"],
        ["audit", "show", run_id],
    ):
        _clean((await asyncio.to_thread(cli, env, tmp_path, *args)).stdout, " ".join(args))
    _clean("\n".join(r.getMessage() for r in caplog.records), "the logs")


async def test_slack_masks_them(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    roles = f"ops:\n  members: [user:{MANAGER}, user:olga]\n"
    async with slack_env(
        tmp_path, f"sqlite:///{tmp_path}/s.db", roles=roles, extra={"charge.yml": CARD_FLOW}
    ) as env:
        run_id, (_, approve_id) = await _through(env.container, caplog)
        await env.until(lambda: _cards_for(env, approve_id))
        await env.send("command", env.command(f"status {run_id}", MANAGER))
        await env.until(lambda: [t for t in env.replies(MANAGER) if run_id in t])
        await env.container.engine.decide(
            Decide(
                checkpoint_id=approve_id,
                action="approve",
                actor=MANAGER,
                channel="slack",
                team=env.fake.api.team_id,
            )
        )
        await env.until(
            lambda: [c for c in env.fake.calls_to("chat.update") if approve_id in json.dumps(c.params)]
        )
        sent = json.dumps([c.params for c in env.fake.calls], default=str)
        _clean(sent, "what was sent to Slack")
        _clean(json.dumps(env.fake.api.views, default=str), "App Home")
        _clean("\n".join(r.getMessage() for r in caplog.records), "the logs")


def _cards_for(env: SlackEnv, cp_id: str) -> list[object]:
    return [c for c in env.fake.calls_to("chat.postMessage") if cp_id in json.dumps(c.params)]
