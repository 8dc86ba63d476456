"""Console decisions name the version they were made on, and the page shows what Approve executes.

On SQLite and PostgreSQL: the audit events the 409 page reads its diff from come from the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.config import Settings
from bot.web import add_routes
from bot.wiring import Container, build
from engine.commands import Decide
from engine.model import CheckpointStatus
from engine.shown import display_text, field_label
from tests.e2e._console import Browser, act_as, browser, forms_of, payload, serving
from tests.e2e.conftest import RecordingSender

QUORUM = """\
id: wire
title: Wire money
inputs: {type: object, properties: {amount: {type: number}}, required: [amount]}
nodes:
  - id: sign
    type: human
    title: Wire to ACME
    prompt: "Two of ann, ben and cy sign the wire"
    assignee: [user:ann, user:ben, user:cy]
    quorum: 2
    options: [approve, reject, edit]
    response_schema:
      type: object
      properties:
        amount: {type: number, title: Amount (USD), minimum: 1}
        memo: {type: string}
      required: [amount]
    proposed: {amount: "{{ inputs.amount }}", memo: "invoice 7"}
  - id: pay
    type: set
    data: {paid: "{{ nodes.sign.data.amount }}"}
edges:
  - {from: sign, to: pay, when: "response.action == 'approve'"}
"""

SHOWN = """\
id: shown
title: Everything shown
inputs: {type: object}
nodes:
  - id: check
    type: human
    title: Check every field
    assignee: user:ann
    options: [approve, reject]
    response_schema:
      type: object
      properties:
        amount: {type: number, title: Amount (USD)}
        iban: {type: string, title: Beneficiary IBAN}
        note: {type: string}
        lines: {type: array, title: Invoice lines}
        routing: {type: object}
    proposed:
      amount: "{{ inputs.amount }}"
      iban: "{{ inputs.iban }}"
      note: "{{ inputs.note }}"
      lines: "{{ inputs.lines }}"
      routing: "{{ inputs.routing }}"
      beneficiary_bank: "{{ inputs.bank }}"
  - id: done
    type: set
    data: {ok: true}
edges:
  - {from: check, to: done, when: "response.action == 'approve'"}
"""


@pytest.fixture
async def container(tmp_path: Path, database_url: str) -> AsyncIterator[Container]:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "wire.yml").write_text(QUORUM, encoding="utf-8")
    (folder / "shown.yml").write_text(SHOWN, encoding="utf-8")
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
    yield built
    await built.close()


@pytest.fixture
async def server(container: Container) -> AsyncIterator[TestServer]:
    app = web.Application()
    add_routes(app, container)
    async with serving(app) as srv:
        yield srv


async def person(server: TestServer, name: str) -> Browser:
    client = await browser(server)
    await act_as(client, name)
    return client


class Rows(HTMLParser):
    """The visible rows (label, value) of the table with a given id, as a person reads them."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.rows: list[tuple[str, str]] = []
        self._depth = 0  # nesting inside the table, 0 = outside
        self._cell: list[str] | None = None
        self._row: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if self._depth == 0:
            if tag == "table" and attr.get("id") == self.table_id:
                self._depth = 1
            return
        if tag == "table":
            self._depth += 1
        if self._hidden or "hidden" in attr or tag in {"script", "style", "template", "details"}:
            self._hidden += 1
        if tag == "tr":
            self._row = []
        elif tag in {"th", "td"}:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._depth == 0:
            return
        if tag == "table":
            self._depth -= 1
        if self._hidden:
            self._hidden -= 1
        if tag in {"th", "td"} and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self.rows.append((self._row[0], self._row[1]) if len(self._row) == 2 else ("?", repr(self._row)))

    def handle_data(self, data: str) -> None:
        if self._depth and self._cell is not None and not self._hidden:
            self._cell.append(data)


def rows_of(page: str, table_id: str) -> list[tuple[str, str]]:
    parser = Rows(table_id)
    parser.feed(page)
    return parser.rows


