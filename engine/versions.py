"""Workflow versions: publish a loaded workflow, find a version by number or hash, diff two.

A version is a numbered publication (1, 2, 3... per workflow id) of a source pinned by its
content hash. Publishing the source that the newest version already serves changes nothing;
publishing an older source again (a rollback, or an edit undone) takes the next number, so
the list of versions is the history of what served when. Runs pin the content hash, never the
number, so nothing a publish does reaches a run that has started.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime

from engine.errors import InvalidInput, NotFound
from engine.model import Workflow, WorkflowPublication, WorkflowVersion
from engine.ports import AuditDraft, RunStore

__all__ = ["DiffLine", "diff_lines", "find_version", "publish", "published_event", "unified_diff"]

_NUMBER = re.compile(r"^(?:[vV](\d+)|(\d{1,5}))$")  # 6+ digits: a hash prefix
_HASH = re.compile(r"^[0-9a-f]{6,64}$")


def published_event(publication: WorkflowPublication, channel: str) -> AuditDraft:
    """The audit event of a version published on purpose (``signoff workflows publish|rollback``)."""
    return AuditDraft(
        at=publication.published_at,
        actor=publication.actor,
        channel=channel,
        kind="workflow.published",
        payload={
            "workflow_id": publication.workflow_id,
            "version": publication.version,
            "content_hash": publication.content_hash,
            "label": publication.label,
            "note": publication.note,
        },
    )


async def publish(
    store: RunStore,
    workflow: Workflow,
    *,
    note: str,
    actor: str,
    at: datetime,
    channel: str | None = None,
) -> tuple[WorkflowPublication, bool]:
    """Publish a validated workflow; returns its version and whether this call numbered it.
    With ``channel`` a new number is also audited (``workflow.published``)."""
    return await store.publish_version(
        WorkflowVersion(
            workflow_id=workflow.id,
            content_hash=workflow.content_hash,
            source=workflow.source,
            path=workflow.path,
            created_at=at,
        ),
        label=workflow.label,
        note=note,
        actor=actor,
        channel=channel,
    )


def find_version(workflow_id: str, versions: list[WorkflowPublication], ref: str) -> WorkflowPublication:
    """The version ``ref`` names: a number (``3`` or ``v3``) or a content hash prefix (6+ hex
    digits; six or more plain digits are read as a hash prefix too).

    Raises:
        InvalidInput: ``ref`` is neither a number nor a hash prefix.
        NotFound: no such version (the message lists the known numbers), or the hash prefix
            names no version of this workflow.
    """
    if not versions:
        raise NotFound(f"workflow '{workflow_id}' has no published versions")
    known = f"{workflow_id} has versions 1 to {versions[-1].version}"
    text = ref.strip()
    number = _NUMBER.match(text)
    if number:
        wanted = int(number.group(1) or number.group(2))
        for v in versions:
            if v.version == wanted:
                return v
        raise NotFound(f"no version {wanted}: {known}")
    if _HASH.match(text.lower()):
        hits = [v for v in versions if v.content_hash.startswith(text.lower())]
        if not hits:
            raise NotFound(f"no version of {workflow_id} has a content hash starting {text}")
        # the same source published twice (a rollback) has one hash: the newest number wins
        return hits[-1]
    raise InvalidInput(
        f"'{ref}' is not a version: give its number (3 or v3) or the start of its content hash"
    )


def unified_diff(
    workflow_id: str, old: WorkflowPublication, old_source: str, new: WorkflowPublication, new_source: str
) -> list[str]:
    """A unified diff of two versions' sources, headed by workflow id, number and short hash."""
    return list(
        difflib.unified_diff(
            old_source.splitlines(),
            new_source.splitlines(),
            fromfile=f"{workflow_id} v{old.version} ({old.content_hash[:12]})",
            tofile=f"{workflow_id} v{new.version} ({new.content_hash[:12]})",
            lineterm="",
        )
    )


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff, with its kind: ``file``, ``hunk``, ``add``, ``del`` or ``same``."""

    kind: str
    text: str


def diff_lines(lines: list[str]) -> list[DiffLine]:
    """Classify unified diff lines for display (the text is shown as is, escaped by the page)."""
    out: list[DiffLine] = []
    for index, line in enumerate(lines):
        if index < 2 and line.startswith(("---", "+++")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        out.append(DiffLine(kind, line))
    return out
