"""PostgreSQL: a transaction's writes, after its locked reads, sent as one statement.

psycopg's work per statement (binding, the pipeline's bookkeeping, the result) is most of the
database thread's CPU on a step commit, while the statements themselves are tiny. So the
writes that follow a step commit's or a decision's reads go as data-modifying CTEs of one
statement (``WITH s AS (INSERT ...), r AS (UPDATE runs ...), ... SELECT pg_notify(...)``),
every row of a table in one multi-row ``VALUES``. All parts run against the same snapshot and
none sees another's change, so a batch only holds writes that do not need to: each table is
written by one part (callers fall back to statement by statement otherwise, e.g. a run that
ends while opening checkpoints, or a step written twice). The SQL of each shape of batch
(which parts, how many rows) is built once.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from engine.model import Checkpoint, CheckpointOutcome, CheckpointStatus, Decision, Delivery, Run, Step
from storage._db import Tx
from storage._listen import CHANNEL
from storage._sql import Sql, bind_when
from storage.mapping import AUDIT, CHECKPOINTS, DECISIONS, DELIVERIES, RUNS, STEPS, Shape, upsert_text
from storage.tables import AUDIT_HEAD_ID

__all__ = ["MUTABLE", "MUTABLE_AND_ID", "Writes"]

# the columns of a run that change after it is created
MUTABLE = (
    *("status", "pending", "reason", "rejected", "updated_at", "finished_at"),
    *("lease_owner", "lease_epoch", "lease_expires_at", "paused_at", "paused_by"),
)
MUTABLE_AND_ID = frozenset((*MUTABLE, "id"))
_ASSIGNEE = ("cid", "principal")


def _values(names: tuple[str, ...], part: str, rows: int) -> str:
    return ", ".join("(" + ", ".join(f":{part}{i}_{n}" for n in names) + ")" for i in range(rows))


def _insert(shape: Shape[Any], part: str, rows: int, extra: str = "") -> str:
    return f"INSERT INTO {shape.table} ({shape.columns}) VALUES {_values(shape.names, part, rows)} {extra}"


# PostgreSQL's protocol binds at most 65,535 values per statement; a bigger batch (a checkpoint
# assigned to thousands, a rerun reusing thousands of steps) goes part by part instead
_MAX_PARAMS = 65_535
_STEP_SETS = upsert_text(STEPS, "id", {"id", "run_id"}).split(" ON CONFLICT ", 1)[1]


@lru_cache(maxsize=512)  # the shapes seen: which parts, how many rows each
def _statement(key: tuple[tuple[str, int], ...]) -> Sql:
    parts: list[str] = []
    notify = False
    for part, rows in key:
        if part == "s":
            parts.append(f"s AS ({_insert(STEPS, 's', rows, 'ON CONFLICT ' + _STEP_SETS)})")
        elif part == "c":
            parts.append(f"c AS ({_insert(CHECKPOINTS, 'c', rows)})")
        elif part == "i":
            parts.append(
                "i AS (INSERT INTO checkpoint_assignees (checkpoint_id, principal)"
                f" VALUES {_values(_ASSIGNEE, 'i', rows)})"
            )
        elif part == "x":
            parts.append(
                "x AS (UPDATE checkpoints SET status = :x_resolved, outcome = :x_cancelled,"
                " resolved_at = :x_at, version = version + 1 WHERE run_id = :x_run_id AND status = :x_open)"
            )
        elif part == "r":
            sets = ", ".join(f"{n} = :r_{n}" for n in MUTABLE)
            parts.append(f"r AS (UPDATE runs SET {sets} WHERE id = :r_id)")
        elif part == "e":
            parts.append(f"e AS ({_insert(DECISIONS, 'e', rows)})")
        elif part == "d":
            parts.append(f"d AS ({_insert(DELIVERIES, 'd', rows)})")
        elif part == "a":
            parts.append(f"a AS ({_insert(AUDIT, 'a', rows)})")
        elif part == "h":
            parts.append(
                f"h AS (UPDATE audit_head SET seq = :h_seq, hash = :h_hash WHERE id = {AUDIT_HEAD_ID})"
            )
        elif part == "n":
            notify = True
        else:  # pragma: no cover - a programming error
            raise ValueError(f"unknown part {part!r}")
    main = f"SELECT pg_notify('{CHANNEL}', :n_run_id)" if notify else "SELECT 1"
    return Sql(f"WITH {', '.join(parts)} {main}" if parts else main)


class Writes:
    """Writes collected for one statement, in the order they are added (PostgreSQL only)."""

    __slots__ = ("key", "params", "pg", "rows")

    def __init__(self, tx: Tx) -> None:
        self.pg = tx.pg
        self.key: list[tuple[str, int]] = []
        self.params: dict[str, Any] = {}  # of the one-row parts (r, x, h, n), named with their part
        self.rows: dict[str, list[dict[str, Any]]] = {}  # of the many-row parts, by part

    def _rows(self, part: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self.rows[part] = rows
        self.key.append((part, len(rows)))

    def steps(self, steps: list[Step]) -> None:
        self._rows("s", [STEPS.params(s, self.pg) for s in steps])

    def checkpoints(self, checkpoints: list[Checkpoint]) -> None:
        self._rows("c", [CHECKPOINTS.params(c, self.pg) for c in checkpoints])
        self._rows(
            "i",
            [
                {"cid": cp.id, "principal": principal}
                for cp in checkpoints
                for principal in dict.fromkeys(cp.assignees)
            ],
        )

    def close_checkpoints(self, run_id: str, at: datetime) -> None:
        self.params.update(
            x_resolved=CheckpointStatus.resolved.value,
            x_cancelled=CheckpointOutcome.cancelled.value,
            x_at=bind_when(at, self.pg),
            x_run_id=run_id,
            x_open=CheckpointStatus.open.value,
        )
        self.key.append(("x", 1))

    def run(self, run: Run) -> None:
        """Write ``run``'s mutable columns."""
        for name, value in RUNS.params(run, self.pg, MUTABLE_AND_ID).items():
            self.params["r_" + name] = value
        self.key.append(("r", 1))

    def decision(self, decision: Decision) -> None:
        self._rows("e", [DECISIONS.params(decision, self.pg)])

    def deliveries(self, deliveries: list[Delivery]) -> None:
        self._rows("d", [DELIVERIES.params(d, self.pg) for d in deliveries])

    def audit(self, rows: list[dict[str, Any]], seq: int, digest: str) -> None:
        """The events ``_audit.link`` chained, and the head moved to their end (it exists)."""
        self._rows("a", rows)
        self.params["h_seq"] = seq
        self.params["h_hash"] = digest
        self.key.append(("h", 1))

    def notify(self, run_id: str) -> None:
        """``pg_notify`` on commit (once: PostgreSQL folds a transaction's identical ones)."""
        if ("n", 1) not in self.key:
            self.params["n_run_id"] = run_id
            self.key.append(("n", 1))

    def one(self) -> tuple[Sql, dict[str, Any]] | None:
        """The batch as one statement and its parameters; None when there is nothing to write
        or it would bind more values than PostgreSQL takes in one statement."""
        if not self.key:
            return None
        size = len(self.params) + sum(len(rows) * len(rows[0]) for rows in self.rows.values())
        if size > _MAX_PARAMS:
            return None
        params = dict(self.params)
        for part, rows in self.rows.items():
            for i, row in enumerate(rows):
                prefix = f"{part}{i}_"
                for name, value in row.items():
                    params[prefix + name] = value
        return _statement(tuple(self.key)), params

    def send(self, tx: Tx) -> None:
        """Send the batch as one statement, or, too big for one, part by part in the order the
        parts were added (each table's rows with ``executemany``), as the callers' statement by
        statement path would."""
        batch = self.one()
        if batch is not None:
            tx.run(*batch)
            return
        for part, _ in self.key:
            rows = self.rows.get(part)
            if rows is None:
                own = {k: v for k, v in self.params.items() if k.startswith(f"{part}_")}
                tx.run(_statement(((part, 1),)), own)
            else:
                prefix = f"{part}0_"
                tx.many(_statement(((part, 1),)), [{prefix + k: v for k, v in row.items()} for row in rows])