async def _wire(container: Container, amount: int = 100) -> tuple[str, str]:
    run = await container.engine.start("wire", {"amount": amount}, requester="rita")
    await container.engine.drive(run.id)
    [cp] = await container.store.list_checkpoints(run_id=run.id, open_only=True)
    return run.id, cp.id


async def test_a_console_approval_of_a_copy_shown_before_an_edit_is_refused(
    server: TestServer, container: Container
) -> None:
    """ann edits 100 -> 500 from the CLI; ben approves from a page loaded before: 409, not counted."""
    _, cp_id = await _wire(container)
    ben = await person(server, "ben")
    try:
        target = f"/checkpoints/{cp_id}/decide"
        stale = await payload(ben, f"/checkpoints/{cp_id}", target, "approve")
        edit = Decide(checkpoint_id=cp_id, action="edit", actor="ann", channel="cli", data={"amount": 500})
        assert await container.engine.decide(edit) is None
        edited = await container.store.get_checkpoint(cp_id)
        assert edited.proposed["amount"] == 500
        events_before = await container.store.audit_events()

        resp = await ben.post(target, data=stale, allow_redirects=False)
        page = await resp.text()
        assert resp.status == 409, page
        assert "Your decision was not counted" in page
        assert stale["version"] == "0"
        # his vote did not count, and nothing was recorded as his
        after = await container.store.get_checkpoint(cp_id)
        assert (after.approvals, after.version, after.status) == ([], edited.version, CheckpointStatus.open)
        # the one record of his attempt is the refusal, with the rule and the version he saw
        [refused] = (await container.store.audit_events())[len(events_before) :]
        assert (refused.kind, refused.actor, refused.payload["rule"]) == (
            "decision.refused",
            "ben",
            "stale_version",
        )
        assert refused.payload["expected_version"] == 0
        assert not [e for e in events_before if e.actor == "ben"]
        # the page shows the new proposal, and what changed since his copy
        assert ("Amount (USD)", "500") in rows_of(page, "proposal")
        changes = _diff_rows(page)
        assert changes == [("Amount (USD)", "100", "500")]
        fresh = next(f for f in _forms(page) if f.get("action") == "approve")
        assert fresh["version"] == str(edited.version)

        # deciding on the page he now sees counts
        resp = await ben.post(target, data=fresh, allow_redirects=False)
        assert resp.status == 303, await resp.text()
        assert (await container.store.get_checkpoint(cp_id)).approvals == ["ben"]
    finally:
        await ben.close()


async def test_a_stale_edit_is_refused_too(server: TestServer, container: Container) -> None:
    _, cp_id = await _wire(container)
    ben = await person(server, "ben")
    try:
        target = f"/checkpoints/{cp_id}/decide"
        stale = await payload(ben, f"/checkpoints/{cp_id}", target, "edit")
        edit = Decide(
            checkpoint_id=cp_id, action="edit", actor="ann", channel="cli", data={"memo": "invoice 8"}
        )
        await container.engine.decide(edit)
        before = await container.store.get_checkpoint(cp_id)
        resp = await ben.post(
            target, data={**stale, "f:amount": "90", "f:memo": "mine"}, allow_redirects=False
        )
        page = await resp.text()
        assert resp.status == 409, page
        assert _diff_rows(page) == [("Memo", "invoice 7", "invoice 8")]
        assert await container.store.get_checkpoint(cp_id) == before
    finally:
        await ben.close()


