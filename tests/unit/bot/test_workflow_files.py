"""The workflows folder as the published set: reload, broken files, removed files, publish FILE,
rollback, and naming versions; on the in-memory store (the SQL ones are in tests/contract)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.workflow_files import FolderWatcher, publish_catalog, publish_file, rollback
from engine.catalog import WorkflowCatalog
from engine.errors import InvalidInput, InvalidWorkflow, NotFound
from engine.loader import load_workflow_text
from engine.testing import FixedClock, InMemoryRunStore
from engine.versions import diff_lines, find_version, publish, unified_diff

PAY = """\
id: pay
title: Pay
version: "1.0"
nodes:
  - id: book
    type: set
    data: {booked: "{{ 1 }}"}
"""


def _edit(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    # a later modification time, whatever the file system's clock granularity
    stamp = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "pay.yml").write_text(PAY, encoding="utf-8")
    return tmp_path / "workflows"


async def test_a_changed_file_serves_at_once_and_a_broken_one_keeps_the_last_valid(folder: Path) -> None:
    store, clock = InMemoryRunStore(), FixedClock()
    catalog = WorkflowCatalog.from_directory(folder)
    assert [v.version for v in await publish_catalog(store, catalog, clock)] == [1]
    assert await publish_catalog(store, catalog, clock) == []  # unchanged: no new number
    watcher = FolderWatcher(store, catalog, clock, folder, interval_s=0)
    assert await watcher.check() == []

    _edit(folder / "pay.yml", PAY.replace('version: "1.0"', 'version: "1.1"').replace("{{ 1 }}", "{{ 2 }}"))
    [changed] = await watcher.check()
    assert catalog.get("pay") is changed
    assert changed.label == "1.1"
    versions = await store.list_publications("pay")
    assert [(v.version, v.label, v.note, v.actor) for v in versions] == [
        (1, "1.0", "file", "signoff"),
        (2, "1.1", "file", "file watcher"),
    ]

    _edit(folder / "pay.yml", PAY.replace("    type: set\n", "    type: sett\n"))
    assert await watcher.check() == []
    assert catalog.get("pay") is changed  # the last valid version keeps serving
    [issue] = catalog.errors_for("pay")
    assert issue.file == str(folder / "pay.yml")
    assert issue.line == 6
    assert "sett" in str(issue)
    assert len(await store.list_publications("pay")) == 2

    _edit(folder / "pay.yml", PAY)  # back to the first source: a new number, the same hash
    [back] = await watcher.check()
    assert catalog.errors == []
    versions = await store.list_publications("pay")
    assert [(v.version, v.content_hash) for v in versions][-1] == (3, versions[0].content_hash)
    assert back.content_hash == versions[0].content_hash

    (folder / "pay.yml").unlink()
    await watcher.check()
    assert catalog.ids() == []
    pinned = await catalog.pinned(versions[1].content_hash, store)  # runs keep their version
    assert pinned.content_hash == versions[1].content_hash


async def test_publish_file_copies_into_the_folder_and_rollback_rewrites_it(
    folder: Path, tmp_path: Path
) -> None:
    store, clock = InMemoryRunStore(), FixedClock()
    catalog = WorkflowCatalog.from_directory(folder)
    await publish_catalog(store, catalog, clock)
    draft = tmp_path / "pay-draft.yml"
    draft.write_text(PAY.replace("title: Pay", "title: Pay <b>now</b>"), encoding="utf-8")
    done = await publish_file(store, catalog, clock, folder, draft, actor="ann")
    assert (done.version.version, done.created, done.file) == (2, True, folder / "pay.yml")
    assert (folder / "pay.yml").read_text(encoding="utf-8") == draft.read_text(encoding="utf-8")
    again = await publish_file(store, catalog, clock, folder, draft, actor="ann")
    assert (again.version.version, again.created) == (2, False)

    broken = tmp_path / "broken.yml"
    broken.write_text(PAY.replace("    data:", "    dta:"), encoding="utf-8")
    with pytest.raises(InvalidWorkflow) as refused:
        await publish_file(store, catalog, clock, folder, broken, actor="ann")
    assert f"{broken}:" in str(refused.value)
    other = tmp_path / "other.yml"
    other.write_text(PAY.replace("id: pay", "id: other"), encoding="utf-8")
    (folder / "other.yml").write_text(PAY, encoding="utf-8")  # holds "pay" under another name
    catalog = WorkflowCatalog.from_directory(folder / "missing")
    done_other = await publish_file(store, catalog, clock, folder, other, actor="ann")
    assert done_other.file == folder / "other.yml"

    rolled = await rollback(store, catalog, clock, folder, "pay", "v1", actor="bob")
    assert (rolled.version.version, rolled.version.note, rolled.version.actor) == (3, "rollback to v1", "bob")
    assert (folder / "pay.yml").read_text(encoding="utf-8") == PAY
    with pytest.raises(NotFound, match="no version 7: pay has versions 1 to 3"):
        await rollback(store, catalog, clock, folder, "pay", "7", actor="bob")


async def test_publish_file_refuses_to_overwrite_another_workflow(folder: Path, tmp_path: Path) -> None:
    store, clock = InMemoryRunStore(), FixedClock()
    (folder / "pay.yml").unlink()
    (folder / "ship2.yml").write_text(PAY.replace("id: pay", "id: ship"), encoding="utf-8")
    catalog = WorkflowCatalog.from_directory(folder)
    draft = tmp_path / "draft.yml"
    draft.write_text(PAY.replace("id: pay", "id: ship2"), encoding="utf-8")
    with pytest.raises(InvalidInput, match="holds workflow 'ship', not 'ship2'"):
        await publish_file(store, catalog, clock, folder, draft, actor="ann")
    assert await store.list_publications() == []


async def test_versions_are_named_by_number_or_hash_and_diffed() -> None:
    store, clock = InMemoryRunStore(), FixedClock()
    first = load_workflow_text(PAY, file="pay.yml")
    second = load_workflow_text(PAY.replace("{{ 1 }}", "{{ 2 }}"), file="pay.yml")
    v1, _ = await publish(store, first, note="file", actor="a", at=clock.now())
    v2, _ = await publish(store, second, note="file", actor="a", at=clock.now())
    versions = await store.list_publications("pay")
    assert find_version("pay", versions, "2") == v2
    assert find_version("pay", versions, "V1") == v1
    assert find_version("pay", versions, v2.content_hash[:8]) == v2
    with pytest.raises(InvalidInput, match="is not a version"):
        find_version("pay", versions, "latest!")
    with pytest.raises(NotFound, match="content hash starting 000000"):
        find_version("pay", versions, "000000")
    with pytest.raises(NotFound, match="no published versions"):
        find_version("pay", [], "1")
    lines = unified_diff("pay", v1, first.source, v2, second.source)
    assert lines[:2] == [f"--- pay v1 ({v1.content_hash[:12]})", f"+++ pay v2 ({v2.content_hash[:12]})"]
    kinds = [(d.kind, d.text) for d in diff_lines(lines)]
    assert ("del", '-    data: {booked: "{{ 1 }}"}') in kinds
    assert ("add", '+    data: {booked: "{{ 2 }}"}') in kinds
    assert kinds[2][0] == "hunk"


def test_the_version_key_is_a_label_and_must_be_a_string_or_number() -> None:
    assert load_workflow_text(PAY.replace('"1.0"', "3"), file="pay.yml").label == "3"
    assert load_workflow_text(PAY.replace('version: "1.0"\n', ""), file="pay.yml").label == ""
    with pytest.raises(InvalidWorkflow, match=r"pay.yml:3: 'version' is a label"):
        load_workflow_text(PAY.replace('"1.0"', "[1, 2]"), file="pay.yml")
