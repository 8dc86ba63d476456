"""Helpers to use the web console as a browser does: read a page's forms, submit them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

Client = TestClient[web.Request, web.Application]


class Browser(TestClient[web.Request, web.Application]):
    """One browser (its own cookies) on a server that other browsers share.

    ``TestClient.close`` also stops the server; a browser closes only its own session.
    """

    async def close(self) -> None:
        """Close this browser's connections, not the server."""
        await self.session.close()


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[TestServer]:
    """``app`` on an ephemeral port of 127.0.0.1 until the block ends."""
    server = TestServer(app)
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


async def browser(server: TestServer) -> Browser:
    """A new browser on ``server`` (started if needed)."""
    client = Browser(server)
    await client.start_server()
    return client


@dataclass
class Form:
    """One ``<form>`` of a page: where it posts and the values of its hidden inputs."""

    action: str
    method: str
    hidden: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._open: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._open = Form(attr.get("action", ""), attr.get("method", "get").lower())
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and attr.get("type") == "hidden":
            self._open.hidden[attr.get("name", "")] = attr.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def forms_of(page: str) -> list[Form]:
    """Every form of ``page``, in order."""
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


def form_for(page: str, target: str, action: str | None = None) -> Form:
    """The form of ``page`` that posts to ``target`` (with the hidden ``action`` when given)."""
    for form in forms_of(page):
        if form.action == target and (action is None or form.hidden.get("action") == action):
            return form
    raise AssertionError(f"no form posting to {target} (action {action}) on the page")


async def payload(client: Client, page_path: str, target: str, action: str | None = None) -> dict[str, str]:
    """The hidden fields of the form posting to ``target`` on the page at ``page_path``."""
    resp = await client.get(page_path)
    assert resp.status == 200, await resp.text()
    return dict(form_for(await resp.text(), target, action).hidden)


async def submit(
    client: Client, page_path: str, target: str, data: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    """Load ``page_path``, fill the form posting to ``target`` with ``data`` and send it."""
    data = dict(data or {})
    hidden = await payload(client, page_path, target, data.get("action"))
    return await client.post(target, data={**hidden, **data}, allow_redirects=False, **kwargs)


async def act_as(client: Client, name: str) -> None:
    """Choose the acting person through the header form."""
    resp = await submit(client, "/", "/actor", {"actor": name, "next": "/"})
    assert resp.status == 303, await resp.text()


async def decide(client: Client, cp_id: str, **data: str) -> Any:
    """Decide ``cp_id`` with the form its page shows now (``action`` picks the form)."""
    return await submit(client, f"/checkpoints/{cp_id}", f"/checkpoints/{cp_id}/decide", data)