async def test_a_decision_without_a_version_or_with_a_forged_copy_is_not_trusted(
    server: TestServer, container: Container
) -> None:
    _, cp_id = await _wire(container)
    ben = await person(server, "ben")
    try:
        target = f"/checkpoints/{cp_id}/decide"
        form = await payload(ben, f"/checkpoints/{cp_id}", target, "approve")
        for version in (None, "", "one", "-1", "99999999999999999999"):
            data = {k: v for k, v in {**form, "version": version}.items() if v is not None}
            resp = await ben.post(target, data=data, allow_redirects=False)
            assert resp.status == 400, version
            assert "does not say which version" in await resp.text()
        assert (await container.store.get_checkpoint(cp_id)).approvals == []
        # a made-up "seen" hash picks no stored copy: no diff is shown, only the current proposal
        await container.engine.decide(
            Decide(checkpoint_id=cp_id, action="edit", actor="ann", channel="cli", data={"amount": 7})
        )
        resp = await ben.post(target, data={**form, "seen": "0" * 64}, allow_redirects=False)
        page = await resp.text()
        assert resp.status == 409
        assert "cannot tell which copy you saw" in page
        assert _diff_rows(page) == []
        assert ("Amount (USD)", "7") in rows_of(page, "proposal")
    finally:
        await ben.close()


LONG = "Settle invoice 2024-117 " + "and the attached schedule of payments " * 12
TRICKS = "100\nBeneficiary IBAN: DE00 0000 0000 0000 0000 00</td></tr><tr><th>Amount (USD)</th><td>1"


async def test_every_executed_field_is_on_the_checkpoint_page(
    server: TestServer, container: Container
) -> None:
    """Approve from the page, then compare what executed with what the page showed, field by field."""
    inputs: dict[str, Any] = {
        "amount": 12500.5,
        "iban": "GB33BUKB20201555555555",
        "note": LONG + "\nsecond line",
        "lines": [{"sku": "A-1", "qty": 3}, {"sku": "B-2", "qty": 1}],
        "routing": {"swift": "BUKBGB22", "intermediary": None},
        "bank": TRICKS,
    }
    run = await container.engine.start("shown", inputs, requester="rita")
    await container.engine.drive(run.id)
    [cp] = await container.store.list_checkpoints(run_id=run.id, open_only=True)
    ann = await person(server, "ann")
    try:
        page = await (await ann.get(f"/checkpoints/{cp.id}")).text()
        shown = rows_of(page, "proposal")
        form = next(f for f in _forms(page) if f.get("action") == "approve")
        resp = await ann.post(f"/checkpoints/{cp.id}/decide", data=form, allow_redirects=False)
        assert resp.status == 303, await resp.text()
    finally:
        await ann.close()
    [decision] = await container.store.list_decisions(checkpoint_id=cp.id)
    assert decision.action == "approve"
    assert set(decision.data) == {"amount", "iban", "note", "lines", "routing", "beneficiary_bank"}
    for name, value in decision.data.items():
        row = (field_label(name, cp.response_schema), display_text(value))
        assert row in shown, f"{name} executed as {value!r} but the page showed {shown}"
    assert len(shown) == len(decision.data)
    # labels come from the schema; data cannot add a row that looks like a label
    labels = [label for label, _ in shown]
    assert labels.count("Amount (USD)") == 1
    assert labels.count("Beneficiary IBAN") == 1
    assert {
        "Amount (USD)",
        "Beneficiary IBAN",
        "Note",
        "Invoice lines",
        "Routing",
        "Beneficiary bank",
    } == set(labels)


def _forms(page: str) -> list[dict[str, str]]:
    return [f.hidden for f in forms_of(page)]


class _DiffRows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, ...]] = []
        self._inside = False
        self._cell: list[str] | None = None
        self._row: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section" and dict(attrs).get("id") == "changes":
            self._inside = True
        elif self._inside and tag == "tr":
            self._row = []
        elif self._inside and tag in {"th", "td"}:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._inside = False
        elif self._inside and tag in {"th", "td"} and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif self._inside and tag == "tr" and self._row and self._row != ["Field", "You saw", "Now"]:
            self.rows.append(tuple(self._row))

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _diff_rows(page: str) -> list[tuple[str, ...]]:
    parser = _DiffRows()
    parser.feed(page)
    return parser.rows
