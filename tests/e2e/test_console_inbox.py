"""The person's console: waiting for me (paged, counted in the header), my decisions, role pages
that say who is in a role and whether you can decide, and runs with search and pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.web import add_routes
from bot.wiring import Container
from engine.commands import Decide
from engine.delegation import delegate
from tests.e2e._console import Browser, act_as, browser, decide, serving
from tests.e2e._login import PAY, ROLES, Console, console, free_port, login_settings, sign_in
from tests.fakes.oidc import FakeOidc

ANN = {"sub": "okta|ann", "email": "ann@corp.example", "email_verified": True, "name": "Ann Example"}


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Console]:
    async with FakeOidc(person=dict(ANN)) as idp:
        port = free_port()
        async with console(login_settings(tmp_path, port, oidc=idp), port) as made:
            made.idp = idp
            yield made


@pytest.fixture
async def ann(site: Console) -> Browser:
    client = await site.browser()
    assert (await sign_in(client, "oidc")).status == 303
    return client


async def _open(c: Container, count: int = 1, requester: str = "rita") -> list[str]:
    ids = []
    for _ in range(count):
        run = await c.engine.start("pay", {}, requester=requester)
        await c.engine.drive(run.id)
        [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
        ids.append(cp.id)
    return ids


def _links(page: str) -> list[str]:
    return re.findall(r'href="(/checkpoints/[^"]+)"', page)


async def test_waiting_for_me_is_paged_and_counted_in_the_header(site: Console, ann: Browser) -> None:
    opened = await _open(site.container, 30)
    site.clock.advance(1)
    mine = await _open(
        site.container, 1, requester="email:ann@corp.example"
    )  # her own request: not hers to decide
    page = await ann.get("/inbox")
    text = await page.text()
    assert page.status == 200
    assert 'Waiting for me <span class="count">30</span>' in text
    first = _links(text)
    assert 20 <= len(first) <= 25  # a page drops what she may not decide (her own request)
    older = re.search(r'href="(/inbox\?before=[^"]+)"', text)
    assert older is not None
    rest = _links(await (await ann.get(older.group(1).replace("&amp;", "&"))).text())
    assert sorted(first + rest) == sorted(f"/checkpoints/{i}" for i in opened)
    assert f"/checkpoints/{mine[0]}" not in first + rest


async def test_a_role_member_is_told_they_can_decide(site: Console, ann: Browser) -> None:
    [cp_id] = await _open(site.container)
    text = await (await ann.get(f"/checkpoints/{cp_id}")).text()
    assert "You can decide this checkpoint" in text
    assert "not listed as an assignee" not in text
    role = await (await ann.get("/roles/finance")).text()
    assert "You are in this role." in role
    assert "Ann Example" in role  # the person behind email:ann@corp.example
    assert "you can decide" in role
    assert "finance" in await (await ann.get("/roles")).text()
    assert (await ann.get("/roles/nope")).status == 404


async def test_a_delegate_sees_what_they_stand_in_for(site: Console, ann: Browser) -> None:
    [cp_id] = await _open(site.container)
    c = site.container
    # felix, a finance member, hands his authority to ann's colleague dave for a week
    until = c.clock.now() + timedelta(days=7)
    await delegate(
        c.engine, delegator="felix", to="email:dave@corp.example", until=until, actor="felix", channel="cli"
    )
    dave = await site.browser()
    await _sign_in_by_oidc_as(site, dave, "dave")
    page = await dave.get(f"/checkpoints/{cp_id}")
    assert "You can decide this checkpoint" in await page.text()
    assert f"/checkpoints/{cp_id}" in await (await dave.get("/inbox")).text()
    assert (await decide(dave, cp_id, action="approve")).status == 303
    assert (await c.store.get_checkpoint(cp_id)).approvals == ["felix"]  # his vote, cast by dave


async def _sign_in_by_oidc_as(site: Console, client: Browser, name: str) -> None:
    idp = site.idp
    assert idp is not None
    idp.person = {
        "sub": f"okta|{name}",
        "email": f"{name}@corp.example",
        "email_verified": True,
        "name": name,
    }
    assert (await sign_in(client, "oidc")).status == 303


async def test_my_decisions_lists_mine_under_any_identity(site: Console, ann: Browser) -> None:
    first, second = await _open(site.container, 2)
    assert (await decide(ann, first, action="reject")).status == 303
    await site.container.engine.decide(
        Decide(checkpoint_id=second, action="reject", actor="felix", channel="slack")
    )
    text = await (await ann.get("/mine")).text()
    assert f"/checkpoints/{first}" in text
    assert f"/checkpoints/{second}" not in text


async def test_runs_are_searched_and_paged(site: Console, ann: Browser) -> None:
    c = site.container
    for i in range(55):
        await c.engine.start("pay", {}, requester="rita" if i % 5 else "sam")
        site.clock.advance(1)
    text = await (await ann.get("/runs")).text()
    runs = re.findall(r'href="/runs/(run_[^"]+)"', text)
    assert len(runs) == 50
    older = re.search(r'href="(/runs\?before=[^"]+)"', text)
    assert older is not None
    rest = re.findall(
        r'href="/runs/(run_[^"]+)"', await (await ann.get(older.group(1).replace("&amp;", "&"))).text()
    )
    assert len(set(runs + rest)) == 55
    found = await (await ann.get("/runs?q=SAM")).text()
    assert len(re.findall(r'href="/runs/(run_[^"]+)"', found)) == 11


# ---------------------------------------------------------------- without a login (local mode)


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "pay.yml").write_text(PAY, encoding="utf-8")
    (tmp_path / "roles.yml").write_text(ROLES, encoding="utf-8")
    return folder


@pytest.fixture
async def local(container: Container) -> AsyncIterator[TestServer]:
    app = web.Application()
    add_routes(app, container)
    async with serving(app) as server:
        yield server


async def test_locally_a_role_member_is_not_told_they_are_not_an_assignee(
    container: Container, local: TestServer
) -> None:
    [cp_id] = await _open(container)
    felix = await browser(local)
    try:
        await act_as(felix, "felix")
        text = await (await felix.get(f"/checkpoints/{cp_id}")).text()
        assert "You can decide this checkpoint" in text
        assert "not listed as an assignee" not in text
        inbox = await (await felix.get("/inbox")).text()
        assert f"/checkpoints/{cp_id}" in inbox
        await act_as(felix, "mallory")
        text = await (await felix.get(f"/checkpoints/{cp_id}")).text()
        assert "mallory cannot decide this checkpoint" in text
    finally:
        await felix.close()
