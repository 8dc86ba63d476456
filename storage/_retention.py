"""Retention: finished runs' payloads removed, digests kept, the audit chain still verifiable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.audit import PURGED, purge_payload, purged_comment, purged_digest, sha256_of
from engine.model import RunStatus
from engine.ports import AuditDraft, PurgeReport
from storage import _audit
from storage._db import Tx
from storage._sql import Sql, bind_when, dumps_json, loads_json

__all__ = ["purge"]

_FINAL = ", ".join(f"'{s.value}'" for s in RunStatus if s.final)
_DUE = Sql(
    f"SELECT id FROM runs WHERE status IN ({_FINAL}) AND finished_at IS NOT NULL"
    " AND finished_at < :before AND purged_at IS NULL ORDER BY pk LIMIT :limit"
)
_PURGED_TEXT = "(removed by the retention policy)"


def _marker(value: Any) -> str:
    return dumps_json({PURGED: purged_digest(value) or sha256_of(value)})


def _ids(names: list[str]) -> tuple[str, dict[str, str]]:
    keys = [f"r{i}" for i in range(len(names))]
    return ", ".join(":" + k for k in keys), dict(zip(keys, names, strict=True))


def purge(
    tx: Tx, before: datetime, at: datetime, dry_run: bool, audit: list[AuditDraft], limit: int
) -> PurgeReport:
    """Remove the payloads of up to ``limit`` runs that finished before ``before``."""
    run_ids = [
        str(r[0]) for r in tx.query(_DUE, {"before": bind_when(before, tx.pg), "limit": limit}).fetchall()
    ]
    report = PurgeReport(run_ids=run_ids, dry_run=dry_run)
    if not run_ids or dry_run:
        return report
    marks, params = _ids(run_ids)
    counts: dict[str, int] = {}
    counts["runs"] = _rows(tx, "runs", "id", marks, params, ["inputs"], {"purged_at": bind_when(at, tx.pg)})
    counts["steps"] = _steps(tx, marks, params)
    counts["checkpoints"] = _rows(
        tx, "checkpoints", "run_id", marks, params, ["context", "proposed"], {"prompt": _PURGED_TEXT}
    )
    counts["decisions"] = _decisions(tx, marks, params)
    counts["deliveries"] = _rows(tx, "deliveries", "run_id", marks, params, ["payload"], {})
    counts["events"] = _events(tx, marks, params)
    head = _audit.lock_head(tx, audit)
    _audit.append(tx, audit, head)
    return report.model_copy(update=counts)


def _rows(
    tx: Tx,
    table: str,
    key: str,
    marks: str,
    params: dict[str, str],
    json_cols: list[str],
    fixed: dict[str, Any],
) -> int:
    """Replace each JSON column by a purge marker of its value (row by row: the digest differs)."""
    cols = ", ".join(["id", *json_cols])
    rows = tx.query(Sql(f"SELECT {cols} FROM {table} WHERE {key} IN ({marks})"), params).fetchall()
    sets = ", ".join([*(f"{c} = :{c}" for c in json_cols), *(f"{c} = :{c}" for c in fixed)])
    update = Sql(f"UPDATE {table} SET {sets} WHERE id = :id")
    for row in rows:
        values = {c: _marker(_load(row[n + 1])) for n, c in enumerate(json_cols)}
        tx.run(update, {"id": row[0], **values, **fixed})
    return len(rows)


def _load(value: Any) -> Any:
    return loads_json(value) if isinstance(value, str) else value


def _steps(tx: Tx, marks: str, params: dict[str, str]) -> int:
    rows = tx.query(
        Sql(f"SELECT id, input, output, error FROM steps WHERE run_id IN ({marks})"), params
    ).fetchall()
    update = Sql("UPDATE steps SET input = :input, output = :output, error = :error WHERE id = :id")
    for step_id, raw_input, raw_output, error in rows:
        output = _load(raw_output)
        kept = None
        if isinstance(output, dict):
            kept = dumps_json({"text": "", "data": {PURGED: sha256_of(output)}, "files": []})
        tx.run(
            update,
            {
                "id": step_id,
                "input": _marker(_load(raw_input)),
                "output": kept,
                "error": _PURGED_TEXT if error else None,
            },
        )
    return len(rows)


def _decisions(tx: Tx, marks: str, params: dict[str, str]) -> int:
    rows = tx.query(
        Sql(f"SELECT id, data, comment, diff FROM decisions WHERE run_id IN ({marks})"), params
    ).fetchall()
    update = Sql("UPDATE decisions SET data = :data, comment = :comment, diff = :diff WHERE id = :id")
    for decision_id, data, comment, diff in rows:
        tx.run(
            update,
            {
                "id": decision_id,
                "data": _marker(_load(data)),
                "comment": purged_comment(comment),
                "diff": _marker(_load(diff)),
            },
        )
    return len(rows)


def _events(tx: Tx, marks: str, params: dict[str, str]) -> int:
    """Sealed events of the runs lose their data keys' values; their hashes do not change."""
    rows = tx.query(
        Sql(f"SELECT seq, payload FROM audit_events WHERE sealed AND run_id IN ({marks})"), params
    ).fetchall()
    update = Sql("UPDATE audit_events SET payload = :payload WHERE seq = :seq")
    changed = 0
    for seq, raw in rows:
        payload = _load(raw)
        purged = purge_payload(payload)
        if purged != payload:
            tx.run(update, {"seq": seq, "payload": dumps_json(purged)})
            changed += 1
    return changed
