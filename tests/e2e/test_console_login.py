"""Console sign-in with OpenID Connect (a company's provider, and Slack's), through the real server.

A fake provider on 127.0.0.1 serves discovery, a JWKS with an RSA key made here, the
authorization endpoint and the token endpoint; the console's Authlib client talks to it for
real. Each refused sign-in shows a page saying why, and changes nothing: no person, no session,
no audit event, and the browser is still not signed in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.fernet import Fernet
from pydantic import SecretStr
from yarl import URL

from bot.web._guard import GUARD
from bot.web._guard import install as install_guard
from engine.commands import Decide
from engine.installations import SlackInstallation
from engine.model import CheckpointStatus
from tests.e2e._console import Browser, decide, form_for
from tests.e2e._login import Console, at_provider, console, free_port, login_settings, sign_in, start_sign_in
from tests.fakes.oidc import FakeOidc, new_key

ANN = {"sub": "okta|ann", "email": "ann@corp.example", "email_verified": True, "name": "Ann Example"}


@pytest.fixture
async def idp() -> AsyncIterator[FakeOidc]:
    async with FakeOidc(person=dict(ANN)) as fake:
        yield fake


@pytest.fixture
async def slack_idp() -> AsyncIterator[FakeOidc]:
    person = {
        "sub": "U024BE7LH",
        "https://slack.com/user_id": "U024BE7LH",
        "https://slack.com/team_id": "T0001",
        "email": "ann@corp.example",
        "email_verified": True,
        "name": "Ann",
    }
    async with FakeOidc(person=person, slack=True, client_id="1234.5678") as fake:
        yield fake


@pytest.fixture
async def site(tmp_path: Path, idp: FakeOidc, slack_idp: FakeOidc) -> AsyncIterator[Console]:
    port = free_port()
    async with console(login_settings(tmp_path, port, oidc=idp, slack=slack_idp), port, team="T0001") as made:
        yield made


async def _state(site: Console) -> tuple[Any, ...]:
    people = site.container.people
    assert people is not None
    return (await people.list_people(), len(await site.container.store.audit_events()))


async def _signed_out(client: Browser) -> bool:
    resp = await client.get("/", allow_redirects=False)
    return resp.status == 303 and resp.headers["Location"].startswith("/login?")


async def _refused(site: Console, client: Browser, expected: str, **fake_changes: Any) -> None:
    before = await _state(site)
    resp = await sign_in(client, "oidc")
    text = await resp.text()
    assert resp.status == 403, text
    assert "Sign-in refused" in text
    assert expected in text
    assert await _state(site) == before
    assert await _signed_out(client)


async def test_pages_need_a_sign_in_and_a_good_one_lands_where_it_was_going(site: Console) -> None:
    client = await site.browser()
    resp = await client.get("/runs?status=waiting", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/login?next=/runs?status%3Dwaiting"
    before_cookie = _cookie(client)
    resp = await sign_in(client, "oidc", "/runs")
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/runs"
    after_cookie = _cookie(client)
    assert after_cookie != before_cookie  # a new session id at sign-in
    page = await client.get("/runs")
    assert page.status == 200
    assert "Signed in as <strong>Ann Example</strong>" in await page.text()
    assert "Acting as" not in await page.text()
    people = site.container.people
    assert people is not None
    [ann] = await people.list_people()
    assert set(ann.identities) == {f"oidc:{_issuer(site)}#okta|ann", "email:ann@corp.example"}
    kinds = [e.kind for e in await site.container.store.audit_events()]
    assert kinds == ["person.linked", "console.signed_in"]


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example/",
        "/%5Cevil.example/",
        "/%09/evil.example/",
        "/%0A/evil.example/",
        "https://evil.example/",
    ],
)
async def test_a_sign_in_never_lands_on_another_site(site: Console, next_path: str) -> None:
    # a planted /login?next=... must not send the freshly signed-in browser off the console
    client = await site.browser()
    resp = await sign_in(client, "oidc", next_path)
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith("/"), location
    assert not location.startswith(("//", "/\\")), location
    assert URL(location).host is None, location
    assert "evil.example" not in location


async def test_audit_pages_and_chart_data_need_a_sign_in(site: Console) -> None:
    client = await site.browser()
    for path in ("/audit?q=ann", "/runs/run_1/audit", "/stats/charts/latency?since=7d"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303, path
        assert resp.headers["Location"].startswith("/login?next=/"), path
    await sign_in(client, "oidc", "/audit")
    page = await client.get("/audit?kind=console.")
    assert page.status == 200
    assert "<code>console.signed_in</code>" in await page.text()
    chart = await client.get("/stats/charts/latency?since=7d")
    assert chart.status == 200
    assert (await chart.json())["chart"] == "latency"


def _issuer(site: Console) -> str:
    oidc = site.container.settings.login.oidc
    assert oidc is not None
    return oidc.discovery_url.removesuffix("/.well-known/openid-configuration")


async def test_a_wrong_audience_is_refused(site: Console, idp: FakeOidc) -> None:
    idp.claims = {"aud": "someone-else"}
    await _refused(site, await site.browser(), "did not vouch")
    # an ID token issued to another client is refused even when it names this one as its azp
    idp.claims = {"aud": "someone-else", "azp": idp.client_id}
    await _refused(site, await site.browser(), "aud")


async def test_an_expired_id_token_is_refused(site: Console, idp: FakeOidc) -> None:
    idp.claims = {"exp": 1_000_000_000, "iat": 999_999_000}
    await _refused(site, await site.browser(), "expired")


async def test_an_id_token_signed_with_another_key_is_refused(site: Console, idp: FakeOidc) -> None:
    idp.sign_with = new_key("k1")
    await _refused(site, await site.browser(), "did not vouch")


async def test_a_replayed_nonce_is_refused(site: Console, idp: FakeOidc) -> None:
    first = await site.browser()
    assert (await sign_in(first, "oidc")).status == 303
    idp.nonce = idp.nonces[0]  # the provider answers the next sign-in with the first one's nonce
    await _refused(site, await site.browser(), "nonce")


async def test_a_replayed_callback_is_refused(site: Console) -> None:
    client = await site.browser()
    callback = await at_provider(client, await start_sign_in(client, "oidc"))
    assert (await client.get(callback, allow_redirects=False)).status == 303
    other = await site.browser()
    before = await _state(site)
    for replay in (client, other):
        resp = await replay.get(callback, allow_redirects=False)
        assert resp.status == 403
        assert "already used" in await resp.text()
    assert await _state(site) == before
    assert await _signed_out(other)


async def test_a_callback_from_another_browser_is_refused(site: Console) -> None:
    victim, attacker = await site.browser(), await site.browser()
    callback = await at_provider(attacker, await start_sign_in(attacker, "oidc"))
    before = await _state(site)
    resp = await victim.get(callback, allow_redirects=False)  # login CSRF: a link planted on the victim
    assert resp.status == 403
    assert "another browser" in await resp.text()
    assert await _state(site) == before
    assert await _signed_out(victim)


async def test_an_unverified_or_unknown_address_may_not_sign_in(site: Console, idp: FakeOidc) -> None:
    idp.person = {"sub": "okta|eve", "email": "eve@elsewhere.example", "email_verified": True}
    await _refused(site, await site.browser(), "not allowed to sign in here")
    idp.person = {"sub": "okta|eve2", "email": "ann@corp.example", "email_verified": False}
    await _refused(site, await site.browser(), "not allowed to sign in here")


async def _open_release(site: Console) -> str:
    run = await site.container.engine.start("pay", {}, requester="rita")
    await site.container.engine.drive(run.id)
    [cp] = await site.container.store.list_checkpoints(run_id=run.id, open_only=True)
    return cp.id


async def test_a_tampered_cookie_is_no_session(site: Console) -> None:
    client = await site.browser()
    assert (await sign_in(client, "oidc")).status == 303
    cp_id = await _open_release(site)
    page = await client.get(f"/checkpoints/{cp_id}")
    form = form_for(await page.text(), f"/checkpoints/{cp_id}/decide", "approve")
    value = _cookie(client)
    tampered = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    _set_cookie(client, site, tampered)
    before = await site.container.store.get_checkpoint(cp_id)
    resp = await client.post(f"/checkpoints/{cp_id}/decide", data=form.hidden, allow_redirects=False)
    assert resp.status == 403
    assert "session is missing or has expired" in await resp.text()
    assert await site.container.store.get_checkpoint(cp_id) == before
    assert await _signed_out(client)


async def test_a_form_without_its_csrf_token_changes_nothing(site: Console) -> None:
    client = await site.browser()
    assert (await sign_in(client, "oidc")).status == 303
    cp_id = await _open_release(site)
    page = await client.get(f"/checkpoints/{cp_id}")
    form = form_for(await page.text(), f"/checkpoints/{cp_id}/decide", "approve")
    data = {k: v for k, v in form.hidden.items() if k != "csrf"}
    before = await site.container.store.get_checkpoint(cp_id)
    resp = await client.post(f"/checkpoints/{cp_id}/decide", data=data, allow_redirects=False)
    assert resp.status == 403
    assert "security token is missing" in await resp.text()
    assert await site.container.store.get_checkpoint(cp_id) == before


async def test_a_signed_in_email_member_decides_as_herself(site: Console) -> None:
    client = await site.browser()
    assert (await sign_in(client, "oidc")).status == 303
    cp_id = await _open_release(site)
    resp = await decide(client, cp_id, action="approve")
    assert resp.status == 303, await resp.text()
    cp = await site.container.store.get_checkpoint(cp_id)
    assert cp.approvals == ["email:ann@corp.example"]
    # choosing another name is not possible with a login
    page = await client.get("/")
    assert "/actor" not in await page.text()
    refused = await client.post("/actor", data={"actor": "felix", "csrf": _csrf(await page.text())})
    assert refused.status == 403


def _cookie(client: Browser) -> str:
    return next(c.value for c in client.session.cookie_jar if c.key == "signoff_session")


def _set_cookie(client: Browser, site: Console, value: str) -> None:
    jar = client.session.cookie_jar
    jar.clear()
    jar.update_cookies({"signoff_session": value}, URL(site.url))


def _csrf(page: str) -> str:
    return form_for(page, "/logout").hidden["csrf"]


async def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(site: Console) -> None:
    client = await site.browser()
    assert (await sign_in(client, "oidc")).status == 303
    stolen = _cookie(client)
    page = await client.get("/")
    resp = await client.post("/logout", data={"csrf": _csrf(await page.text())}, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/login?out=1"
    assert await _signed_out(client)
    thief = await site.browser()
    _set_cookie(thief, site, stolen)
    assert await _signed_out(thief)
    assert (await site.container.store.audit_events())[-1].kind == "console.signed_out"


async def test_idle_and_absolute_expiry(site: Console) -> None:
    login = site.container.settings.login
    client = await site.browser()
    assert (await sign_in(client, "oidc")).status == 303
    site.clock.advance(login.idle.total_seconds() - 60)
    assert (await client.get("/", allow_redirects=False)).status == 200  # activity moves the idle deadline
    site.clock.advance(login.idle.total_seconds() - 60)
    assert (await client.get("/", allow_redirects=False)).status == 200
    site.clock.advance(login.idle.total_seconds())
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 303
    assert "expired=1" in resp.headers["Location"]
    page = await client.get(resp.headers["Location"])
    assert "Your session has expired" in await page.text()
    # a session kept busy still ends at the absolute limit
    assert (await sign_in(client, "oidc")).status == 303
    steps = int(login.absolute / (login.idle / 2))
    for _ in range(steps - 1):
        site.clock.advance(login.idle.total_seconds() / 2)
        assert (await client.get("/", allow_redirects=False)).status == 200
    site.clock.advance(login.idle.total_seconds() / 2)
    assert await _signed_out(client)


# ---------------------------------------------------------------- Sign in with Slack


async def test_sign_in_with_slack_links_the_slack_id_to_the_email_member(
    site: Console, slack_idp: FakeOidc
) -> None:
    client = await site.browser()
    resp = await sign_in(client, "slack")
    assert resp.status == 303, await resp.text()
    assert (
        slack_idp.token_requests[0]["client_secret"] == slack_idp.client_secret
    )  # Slack takes it in the form
    people = site.container.people
    assert people is not None
    ann = await people.find_person("email:ann@corp.example")
    assert ann is not None
    assert "user:U024BE7LH" in ann.identities
    assert ann.actor == "U024BE7LH"
    # the same person deciding from Slack and from the console counts once toward the quorum
    cp_id = await _open_release(site)
    vote = Decide(checkpoint_id=cp_id, action="approve", actor="U024BE7LH", channel="slack", team="T0001")
    assert await site.container.engine.decide(vote) is None
    resp = await decide(client, cp_id, action="approve")
    assert resp.status == 403
    assert "already approved" in await resp.text()
    cp = await site.container.store.get_checkpoint(cp_id)
    assert cp.approvals == ["U024BE7LH"]
    assert cp.status is CheckpointStatus.open
    assert (await site.container.store.audit_events())[-1].kind == "decision.refused"


async def test_a_slack_account_of_another_workspace_is_refused(site: Console, slack_idp: FakeOidc) -> None:
    slack_idp.claims = {"https://slack.com/team_id": "T_OTHER"}
    client = await site.browser()
    before = await _state(site)
    resp = await sign_in(client, "slack")
    assert resp.status == 403
    assert "another workspace" in await resp.text()
    assert await _state(site) == before
    assert await _signed_out(client)


async def test_slack_mode_serves_the_console_when_people_sign_in(tmp_path: Path, idp: FakeOidc) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.server import create_app
    from bot.wiring import build

    port = free_port()
    slack = {"slack_bot_token": "xoxb-test", "slack_signing_secret": "s" * 32}
    settings = login_settings(tmp_path, port, oidc=idp).model_copy(update=slack)
    container = await build(settings, with_sandbox=False)
    try:
        async with TestClient(TestServer(await create_app(container), host="127.0.0.1", port=port)) as client:
            assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/login?next=/"
            assert "Sign in with Corp SSO" in await (await client.get("/login")).text()
        without = settings.model_copy(update={"login": settings.login.model_copy(update={"providers": ()})})
        container.settings = without
        async with TestClient(TestServer(await create_app(container), host="127.0.0.1")) as client:
            assert (await client.get("/login")).status == 404
    finally:
        await container.close()


async def test_with_many_workspaces_members_of_an_installed_one_sign_in_with_slack(
    tmp_path: Path, slack_idp: FakeOidc
) -> None:
    port = free_port()
    settings = login_settings(tmp_path, port, slack=slack_idp).model_copy(
        update={
            "slack_signing_secret": "s" * 32,
            "slack_client_id": slack_idp.client_id,
            "slack_client_secret": SecretStr(slack_idp.client_secret),
            "token_key": SecretStr(Fernet.generate_key().decode()),
            "slack_teams": frozenset({"T0001"}),
        }
    )
    assert settings.slack_multi
    async with console(settings, port) as made:
        installs = made.container.installations
        assert installs is not None
        now = datetime.now(UTC)
        client = await made.browser()
        refused = await sign_in(client, "slack")
        assert refused.status == 403, "no workspace installed Signoff yet"
        assert "another workspace" in await refused.text()
        await installs.save_installation(
            SlackInstallation(team_id="T0001", installed_at=now, updated_at=now), []
        )
        resp = await sign_in(client, "slack")
        assert resp.status == 303, await resp.text()
        people = made.container.people
        assert people is not None
        assert await people.find_person("user:U024BE7LH") is not None


async def test_an_open_event_stream_ends_with_its_session(site: Console) -> None:
    import asyncio

    client = await site.browser()
    assert (await sign_in(client, "oidc")).status == 303
    stream = await client.get("/events")
    assert stream.status == 200
    page = await client.get("/")
    csrf = form_for(await page.text(), "/logout").hidden["csrf"]
    assert (await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)).status == 303
    # something happens after the sign-out: the stream ends before it says anything about it
    run = await site.container.engine.start("pay", {}, requester="fred")
    await site.container.engine.drive(run.id)
    got = b""
    async with asyncio.timeout(60):
        while chunk := await stream.content.readany():
            got += chunk
    assert stream.content.at_eof(), "the stream ended"
    assert run.id.encode() not in got
    assert b"checkpoint.opened" not in got


@pytest.mark.parametrize(("public_url", "secure"), [("https://signoff.corp.example", True), (None, False)])
def test_the_session_cookie_is_secure_behind_https(
    tmp_path: Path, idp: FakeOidc, public_url: str | None, secure: bool
) -> None:
    # with people signing in, a cookie sent over plain HTTP would hand the session to the network
    settings = login_settings(tmp_path, free_port(), oidc=idp)
    if public_url:
        settings = settings.model_copy(update={"public_url": public_url})
    app = web.Application()
    install_guard(app, settings)
    response = web.Response()
    app[GUARD].sessions.set_cookie(response, "sid")
    cookie = response.cookies["signoff_session"]
    assert bool(cookie["secure"]) is secure
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"  # the provider's redirect back is a cross-site navigation
