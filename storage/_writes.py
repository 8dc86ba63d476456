"""A transaction's writes after its locked reads: collected once, sent as the database allows.

A step commit, a decision and a new run each collect their writes here (steps, checkpoints and
their assignee index, closing a run's checkpoints, the run row, the decision, deliveries, audit
events and the audit head, a notification) and ``send`` them:

* on PostgreSQL, as one statement of data-modifying CTEs (``WITH s AS (INSERT ...), r AS
  (UPDATE runs ...), ... SELECT pg_notify(...)``), every row of a table in one multi-row
  ``VALUES``: psycopg's work per statement, not the statements, was most of the database
  thread's CPU. All parts run against the same snapshot and none sees another's change, so a
  batch whose parts would need to (the same step twice, checkpoints opened while the run's are
  closed, an assignee index rewritten) or that binds more values than one statement takes goes
  part by part instead;
* on SQLite, and in those cases, part by part in the order the parts were added, each table's
  rows with ``executemany``.

The SQL of each shape of batch (which parts, how many rows) is built once.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from engine.model import Checkpoint, CheckpointOutcome, CheckpointStatus, Decision, Delivery, Run, Step
from engine.ports import AuditDraft
from storage import _audit, _listen
from storage._db import Tx
from storage._listen import CHANNEL
from storage._sql import Sql, bind_when
from storage.mapping import (
    AUDIT,
    CHECKPOINTS,
    DECISIONS,
    DELIVERIES,
    RUNS,
    STEPS,
    Shape,
    insert,
    on_conflict_update,
)
from storage.tables import AUDIT_HEAD_ID

__all__ = [
    "CLOSE_CHECKPOINTS",
    "INDEX_ASSIGNEE",
    "INSERT_CHECKPOINT",
    "INSERT_DECISION",
    "INSERT_DELIVERY",
    "MUTABLE",
    "MUTABLE_AND_ID",
    "UNINDEX_ASSIGNEES",
    "UPDATE_RUN",
    "UPSERT_STEP",
    "Writes",
]

# the columns of a run that change after it is created
MUTABLE = (
    *("status", "pending", "reason", "rejected", "updated_at", "finished_at"),
    *("lease_owner", "lease_epoch", "lease_expires_at", "paused_at", "paused_by"),
)
MUTABLE_AND_ID = frozenset((*MUTABLE, "id"))
_ASSIGNEE = ("cid", "principal")
_STEP_UPSERT = on_conflict_update(STEPS, "id", {"id", "run_id"})

# each part on its own: one row's statement
UPSERT_STEP = insert(STEPS, _STEP_UPSERT)
INSERT_CHECKPOINT = insert(CHECKPOINTS)
INDEX_ASSIGNEE = Sql("INSERT INTO checkpoint_assignees (checkpoint_id, principal) VALUES (:cid, :principal)")
UNINDEX_ASSIGNEES = Sql("DELETE FROM checkpoint_assignees WHERE checkpoint_id = :cid")
CLOSE_CHECKPOINTS = Sql(
    "UPDATE checkpoints SET status = :resolved, outcome = :cancelled, resolved_at = :at,"
    " version = version + 1 WHERE run_id = :run_id AND status = :open"
)
UPDATE_RUN = Sql(f"UPDATE runs SET {', '.join(f'{n} = :{n}' for n in MUTABLE)} WHERE id = :id")
INSERT_DECISION = insert(DECISIONS)
INSERT_DELIVERY = insert(DELIVERIES)
_ONE_BY_ONE: dict[str, Sql] = {
    "s": UPSERT_STEP,
    "c": INSERT_CHECKPOINT,
    "u": UNINDEX_ASSIGNEES,
    "i": INDEX_ASSIGNEE,
    "e": INSERT_DECISION,
    "x": CLOSE_CHECKPOINTS,
    "r": UPDATE_RUN,
    "d": INSERT_DELIVERY,
    "a": _audit.INSERT_EVENT,
    "h": _audit.UPDATE_HEAD,
    "H": _audit.INSERT_HEAD,
}

# PostgreSQL's protocol binds at most 65,535 values per statement; a bigger batch (a checkpoint
# assigned to thousands, a rerun reusing thousands of steps) goes part by part instead
_MAX_PARAMS = 65_535


def _values(names: tuple[str, ...], part: str, rows: int) -> str:
    return ", ".join("(" + ", ".join(f":{part}{i}_{n}" for n in names) + ")" for i in range(rows))


def _insert(shape: Shape[Any], part: str, rows: int, extra: str = "") -> str:
    return f"INSERT INTO {shape.table} ({shape.columns}) VALUES {_values(shape.names, part, rows)} {extra}"


@lru_cache(maxsize=512)  # the shapes seen: which parts, how many rows each
def _statement(key: tuple[tuple[str, int], ...]) -> Sql:
    parts: list[str] = []
    notify = False
    for part, rows in key:
        if part == "s":
            parts.append(f"s AS ({_insert(STEPS, 's', rows, _STEP_UPSERT)})")
        elif part == "c":
            parts.append(f"c AS ({_insert(CHECKPOINTS, 'c', rows)})")
        elif part == "i":
            parts.append(
                "i AS (INSERT INTO checkpoint_assignees (checkpoint_id, principal)"
                f" VALUES {_values(_ASSIGNEE, 'i', rows)})"
            )
        elif part == "x":
            parts.append(
                "x AS (UPDATE checkpoints SET status = :x0_resolved, outcome = :x0_cancelled,"
                " resolved_at = :x0_at, version = version + 1"
                " WHERE run_id = :x0_run_id AND status = :x0_open)"
            )
        elif part == "r":
            sets = ", ".join(f"{n} = :r0_{n}" for n in MUTABLE)
            parts.append(f"r AS (UPDATE runs SET {sets} WHERE id = :r0_id)")
        elif part == "e":
            parts.append(f"e AS ({_insert(DECISIONS, 'e', rows)})")
        elif part == "d":
            parts.append(f"d AS ({_insert(DELIVERIES, 'd', rows)})")
        elif part == "a":
            parts.append(f"a AS ({_insert(AUDIT, 'a', rows)})")
        elif part == "h":
            parts.append(
                f"h AS (UPDATE audit_head SET seq = :h0_seq, hash = :h0_hash WHERE id = {AUDIT_HEAD_ID})"
            )
        elif part == "H":
            parts.append(
                f"h AS (INSERT INTO audit_head (id, seq, hash) VALUES ({AUDIT_HEAD_ID}, :H0_seq, :H0_hash))"
            )
        elif part == "n":
            notify = True
        else:  # pragma: no cover - a programming error (``u`` never goes in one statement)
            raise ValueError(f"unknown part {part!r}")
    main = f"SELECT pg_notify('{CHANNEL}', :n0_run_id)" if notify else "SELECT 1"
    return Sql(f"WITH {', '.join(parts)} {main}" if parts else main)


class Writes:
    """Writes collected for one transaction, in the order they are added."""

    __slots__ = ("key", "pg", "rows")

    def __init__(self, pg: bool) -> None:
        self.pg = pg
        self.key: list[tuple[str, int]] = []
        self.rows: dict[str, list[dict[str, Any]]] = {}  # by part, named as the columns

    def _add(self, part: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.rows[part] = rows
            self.key.append((part, len(rows)))

    def steps(self, steps: list[Step]) -> None:
        self._add("s", [STEPS.params(s, self.pg) for s in steps])

    def checkpoints(self, checkpoints: list[Checkpoint]) -> None:
        """New checkpoints and their assignee index."""
        self._add("c", [CHECKPOINTS.params(c, self.pg) for c in checkpoints])
        self._index(checkpoints)

    def reindex(self, checkpoint: Checkpoint, principals: list[str]) -> None:
        """Record anew who ``checkpoint`` is assigned to."""
        self._add("u", [{"cid": checkpoint.id}])
        self._index([checkpoint.model_copy(update={"assignees": principals})])

    def _index(self, checkpoints: list[Checkpoint]) -> None:
        rows = [
            {"cid": cp.id, "principal": principal}
            for cp in checkpoints
            for principal in dict.fromkeys(cp.assignees)
        ]
        self._add("i", rows)

    def close_checkpoints(self, run_id: str, at: datetime) -> None:
        """Cancel the run's open checkpoints (a run that ended leaves nothing to decide)."""
        close = {
            "resolved": CheckpointStatus.resolved.value,
            "cancelled": CheckpointOutcome.cancelled.value,
            "at": bind_when(at, self.pg),
            "run_id": run_id,
            "open": CheckpointStatus.open.value,
        }
        self._add("x", [close])

    def run(self, run: Run) -> None:
        """Write ``run``'s mutable columns."""
        self._add("r", [RUNS.params(run, self.pg, MUTABLE_AND_ID)])

    def decision(self, decision: Decision) -> None:
        self._add("e", [DECISIONS.params(decision, self.pg)])

    def deliveries(self, deliveries: list[Delivery]) -> None:
        self._add("d", [DELIVERIES.params(d, self.pg) for d in deliveries])

    def audit(self, drafts: list[AuditDraft], head: Any) -> None:
        """``drafts`` chained after the locked head row ``head`` (``(seq, hash)``; None: the
        chain is empty), and the head moved to their end."""
        if not drafts:
            return
        rows, seq, digest = _audit.link(self.pg, drafts, head)
        self._add("a", rows)
        self._add("H" if head is None else "h", [{"seq": seq, "hash": digest}])

    def notify(self, run_id: str) -> None:
        """Tell listening processes on commit (PostgreSQL; once: it folds identical ones)."""
        if "n" not in self.rows:
            self._add("n", [{"run_id": run_id}])

    def one(self) -> tuple[Sql, dict[str, Any]] | None:
        """The batch as one statement and its parameters (PostgreSQL); None when there is
        nothing to write, or its parts would need to see each other's changes, or it would bind
        more values than PostgreSQL takes in one statement."""
        rows = self.rows
        if not self.key or "u" in rows or ("c" in rows and "x" in rows):
            return None
        steps = rows.get("s", [])
        if len({s["id"] for s in steps}) != len(steps):
            return None
        if sum(len(r) * len(r[0]) for r in rows.values()) > _MAX_PARAMS:
            return None
        params: dict[str, Any] = {}
        for part, part_rows in rows.items():
            for i, row in enumerate(part_rows):
                prefix = f"{part}{i}_"
                for name, value in row.items():
                    params[prefix + name] = value
        return _statement(tuple(self.key)), params

    def send(self, tx: Tx) -> None:
        """Send the writes: as one statement when ``one`` allows it on PostgreSQL, else part by
        part in the order they were added."""
        batch = self.one() if tx.pg else None
        if batch is not None:
            tx.run(*batch)
            return
        for part, _ in self.key:
            rows = self.rows[part]
            if part == "n":
                _listen.notify(tx, rows[0]["run_id"])
            elif len(rows) == 1:
                tx.run(_ONE_BY_ONE[part], rows[0])
            else:
                tx.many(_ONE_BY_ONE[part], rows)
