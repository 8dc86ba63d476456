"""The web console's edges: DNS rebinding (Host), CSRF, origins, framing and response headers.

Each attack is made with a complete, otherwise valid decision (the assignee's name, a form
from the real page) so that only the defence under test can stop it; the database is compared
before and after.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.config import Settings
from bot.health import Readiness, add_health_routes
from bot.web import add_routes
from bot.wiring import Container
from engine.model import CheckpointStatus
from tests.e2e._console import Client, act_as, browser, payload, serving, submit

PAY = """\
id: pay
title: Pay a vendor
inputs: {type: object, properties: {amount: {type: number}}, required: [amount]}
nodes:
  - id: approve
    type: human
    prompt: "Pay {{ inputs.amount }}?"
    assignee: user:alice
    options: [approve, reject]
  - id: done
    type: set
    data: {paid: true}
edges:
  - {from: approve, to: done, when: "response.action == 'approve'"}
"""


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "pay.yml").write_text(PAY, encoding="utf-8")
    return folder


def _app(container: Container, **settings: Any) -> web.Application:
    app = web.Application()
    wired = dataclasses.replace(container, settings=container.settings.model_copy(update=settings))
    add_health_routes(app, Readiness(wired))  # as the server mounts them, beside the console
    add_routes(app, wired)
    return app


@pytest.fixture
async def server(container: Container) -> AsyncIterator[TestServer]:
    async with serving(_app(container)) as srv:
        yield srv


@pytest.fixture
async def alice(server: TestServer) -> AsyncIterator[Client]:
    """The assignee's browser, acting as alice."""
    client = await browser(server)
    await act_as(client, "alice")
    yield client
    await client.close()


@pytest.fixture
async def mallory(server: TestServer) -> AsyncIterator[Client]:
    """Another browser (its own cookies)."""
    client = await browser(server)
    yield client
    await client.close()


async def waiting(container: Container) -> tuple[str, str]:
    run = await container.engine.start("pay", {"amount": 4200}, requester="bob")
    await container.engine.drive(run.id)
    [cp] = await container.store.list_checkpoints(run_id=run.id, open_only=True)
    return run.id, cp.id


async def snapshot(container: Container) -> list[Any]:
    """Everything a decision could change, to compare before and after an attack."""
    store = container.store
    return [
        [r.model_dump() for r in await store.list_runs()],
        [c.model_dump() for c in await store.list_checkpoints()],
        [d.model_dump() for d in await store.list_decisions()],
        [e.model_dump() for e in await store.audit_events()],
    ]


def _host(server: TestServer, name: str = "evil.example") -> str:
    return f"{name}:{server.port}"


async def test_dns_rebinding_can_neither_read_nor_decide(
    server: TestServer, alice: Client, mallory: Client, container: Container
) -> None:
    run_id, cp_id = await waiting(container)
    # the attacker's page, now resolving to 127.0.0.1: its Host and Origin are its own name
    evil = {"Host": _host(server), "Origin": f"http://{_host(server)}"}
    for path in ("/", f"/runs/{run_id}", f"/checkpoints/{cp_id}", "/runs", "/stats", "/static/style.css"):
        resp = await mallory.get(path, headers=evil)
        body = await resp.text()
        assert resp.status == 400, path
        assert "does not answer to the name 'evil.example:" in body
        assert cp_id not in body
        assert "4200" not in body
    before = await snapshot(container)
    # even with a complete, valid form and the assignee's session, the foreign name is refused
    form = await payload(alice, f"/checkpoints/{cp_id}", f"/checkpoints/{cp_id}/decide", "approve")
    for client in (mallory, alice):
        resp = await client.post(
            f"/checkpoints/{cp_id}/decide", data=form, headers=evil, allow_redirects=False
        )
        assert resp.status == 400
        resp = await client.post("/actor", data={"actor": "alice", "csrf": form["csrf"]}, headers=evil)
        assert resp.status == 400
    assert await snapshot(container) == before
    assert (await container.store.get_checkpoint(cp_id)).status is CheckpointStatus.open
    # the health check says only that the process is up, and stays open
    resp = await mallory.get("/healthz", headers=evil)
    assert (resp.status, await resp.json()) == (200, {"ok": True})


