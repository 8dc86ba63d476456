"""Console sign-in with an emailed link, through a real SMTP server on loopback (aiosmtpd).

Mail scanners and link previewers fetch every link in a message: a GET of a login link only
shows a page with a button; the POST from that page signs in, once.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.mail import links_for
from tests.e2e._console import Browser, form_for
from tests.e2e._login import Console, console, free_port, login_settings, smtp_server, wait_for

_LINK = re.compile(r"https?://[^\s\"<]+/login/email/[A-Za-z0-9._\-]+")


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[Message]]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def site(tmp_path: Path, smtp: tuple[int, list[Message]]) -> AsyncIterator[Console]:
    port = free_port()
    async with console(login_settings(tmp_path, port, smtp_port=smtp[0]), port) as made:
        yield made


async def _ask(client: Browser, address: str) -> str:
    page = await client.get("/login")
    form = form_for(await page.text(), "/login/email")
    resp = await client.post("/login/email", data={**form.hidden, "email": address})
    assert resp.status == 200, await resp.text()
    return await resp.text()


def _parts(message: Message) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            out[part.get_content_type()] = payload.decode()
    return out


async def _link(client: Browser, smtp: tuple[int, list[Message]], address: str) -> str:
    count = len(smtp[1])
    assert "a sign-in link is on its way" in await _ask(client, address)
    await wait_for(lambda: len(smtp[1]) > count)
    message = smtp[1][-1]
    assert message["To"] == address
    parts = _parts(message)
    assert set(parts) == {"text/plain", "text/html"}
    links = {m.group(0) for text in parts.values() for m in _LINK.finditer(text)}
    assert len(links) == 1, parts
    return urlsplit(links.pop()).path


async def _signed_in(client: Browser) -> bool:
    return (await client.get("/", allow_redirects=False)).status == 200


async def test_a_get_of_the_link_signs_nobody_in_and_the_post_signs_in_once(
    site: Console, smtp: tuple[int, list[Message]]
) -> None:
    client = await site.browser()
    path = await _link(client, smtp, "ann@corp.example")
    scanner = await site.browser()
    for fetcher in (scanner, client, scanner):  # a mail scanner, the person's preview, ...
        page = await fetcher.get(path)
        assert page.status == 200
        assert "Opening the link alone does nothing" in await page.text()
        assert not await _signed_in(fetcher)
    assert "console.signed_in" not in [e.kind for e in await site.container.store.audit_events()]
    page = await client.get(path)
    form = form_for(await page.text(), path)
    resp = await client.post(path, data=form.hidden, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert await _signed_in(client)
    people = site.container.people
    assert people is not None
    [ann] = await people.list_people()
    assert ann.identities == ["email:ann@corp.example"]
    # the link works once: another browser (or the same one again) is refused
    other = await site.browser()
    page = await other.get(path)
    form = form_for(await page.text(), path)
    again = await other.post(path, data=form.hidden, allow_redirects=False)
    assert again.status == 400
    assert "already used" in await again.text()
    assert not await _signed_in(other)


async def test_an_address_that_may_not_sign_in_gets_no_mail(
    site: Console, smtp: tuple[int, list[Message]]
) -> None:
    client = await site.browser()
    text = await _ask(client, "mallory@elsewhere.example")
    assert "If this address may sign in here" in text  # the same answer: who is known is not told
    await _link(client, smtp, "ann@corp.example")  # a known address right after does get one
    assert [m["To"] for m in smtp[1]] == ["ann@corp.example"]


async def test_a_malformed_address_is_told_where_it_was_typed(site: Console) -> None:
    client = await site.browser()
    page = await client.get("/login")
    form = form_for(await page.text(), "/login/email")
    resp = await client.post("/login/email", data={**form.hidden, "email": "ann@"})
    assert resp.status == 400
    assert "is not an email address" in await resp.text()


async def test_an_expired_or_tampered_link_is_refused(site: Console, smtp: tuple[int, list[Message]]) -> None:
    client = await site.browser()
    path = await _link(client, smtp, "ann@corp.example")
    tampered = path[:-3] + ("xyz" if not path.endswith("xyz") else "abc")
    resp = await client.get(tampered)
    assert resp.status == 400
    assert "not valid, has expired or was already used" in await resp.text()
    page = await client.get(path)
    form = form_for(await page.text(), path)
    site.clock.advance(site.container.settings.login.link_ttl.total_seconds() + 1)
    resp = await client.post(path, data=form.hidden, allow_redirects=False)
    assert resp.status == 400
    assert not await _signed_in(client)


async def test_a_link_post_without_the_pages_token_is_refused(
    site: Console, smtp: tuple[int, list[Message]]
) -> None:
    client = await site.browser()
    path = await _link(client, smtp, "ann@corp.example")
    resp = await client.post(path, data={}, allow_redirects=False)  # e.g. a form on another site
    assert resp.status == 403
    assert not await _signed_in(client)
    page = await client.get(path)  # the link is still good for the person
    form = form_for(await page.text(), path)
    assert (await client.post(path, data=form.hidden, allow_redirects=False)).status == 303


async def test_an_address_is_not_flooded_with_links(site: Console, smtp: tuple[int, list[Message]]) -> None:
    client = await site.browser()
    for _ in range(5):
        await _link(client, smtp, "ann@corp.example")
    page = await client.get("/login")
    form = form_for(await page.text(), "/login/email")
    for address in ("ann@corp.example", "ANN@corp.example"):
        resp = await client.post("/login/email", data={**form.hidden, "email": address})
        assert resp.status == 429
        assert "Several sign-in links were sent to this address" in await resp.text()
    assert len(smtp[1]) == 5
    site.clock.advance(site.container.settings.login.link_ttl.total_seconds())
    await _link(client, smtp, "ann@corp.example")  # the window has passed


async def test_a_decision_link_decides_nothing_for_someone_else_signed_in(
    site: Console, smtp: tuple[int, list[Message]]
) -> None:
    # ann's decision link, opened in a browser signed in as dave: refused, and still ann's
    c = site.container
    run = await c.engine.start("pay", {}, requester="rita")
    await c.engine.drive(run.id)
    [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    links = links_for(c)
    assert links is not None
    minted = await links.mint(cp, "email:ann@corp.example", c.clock.now())
    path = urlsplit(minted.url).path
    dave = await site.browser()
    signed = await _link(dave, smtp, "dave@corp.example")
    page = await dave.get(signed)
    assert (await dave.post(signed, data=form_for(await page.text(), signed).hidden)).status in {200, 303}
    assert await _signed_in(dave)
    page = await dave.get(path)
    assert page.status == 403
    assert "was mailed to ann@corp.example" in await page.text()
    csrf = form_for(await (await dave.get("/")).text(), "/logout").hidden["csrf"]
    forged = await dave.post(path, data={"csrf": csrf, "decision": "approve"})
    assert forged.status == 403
    assert "Nothing was decided" in await forged.text()
    assert (await c.store.get_checkpoint(cp.id)).approvals == []
    # the link was not used up: its owner still decides with it
    ann = await site.browser()
    page = await ann.get(path)
    form = form_for(await page.text(), path)
    resp = await ann.post(path, data={**form.hidden, "decision": "approve"})
    assert resp.status == 200, await resp.text()
    assert (await c.store.get_checkpoint(cp.id)).approvals == ["email:ann@corp.example"]
