"""A quorum edit replaces a sensitive proposed value: the value it replaced stays masked on the
run page and the audit pages, where its edit's diff and the upstream step still hold it."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.config import Settings
from bot.web import add_routes
from bot.wiring import build
from engine.commands import Decide
from tests.e2e.conftest import RecordingSender

PAYOUT = """\
id: payout
title: Payout
nodes:
  - id: lookup
    type: set
    data: {account: "DE89370400440532013000"}
  - id: check
    type: human
    title: Check the payout
    prompt: "Pay out?"
    proposed: {account: "{{ nodes.lookup.data.account }}"}
    response_schema:
      type: object
      properties:
        account: {type: string, writeOnly: true}
    options: [approve, reject, edit]
    assignee: [user:alice, user:bob, user:carol]
    quorum: 2
  - {id: done, type: set, data: {ok: true}}
edges:
  - {from: lookup, to: check}
  - {from: check, to: done, when: "response.action == 'approve' || response.action == 'edit'"}
"""
OLD, NEW = "DE89370400440532013000", "GB29NWBK60161331926819"


async def test_the_value_a_quorum_edit_replaced_stays_masked(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "payout.yml").write_text(PAYOUT, encoding="utf-8")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/s.db",
        workflows_dir=tmp_path / "workflows",
        skills_dir=tmp_path / "none",
        roles_file=tmp_path / "roles.yml",
        workspace_dir=tmp_path / "ws",
        secret_key_file=tmp_path / "secret_key",
    )
    c = await build(settings, sender=RecordingSender(), with_sandbox=False)
    app = web.Application()
    add_routes(app, c)
    try:
        async with TestClient(TestServer(app)) as client:
            run = await c.engine.start("payout", {}, requester="rita")
            await c.engine.drive(run.id)
            (cp,) = await c.store.list_checkpoints(run_id=run.id, open_only=True)
            pages = (f"/runs/{run.id}", f"/runs/{run.id}/audit", "/audit")

            async def clear(value: str) -> list[str]:
                return [p for p in pages if value in await (await client.get(p)).text()]

            assert await clear(OLD) == []
            edit = Decide(
                checkpoint_id=cp.id, action="edit", actor="alice", channel="web", data={"account": NEW}
            )
            await c.engine.decide(edit)
            assert (await c.store.get_checkpoint(cp.id)).proposed == {"account": NEW}
            kinds = [e.kind for e in await c.store.audit_events(run_id=run.id)]
            assert "checkpoint.edited" in kinds
            assert await clear(OLD) == [], "the replaced value is still masked"
            assert await clear(NEW) == [], "and so is the new one"
    finally:
        await c.close()
