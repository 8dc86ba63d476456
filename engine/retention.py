"""Retention: remove what finished runs carried, keep who did what and the proof of it.

``purge`` replaces the payloads of runs that ended before a cutoff — inputs, step data and
errors, checkpoint prompts, context and proposals, decision data, comments and diffs, outbox
payloads, the data keys of their audit events, and any workspace left on disk — by the digests
of what they held. Ids, actors, times, actions, outcomes and hashes stay, so ``audit verify``
still passes, and still catches a change made afterwards. Titles stay too: they name what was
decided in the audit views.
"""

from __future__ import annotations

from datetime import timedelta

from engine.nodes.code import remove_run_workspace
from engine.ports import AuditDraft, PurgeReport
from engine.service import Engine

__all__ = ["purge"]

_BATCH = 200


async def purge(
    engine: Engine, *, older_than: timedelta, actor: str, channel: str, dry_run: bool = False
) -> PurgeReport:
    """Purge every run that ended more than ``older_than`` ago (in batches, one transaction each)."""
    now = engine.clock.now()
    before = now - older_than
    total = PurgeReport(dry_run=dry_run)
    while True:
        audit = AuditDraft(
            at=now,
            actor=actor,
            channel=channel,
            kind="retention.purged",
            payload={"finished_before": before.isoformat(), "older_than_s": older_than.total_seconds()},
        )
        batch = await engine.store.purge_runs(
            finished_before=before, at=now, dry_run=dry_run, audit=[audit], limit=_BATCH
        )
        total = _add(total, batch)
        for run_id in [] if dry_run else batch.run_ids:
            await remove_run_workspace(engine.deps.workspace_root, run_id)
        if dry_run or len(batch.run_ids) < _BATCH:
            return total


def _add(a: PurgeReport, b: PurgeReport) -> PurgeReport:
    return PurgeReport(
        run_ids=[*a.run_ids, *b.run_ids],
        dry_run=a.dry_run,
        runs=a.runs + b.runs,
        steps=a.steps + b.steps,
        checkpoints=a.checkpoints + b.checkpoints,
        decisions=a.decisions + b.decisions,
        deliveries=a.deliveries + b.deliveries,
        events=a.events + b.events,
    )
