"""The email channel against a real SMTP server on loopback (aiosmtpd).

A checkpoint's mail shows every value Approve passes on (sensitive ones masked) in both parts;
its decision link decides nothing on GET (mail scanners fetch links), decides once on the POST
of its page, as the person it was mailed to, through the gate; reused, expired, tampered,
misdirected and stale links are refused with a page that says why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.cli_people import link_people, prefer_channel
from bot.mail import DECIDED, links_for
from engine.commands import Decide
from engine.model import Checkpoint, CheckpointStatus, DeliveryStatus
from tests.e2e._console import Browser, form_for
from tests.e2e._login import Console, console, free_port, wait_for
from tests.e2e._mail import IBAN, INPUTS, Smtp, links, mail_settings, parts, smtp_server, write_project
from tests.e2e.conftest import RecordingSender

ANN = "ann@corp.example"


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    with smtp_server(refuse={"fred@bounce.example", "gone@bounce.example"}) as server:
        yield server


@pytest.fixture
async def site(tmp_path: Path, smtp: Smtp) -> AsyncIterator[Console]:
    write_project(tmp_path)
    port = free_port()
    async with console(mail_settings(tmp_path, port, smtp.port), port) as made:
        yield made


async def _open(site: Console, smtp: Smtp) -> Checkpoint:
    """Start a payment, send its messages; returns the open checkpoint."""
    c = site.container
    run = await c.engine.start("pay", INPUTS, requester="rita")
    await c.engine.drive(run.id)
    assert c.outbox is not None
    await c.outbox.drain()
    await wait_for(lambda: bool(smtp.to(ANN)))
    [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
    return cp


async def _link(site: Console, smtp: Smtp) -> tuple[Checkpoint, str]:
    cp = await _open(site, smtp)
    [path] = links(smtp.to(ANN)[-1])
    return cp, path


async def _press(client: Browser, path: str, decision: str = "approve") -> tuple[int, str]:
    page = await client.get(path)
    form = form_for(await page.text(), path)
    resp = await client.post(path, data={**form.hidden, "decision": decision})
    return resp.status, await resp.text()


def _sender(site: Console) -> RecordingSender:
    assert site.container.outbox is not None
    primary = getattr(site.container.outbox.sender, "primary", None)
    assert isinstance(primary, RecordingSender)
    return primary


async def test_the_mail_has_both_parts_and_every_value_approve_passes_on(site: Console, smtp: Smtp) -> None:
    await _open(site, smtp)
    [mail] = smtp.to(ANN)
    assert mail["Subject"] == "Pay 1200 EUR"
    texts = parts(mail)
    assert set(texts) == {"text/plain", "text/html"}
    plain, html = texts["text/plain"], texts["text/html"]
    for text in (plain, html):
        assert "1200" in text
        assert "Amount (EUR)" in text
        assert "Invoice 7" in text
        assert IBAN not in text  # sensitive: masked, as on every surface
    # data is data: no markup in the HTML part, and no line of its own in the text part
    assert "<b>bold</b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "\nAmount (EUR): 1\n" not in plain
    assert len(links(mail)) == 1
    # felix has Slack (the recording sender here); the role was fanned out per person
    targets = {d.target for d in _sender(site).sent if d.kind == "checkpoint"}
    assert "user:felix" in targets
    assert "email:ann@corp.example" not in targets


async def test_every_get_decides_nothing_and_the_post_decides_once(site: Console, smtp: Smtp) -> None:
    cp, path = await _link(site, smtp)
    store = site.container.store
    scanner, previewer, ann = await site.browser(), await site.browser(), await site.browser()
    for fetcher in (scanner, previewer, ann, scanner):
        page = await fetcher.get(path)
        assert page.status == 200
        assert "Opening this page decided nothing" in await page.text()
    assert (await store.get_checkpoint(cp.id)).approvals == []
    assert "checkpoint.vote" not in {e.kind for e in await store.audit_events(run_id=cp.run_id)}
    status, text = await _press(ann, path)
    assert status == 200, text
    assert "Your decision (approve) was recorded" in text
    # a quorum of two: ann's approval is the first vote, made by email as ann, on what she saw
    assert (await store.get_checkpoint(cp.id)).approvals == [f"email:{ANN}"]
    [vote] = [e for e in await store.audit_events(run_id=cp.run_id) if e.kind == "checkpoint.vote"]
    assert (vote.actor, vote.channel, vote.payload["seen_hash"]) == (f"email:{ANN}", "email", cp.shown_hash)
    # the same link again (another browser, or the same page sent twice) decides nothing more
    status, text = await _press(scanner, path)
    assert status == 400
    assert "already used" in text
    assert (await store.get_checkpoint(cp.id)).approvals == [f"email:{ANN}"]
    assert len([e for e in await store.audit_events(run_id=cp.run_id) if e.kind == "checkpoint.vote"]) == 1


async def test_a_post_without_the_pages_token_is_refused_and_the_link_still_works(
    site: Console, smtp: Smtp
) -> None:
    cp, path = await _link(site, smtp)
    client = await site.browser()
    await client.get(path)
    resp = await client.post(path, data={"decision": "approve"})  # a form on another site
    assert resp.status == 403
    assert (await site.container.store.get_checkpoint(cp.id)).approvals == []
    status, _ = await _press(client, path)
    assert status == 200
    assert (await site.container.store.get_checkpoint(cp.id)).approvals == [f"email:{ANN}"]


async def test_an_expired_link_is_refused(site: Console, smtp: Smtp) -> None:
    cp, path = await _link(site, smtp)
    client = await site.browser()
    page = await client.get(path)
    form = form_for(await page.text(), path)
    site.clock.advance(site.container.settings.login.decision_link_ttl.total_seconds() + 1)
    resp = await client.post(path, data={**form.hidden, "decision": "approve"})
    assert resp.status == 400
    assert "has expired" in await resp.text()
    assert (await client.get(path)).status == 400
    assert (await site.container.store.get_checkpoint(cp.id)).approvals == []


async def test_a_tampered_link_is_refused(site: Console, smtp: Smtp) -> None:
    cp, path = await _link(site, smtp)
    client = await site.browser()
    for bad in (path[:-2] + ("xy" if not path.endswith("xy") else "ab"), path[:-10], path + "A"):
        resp = await client.get(bad)
        assert resp.status == 400
        assert "not valid" in await resp.text()
    assert (await site.container.store.get_checkpoint(cp.id)).approvals == []


async def test_a_link_for_someone_who_may_not_decide_decides_nothing(site: Console, smtp: Smtp) -> None:
    cp, _ = await _link(site, smtp)
    c = site.container
    made = links_for(c)
    assert made is not None
    minted = await made.mint(cp, "email:mallory@corp.example", c.clock.now())
    path = "/mail/decide/" + minted.url.rsplit("/", 1)[1]
    status, text = await _press(await site.browser(), path)
    assert status == 403
    assert "Nothing was decided" in text
    assert (await c.store.get_checkpoint(cp.id)).approvals == []
    refused = [e for e in await c.store.audit_events(run_id=cp.run_id) if e.kind == "decision.refused"]
    assert refused
    assert refused[-1].channel == "email"


async def test_a_link_to_an_edited_proposal_shows_the_new_one_instead_of_deciding(
    site: Console, smtp: Smtp
) -> None:
    cp, path = await _link(site, smtp)
    c = site.container
    client = await site.browser()
    page = await client.get(path)
    form = form_for(await page.text(), path)
    edit = Decide(
        checkpoint_id=cp.id,
        action="edit",
        actor="felix",
        data={"amount": 900, "memo": "Invoice 7, partly"},
        expected_version=cp.version,
    )
    await c.engine.decide(edit, drive=False)
    resp = await client.post(path, data={**form.hidden, "decision": "approve"})
    assert resp.status == 409
    text = await resp.text()
    assert "changed after the mail was sent" in text
    assert "Invoice 7, partly" in text  # the new proposal is what the page shows
    assert f"email:{ANN}" not in (await c.store.get_checkpoint(cp.id)).approvals
    again = await client.get(path)
    assert again.status == 409
    assert "Invoice 7, partly" in await again.text()


async def test_a_refused_address_falls_back_to_slack_with_an_audit_event(site: Console, smtp: Smtp) -> None:
    cp = await _open(site, smtp)
    c = site.container
    assert c.outbox is not None
    await c.outbox.drain()
    # fred prefers email, but the server refuses his address: his card goes to Slack instead
    assert smtp.to("fred@bounce.example") == []
    assert "user:fred" in {d.target for d in _sender(site).sent if d.kind == "checkpoint"}
    events = [e for e in await c.store.audit_events(run_id=cp.run_id) if e.kind == "delivery.fallback"]
    assert [(e.payload["target"], e.payload["from"], e.payload["to"]) for e in events] == [
        ("user:fred", "email", "slack")
    ]
    # someone known by a refused address only has no other channel: the row fails, audited
    [gone] = [
        d
        for d in await c.store.list_deliveries(checkpoint_id=cp.id)
        if d.target == "email:gone@bounce.example"
    ]
    assert gone.status is DeliveryStatus.failed
    assert "refused gone@bounce.example" in str(gone.error)
    failed = [e for e in await c.store.audit_events(run_id=cp.run_id) if e.kind == "delivery.failed"]
    assert [e.payload["target"] for e in failed] == ["email:gone@bounce.example"]


async def test_a_closed_checkpoint_tells_the_people_it_mailed(site: Console, smtp: Smtp) -> None:
    cp, path = await _link(site, smtp)
    c = site.container
    assert c.outbox is not None
    status, _ = await _press(await site.browser(), path)
    assert status == 200
    await c.engine.decide(
        Decide(checkpoint_id=cp.id, action="approve", actor="felix", expected_version=cp.version), drive=False
    )
    assert (await c.store.get_checkpoint(cp.id)).status is CheckpointStatus.resolved
    await c.outbox.drain()
    await wait_for(lambda: len(smtp.to(ANN)) == 2)
    notice = smtp.to(ANN)[-1]
    assert "no longer waits for you: approved" in parts(notice)["text/plain"]
    assert links(notice) == set()
    rows = [d for d in await c.store.list_deliveries(checkpoint_id=cp.id) if d.kind == DECIDED]
    assert [(d.target, d.status) for d in rows] == [(f"email:{ANN}", DeliveryStatus.sent)]
    # the link of the first mail now shows the outcome and has no buttons
    page = await (await site.browser()).get(path)
    assert page.status == 409
    assert "already decided (approved)" in await page.text()


async def test_a_person_who_prefers_email_in_the_people_record_gets_mail(site: Console, smtp: Smtp) -> None:
    c = site.container
    await link_people(c, "user:felix", "email:felix@corp.example", "admin")
    await prefer_channel(c, "user:felix", "email", "admin")
    cp = await _open(site, smtp)
    await wait_for(lambda: bool(smtp.to("felix@corp.example")))
    [mail] = smtp.to("felix@corp.example")
    [path] = links(mail)
    assert "user:felix" not in {d.target for d in _sender(site).sent if d.kind == "checkpoint"}
    status, _ = await _press(await site.browser(), path)
    assert status == 200
    assert (await c.store.get_checkpoint(cp.id)).approvals == ["felix"]


async def test_an_option_the_page_does_not_offer_decides_nothing_and_uses_nothing(
    site: Console, smtp: Smtp
) -> None:
    # a forged form: an edit (it needs the console's form), an outcome only a timer records, junk
    cp, path = await _link(site, smtp)
    client = await site.browser()
    for forged in ("edit", "answer", "timeout", "cancel", "approve "):
        status, text = await _press(client, path, forged)
        assert status == 400, forged
        assert "Pick one of the buttons" in text
    store = site.container.store
    assert (await store.get_checkpoint(cp.id)).approvals == []
    assert await store.list_decisions() == []
    status, text = await _press(client, path, "approve")
    assert status == 200, text
    assert (await store.get_checkpoint(cp.id)).approvals == [f"email:{ANN}"]