async def test_the_console_answers_to_its_own_names(container: Container) -> None:
    async with serving(
        _app(container, public_url="https://signoff.example.com", allowed_hosts=("localhost:8080",))
    ) as srv:
        client = await browser(srv)
        try:
            port = srv.port
            assert port is not None
            allowed = [f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"]
            allowed += ["signoff.example.com", "signoff.example.com:443", "localhost:8080"]
            for host in allowed:
                assert (await client.get("/", headers={"Host": host})).status == 200, host
            refused = [
                f"127.0.0.1:{port + 1}",
                f"localhost.evil.example:{port}",
                f"signoff.example.com:{port}",
                "signoff.example.com.evil.example",
                "",
                f"127.0.0.1:{port}@evil.example",
            ]
            for host in refused:
                assert (await client.get("/", headers={"Host": host})).status == 400, host
        finally:
            await client.close()


async def _decide_with(
    client: Client, cp_id: str, fields: dict[str, str | None], headers: dict[str, str] | None = None
) -> Any:
    """Approve with the page's own form, some of its fields changed (None: left out)."""
    form = await payload(client, f"/checkpoints/{cp_id}", f"/checkpoints/{cp_id}/decide", "approve")
    data = {k: v for k, v in {**form, **fields}.items() if v is not None}
    target = f"/checkpoints/{cp_id}/decide"
    return await client.post(target, data=data, headers=headers or {}, allow_redirects=False)


_NO_TOKEN = "security token is missing or belongs to another session"


@pytest.mark.parametrize(
    ("fields", "headers", "says"),
    [
        ({"csrf": None}, {}, _NO_TOKEN),
        ({"csrf": ""}, {}, _NO_TOKEN),
        ({"csrf": "forged-token"}, {}, _NO_TOKEN),
        ({}, {"Origin": "null"}, "a page without an origin"),
        ({}, {"Origin": "https://evil.example"}, "from another site (https://evil.example)"),
        ({}, {"Origin": "http://127.0.0.1.evil.example"}, "from another site"),
        ({}, {"Referer": "https://evil.example/page.html"}, "from another site"),
    ],
    ids=["no-token", "empty-token", "wrong-token", "origin-null", "foreign-origin", "lookalike", "referer"],
)
async def test_cross_site_and_token_less_decisions_are_refused(
    alice: Client, container: Container, fields: dict[str, str | None], headers: dict[str, str], says: str
) -> None:
    _, cp_id = await waiting(container)
    before = await snapshot(container)
    resp = await _decide_with(alice, cp_id, fields, headers)
    page = await resp.text()
    assert resp.status == 403
    assert "<h1>Refused</h1>" in page
    assert says in page
    assert await snapshot(container) == before


async def test_a_token_from_another_session_is_refused(
    server: TestServer, alice: Client, mallory: Client, container: Container
) -> None:
    _, cp_id = await waiting(container)
    before = await snapshot(container)
    # mallory's own, valid token (her session) in a form sent with alice's cookies
    mallory_form = await payload(mallory, f"/checkpoints/{cp_id}", f"/checkpoints/{cp_id}/decide", "approve")
    alice_form = await payload(alice, f"/checkpoints/{cp_id}", f"/checkpoints/{cp_id}/decide", "approve")
    assert mallory_form["csrf"] != alice_form["csrf"]
    resp = await _decide_with(alice, cp_id, {"csrf": mallory_form["csrf"]})
    assert resp.status == 403
    assert "belongs to another session" in await resp.text()
    # a browser without a session cookie (a new one, cookies blocked), or with a forged one
    for session in ({}, {"signoff_session": "eyJmb3JnZWQiOnRydWV9.x.y"}):
        fresh = await browser(server)
        try:
            fresh.session.cookie_jar.update_cookies(
                {"signoff_actor": "alice", **session}, server.make_url("/")
            )
            resp = await fresh.post(f"/checkpoints/{cp_id}/decide", data=alice_form, allow_redirects=False)
            assert resp.status == 403
            assert "session is missing or has expired" in await resp.text()
        finally:
            await fresh.close()
    assert await snapshot(container) == before


async def test_every_form_is_protected(alice: Client, container: Container) -> None:
    """Start, cancel, switch name and decide: none works without the session's token."""
    run_id, cp_id = await waiting(container)
    before = await snapshot(container)
    posts = {
        "/workflows/pay/runs": {"f:amount": "5"},
        f"/runs/{run_id}/cancel": {},
        "/actor": {"actor": "bob", "next": "/"},
        f"/checkpoints/{cp_id}/decide": {"action": "approve", "version": "0"},
    }
    for target, data in posts.items():
        resp = await alice.post(target, data=data, allow_redirects=False)
        assert resp.status == 403, target
        assert "security token" in await resp.text()
    assert await snapshot(container) == before
    # the same forms from the pages, with their tokens, work
    assert (await submit(alice, "/workflows/pay", "/workflows/pay/runs", {"f:amount": "5"})).status == 303
    assert (
        await submit(alice, f"/checkpoints/{cp_id}", f"/checkpoints/{cp_id}/decide", {"action": "approve"})
    ).status == 303


async def test_a_same_origin_browser_post_is_accepted(
    alice: Client, server: TestServer, container: Container
) -> None:
    _, cp_id = await waiting(container)
    origin = f"http://127.0.0.1:{server.port}"
    resp = await _decide_with(
        alice, cp_id, {}, {"Origin": origin, "Referer": f"{origin}/checkpoints/{cp_id}"}
    )
    assert resp.status == 303, await resp.text()
    assert (await container.store.get_checkpoint(cp_id)).status is CheckpointStatus.resolved


class _Inline(HTMLParser):
    """Finds inline script or style: what the Content-Security-Policy forbids. A script element
    that only loads a file of the package (``/static/``) is allowed; one with code in it is not."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        packaged = tag == "script" and any(k == "src" and (v or "").startswith("/static/") for k, v in attrs)
        self._in_script = tag == "script"
        if tag in {"script", "style"} and not packaged:
            self.found.append(f"<{tag}>")
        self.found += [f"{tag}[{k}]" for k, _ in attrs if k == "style" or k.startswith("on")]
        if tag == "a" and any(k == "href" and (v or "").startswith("javascript:") for k, v in attrs):
            self.found.append("javascript: link")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append("script code")


HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _check_headers(resp: Any, what: str) -> None:
    csp = resp.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp, what
    assert "default-src 'self'" in csp, what
    assert "unsafe-inline" not in csp, what
    for name, value in HEADERS.items():
        assert resp.headers.get(name) == value, (what, name)


async def test_every_console_response_forbids_framing_and_sniffing(
    server: TestServer, alice: Client, mallory: Client, container: Container
) -> None:
    run_id, cp_id = await waiting(container)
    pages = [
        "/",
        "/runs",
        "/stats",
        "/audit",
        "/workflows/pay",
        f"/runs/{run_id}",
        f"/runs/{run_id}/audit",
        f"/checkpoints/{cp_id}",
        "/runs/run_nope",
    ]
    for path in pages:
        resp = await alice.get(path)
        _check_headers(resp, path)
        assert resp.headers.get("Cache-Control") == "no-store", path
        if resp.status == 200:
            finder = _Inline()
            finder.feed(await resp.text())
            assert finder.found == [], (path, finder.found)
    _check_headers(await alice.get("/static/style.css"), "css")
    _check_headers(await alice.get("/no/such/page"), "404")
    _check_headers(await mallory.get("/", headers={"Host": _host(server)}), "wrong host")
    _check_headers(await mallory.post("/actor", data={"actor": "x"}, allow_redirects=False), "403")
    _check_headers(await submit(alice, "/", "/actor", {"actor": "alice", "next": "/"}), "303")


async def test_the_session_cookie_is_http_only_and_same_site(mallory: Client) -> None:
    resp = await mallory.get("/")
    cookie = resp.cookies["signoff_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    # the token is the session's, not the session id itself
    token = (await payload(mallory, "/", "/actor"))["csrf"]
    assert token
    assert token not in cookie.value


async def test_the_generated_secret_is_private_and_kept_across_restarts(
    container: Container, tmp_path: Path
) -> None:
    key_file = tmp_path / "keys" / "secret_key"
    async with serving(_app(container, secret_key_file=key_file)) as first:
        client = await browser(first)
        await client.get("/")
        form = await payload(client, "/", "/actor")
        jar = client.session.cookie_jar.filter_cookies(first.make_url("/"))
        cookies = {"signoff_session": jar["signoff_session"].value}
        await client.close()
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_text().strip()) >= 32
    # a restarted process reads the same key: the open page's form still works
    async with serving(_app(container, secret_key_file=key_file)) as second:
        again = await browser(second)
        try:
            again.session.cookie_jar.update_cookies(cookies, second.make_url("/"))
            resp = await again.post("/actor", data={**form, "actor": "alice"}, allow_redirects=False)
            assert resp.status == 303, await resp.text()
        finally:
            await again.close()


def test_an_unusable_secret_stops_the_console(container: Container, tmp_path: Path) -> None:
    from bot.config import ConfigError

    loose = tmp_path / "loose_key"
    loose.write_text("x" * 64)
    loose.chmod(0o644)
    with pytest.raises(ConfigError, match=r"SIGNOFF_SECRET_KEY_FILE .*loose_key can be read by other users"):
        _app(container, secret_key_file=loose)
    with pytest.raises(ConfigError, match="SIGNOFF_SECRET_KEY must be at least 32 characters"):
        Settings.from_env({"SIGNOFF_SECRET_KEY": "short"})
    settings = Settings.from_env(
        {"SIGNOFF_SECRET_KEY": "k" * 40, "SIGNOFF_SECRET_KEY_FILE": str(tmp_path / "unused")}
    )
    assert "k" * 40 not in repr(settings)
    _app(container, secret_key=settings.secret_key, secret_key_file=tmp_path / "unused")
    assert not (tmp_path / "unused").exists()


def test_allowed_hosts_and_public_url_settings() -> None:
    from bot.config import ConfigError

    settings = Settings.from_env({"SIGNOFF_ALLOWED_HOSTS": " Signoff.Internal , localhost:8080,[::1]:9000"})
    assert settings.allowed_hosts == ("signoff.internal", "localhost:8080", "[::1]:9000")
    for bad in ("https://x.example", "x.example/path", "*.example.com", "a b"):
        with pytest.raises(ConfigError, match="SIGNOFF_ALLOWED_HOSTS"):
            Settings.from_env({"SIGNOFF_ALLOWED_HOSTS": bad})
    with pytest.raises(ConfigError, match="SIGNOFF_PUBLIC_URL must be an http"):
        Settings.from_env({"SIGNOFF_PUBLIC_URL": "signoff.example.com"})


def test_no_page_markup_carries_inline_script_or_style() -> None:
    templates = Path(__file__).resolve().parents[2] / "bot" / "web" / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        # a script element may only load a file of the package, and hold nothing itself
        assert not re.search(r"<script(?![^>]*\ssrc=\"/static/[^\"]+\"[^>]*></script>)", text), template.name
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", text), template.name
