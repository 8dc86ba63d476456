"""``signoff tasks`` is complete at any count: a page at a time, with the command for the next page,
and ``--assignee`` answers "what waits for this person" through the assignee index. Its light
read path (the database driver alone) masks exactly what the full store's path masks."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engine.ports import RunChange
from tests.contract import _data as d
from tests.contract._data import at
from tests.e2e._cli import empty_cli, invoke

_MORE = re.compile(r"^(\d+ )?more: signoff tasks (.*)--before (\S+)$", re.M)


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI on a fresh database (SQLite, and PostgreSQL when configured)."""
    return empty_cli(monkeypatch, tmp_path, database_url, roles="ops:\n  members: [user:UOPS]\n")


async def _seed(url: str) -> tuple[list[str], list[str]]:
    """1,200 open checkpoints for role:ops, and, older than all of them, 10 for UMIA."""
    from storage import create_store

    store = create_store(url)
    try:
        lease = await d.started(store)
        mine = [d.checkpoint(f"cp_m{n:02d}", assignees=["user:UMIA"], created_at=at(n)) for n in range(10)]
        others = [
            d.checkpoint(f"cp_o{n:04d}", assignees=["role:ops"], created_at=at(100 + n)) for n in range(1200)
        ]
        everything = [*mine, *others]
        for start in range(0, len(everything), 200):
            await store.commit(lease, RunChange(at=at(0), checkpoints=everything[start : start + 200]))
    finally:
        await store.close()
    return [cp.id for cp in mine], [cp.id for cp in others]


def _pages(cli: CliRunner, *args: str) -> tuple[list[str], list[str]]:
    """Every page of ``tasks *args --json``, following the printed next-page command; the ids
    in order and the hints printed."""
    ids: list[str] = []
    hints: list[str] = []
    argv = ["tasks", *args, "--json"]
    for _ in range(100):
        result = invoke(cli, *argv)
        ids += [t["id"] for t in json.loads(result.stdout)]
        found = _MORE.search(result.stderr)
        if found is None:
            return ids, hints
        hints.append(found.group(0))
        argv = ["tasks", *found.group(2).split(), "--before", found.group(3)]
    raise AssertionError("the pages never ended")


@pytest.fixture
def seeded(cli: CliRunner, database_url: str) -> tuple[list[str], list[str]]:
    invoke(cli, "tasks")  # a SQLite file is created and migrated by the first command
    return asyncio.run(_seed(database_url))


def test_a_person_whose_checkpoints_are_the_oldest_sees_all_of_them(
    cli: CliRunner, seeded: tuple[list[str], list[str]]
) -> None:
    mine, others = seeded
    found = json.loads(invoke(cli, "tasks", "--assignee", "UMIA", "--json").stdout)
    assert [t["id"] for t in found] == sorted(mine, reverse=True)
    # the same person named as a principal; the table names every one of them
    out = invoke(cli, "tasks", "--assignee", "user:UMIA").stdout
    assert all(cp_id in out for cp_id in mine)
    assert not any(cp_id in out for cp_id in others[:5])


def test_every_open_checkpoint_is_reached_page_by_page(
    cli: CliRunner, seeded: tuple[list[str], list[str]]
) -> None:
    mine, others = seeded
    ids, hints = _pages(cli, "--limit", "500")
    assert ids == sorted(others, reverse=True) + sorted(mine, reverse=True)
    assert [h.split(" more")[0] for h in hints] == ["710", "210"]
    # the default page is 50, and the table tells a person how many more there are
    out = invoke(cli, "tasks").stdout
    assert out.count("checkpoint cp_") == 50
    assert f"1160 more: signoff tasks --before {sorted(others)[-50]}" in out


def test_an_assignee_is_paged_through_the_index(cli: CliRunner, seeded: tuple[list[str], list[str]]) -> None:
    _, others = seeded
    ids, hints = _pages(cli, "--assignee", "UOPS", "--limit", "400")
    assert ids == sorted(others, reverse=True)  # through role:ops, none twice, none missed
    assert len(hints) >= 2
    assert all(" --assignee UOPS --limit 400 " in h for h in hints)


def test_overdue_pages_count_only_overdue(cli: CliRunner, seeded: tuple[list[str], list[str]]) -> None:
    mine, others = seeded  # every seeded checkpoint was due on 2026-01-01
    ids, _ = _pages(cli, "--overdue", "--limit", "700")
    assert len(ids) == len(mine) + len(others)


def test_a_page_after_an_unknown_checkpoint_is_refused(cli: CliRunner) -> None:
    result = invoke(cli, "tasks", "--before", "cp_nope", code=2)
    assert "cp_nope" in result.output


CHARGE = """\
id: charge
inputs:
  type: object
  properties:
    customer: {type: string}
    card: {type: string, x-signoff-sensitive: true}
  required: [customer, card]
nodes:
  - id: approve
    type: human
    title: "Charge {{ inputs.customer }}"
    prompt: "Charge {{ inputs.card }} for {{ inputs.customer }}?"
    context: {card: "{{ inputs.card }}"}
    assignee: [user:olga, user:omar, user:otto]
    quorum: 2
    options: [approve, reject, edit]
    response_schema:
      type: object
      properties: {card: {type: string, x-signoff-sensitive: true}, amount: {type: number}}
    proposed: {card: "{{ inputs.card }}", amount: 10}
"""
CARD = "4242-4242-4242-4242"
NEW_CARD = "5555-4444-3333-1111"


async def _old_path_tasks() -> list[dict[str, Any]]:
    """What ``tasks --json`` printed through the full store (SQLAlchemy) and its redactor."""
    from bot._cli_output import checkpoint_json
    from bot.config import Settings
    from bot.wiring import open_reader
    from engine.sensitive import redact_checkpoint

    reader = await open_reader(Settings.from_env())
    try:
        out = []
        for cp in await reader.store.list_checkpoints(open_only=True):
            r = await reader.redactor(await reader.store.get_run(cp.run_id))
            out.append(checkpoint_json(redact_checkpoint(r, cp)))
        return out
    finally:
        await reader.close()


def test_the_light_path_masks_what_the_full_store_masks(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "workflows" / "charge.yml").write_text(CHARGE)
    invoke(cli, "run", "charge", "-i", "customer=ACME", "-i", f"card={CARD}", "--as", "rita")
    [open_cp] = json.loads(invoke(cli, "tasks", "--json").stdout)
    # a quorum edit: the card it replaced lives on only in the audit trail, and stays masked
    edit = json.dumps({"card": NEW_CARD, "amount": 10})
    invoke(cli, "respond", open_cp["id"], "edit", "--as", "olga", "--data", edit)
    light = invoke(cli, "tasks", "--json").stdout
    assert json.loads(light) == asyncio.run(_old_path_tasks())
    for out in (light, invoke(cli, "tasks").stdout, invoke(cli, "tasks", "--assignee", "omar").stdout):
        assert "ACME" in out
        assert CARD not in out
        assert NEW_CARD not in out
