"""The workflows folder as the published set: publish on save, ``publish FILE``, rollback, reload.

The rule (docs/workflows.md): a valid file in ``SIGNOFF_WORKFLOWS_DIR`` is the workflow's
published version. A process that loads the folder publishes what it finds (a new number only
when the source differs from the newest version); the server looks for changed files every
``SIGNOFF_WORKFLOWS_RELOAD`` seconds and serves valid ones at once. A file that does not load
is reported (log, console) and its workflow's last valid version keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.catalog import WorkflowCatalog
from engine.errors import InvalidInput
from engine.loader import load_directory, load_workflow_file, load_workflow_text
from engine.model import Workflow, WorkflowPublication
from engine.ports import Clock, RunStore
from engine.tasks import stop_task
from engine.versions import find_version, publish

__all__ = [
    "FolderWatcher",
    "Published",
    "folder_signature",
    "publish_catalog",
    "publish_file",
    "rollback",
]

log = logging.getLogger("signoff.workflows")

_SUFFIXES = {".yml", ".yaml", ".json"}
Signature = dict[str, tuple[int, int, int]]


@dataclass(frozen=True)
class Published:
    """What a publish did: the newest version, whether it is new, and the file that holds it."""

    version: WorkflowPublication
    created: bool
    file: Path


async def publish_catalog(
    store: RunStore, catalog: WorkflowCatalog, clock: Clock, *, note: str = "file", actor: str = "signoff"
) -> list[WorkflowPublication]:
    """Publish every workflow the catalog serves; returns the versions this call numbered."""
    created: list[WorkflowPublication] = []
    for wf in catalog.all():
        version, new = await publish(store, wf, note=note, actor=actor, at=clock.now())
        if new:
            created.append(version)
    return created


def folder_signature(directory: Path) -> Signature:
    """Name -> (modification time in ns, size, inode) of every workflow file in the folder (an
    editor that saves by replacing the file changes the inode even within one clock tick)."""
    found: Signature = {}
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            if Path(entry.name).suffix in _SUFFIXES and entry.is_file():
                stat = entry.stat()
                found[entry.name] = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    return found


def _target(catalog: WorkflowCatalog, directory: Path, workflow_id: str, suffix: str) -> Path:
    """The folder file that holds ``workflow_id``: its current file, else ``<id><suffix>``."""
    if workflow_id in catalog.ids() and catalog.get(workflow_id).path:
        return Path(catalog.get(workflow_id).path)
    return directory / f"{workflow_id}{suffix}"


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().parent == directory.resolve()


def _write(path: Path, text: str) -> None:
    """Replace ``path`` at once (a reader sees the old file or the new one, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


async def publish_file(
    store: RunStore, catalog: WorkflowCatalog, clock: Clock, directory: Path, file: Path, *, actor: str
) -> Published:
    """Validate ``file`` and publish it; a file outside the folder is copied over the folder's
    file of the same workflow id (or to ``<id>.<ext>`` in the folder).

    Raises:
        InvalidWorkflow: the file does not load (every issue with file and line).
        InvalidInput: the folder's file of that name holds another workflow.
    """
    wf = load_workflow_file(
        file, roles=catalog.roles, skills=catalog.skills, llm_available=catalog.llm_available
    )
    if _inside(file, directory):
        target = directory / file.name
    else:
        target = _target(catalog, directory, wf.id, file.suffix if file.suffix in _SUFFIXES else ".yml")
        _refuse_overwrite(catalog, target, wf.id)
    wf = wf.model_copy(update={"path": str(target)})
    version, created = await publish(store, wf, note="publish", actor=actor, at=clock.now(), channel="cli")
    if not _inside(file, directory):
        await asyncio.to_thread(_write, target, wf.source)
    return Published(version, created, target)


def _refuse_overwrite(catalog: WorkflowCatalog, target: Path, workflow_id: str) -> None:
    if not target.exists():
        return
    holder = next((wf.id for wf in catalog.all() if wf.path == str(target)), None)
    if holder is not None and holder != workflow_id:
        raise InvalidInput(f"{target} holds workflow '{holder}', not '{workflow_id}': rename one of them")


async def rollback(
    store: RunStore,
    catalog: WorkflowCatalog,
    clock: Clock,
    directory: Path,
    workflow_id: str,
    ref: str,
    *,
    actor: str,
) -> Published:
    """Publish an earlier version's source again, as the next number, and write it to the
    workflow's file so that the folder (what every process serves) says the same.

    Raises:
        NotFound / InvalidInput: no such workflow or version.
        InvalidWorkflow: that version no longer loads here (a role or skill it names is gone).
    """
    versions = await store.list_publications(workflow_id)
    chosen = find_version(workflow_id, versions, ref)
    source = (await store.get_workflow_version(chosen.content_hash)).source
    target = _target(catalog, directory, workflow_id, ".yml")
    wf = load_workflow_text(
        source,
        file=str(target),
        roles=catalog.roles,
        skills=catalog.skills,
        llm_available=catalog.llm_available,
    )
    version, created = await publish(
        store, wf, note=f"rollback to v{chosen.version}", actor=actor, at=clock.now(), channel="cli"
    )
    await asyncio.to_thread(_write, target, source)
    return Published(version, created, target)


class FolderWatcher:
    """Looks for changed workflow files every ``interval_s`` seconds; serves and publishes the
    valid ones, reports the others, and leaves the last valid version of a broken file serving."""

    def __init__(
        self,
        store: RunStore,
        catalog: WorkflowCatalog,
        clock: Clock,
        directory: Path,
        *,
        interval_s: float,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.directory = directory
        self.interval_s = interval_s
        self._seen = folder_signature(directory)
        self._unpublished: dict[str, Workflow] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start looking (no-op when the interval is 0)."""
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="signoff-workflows")

    async def stop(self) -> None:
        """Stop looking."""
        await stop_task(self._task)
        self._task = None

    async def check(self) -> list[Workflow]:
        """Reload the folder if a file changed; returns the workflows that now serve a new source."""
        now = folder_signature(self.directory)
        changed: list[Workflow] = []
        if now != self._seen:
            self._seen = now
            good, bad = (
                await asyncio.to_thread(
                    load_directory,
                    self.directory,
                    roles=self.catalog.roles,
                    skills=self.catalog.skills,
                    llm_available=self.catalog.llm_available,
                )
                if self.directory.is_dir()
                else ({}, [])
            )
            before = set(self.catalog.ids())
            changed = self.catalog.reload(good, bad)
            for err in bad:
                log.error("workflow file not loaded (the last valid version keeps serving):\n%s", err)
            for gone in sorted(before - set(self.catalog.ids())):
                log.warning("workflow %s: its file is gone; no new runs start on it", gone)
            for wf in changed:
                self._unpublished[wf.id] = wf
        await self._publish_pending()
        return changed

    async def _publish_pending(self) -> None:
        for wf_id, wf in list(self._unpublished.items()):
            try:
                version, created = await publish(
                    self.store, wf, note="file", actor="file watcher", at=self.clock.now()
                )
            except Exception:  # the database may be away: try again at the next look
                log.exception("workflow %s: could not record the new version; trying again", wf_id)
                continue
            del self._unpublished[wf_id]
            if created:
                log.info("workflow %s: published version %d from %s", wf_id, version.version, wf.path)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception:  # the loop must outlive any one failure
                log.exception("looking for changed workflow files failed")
