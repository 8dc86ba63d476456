"""What a timer service reads to plan deadlines and reminders: open checkpoints with a deadline,
one page at a time, through the ``(status, due_at, id)`` and ``(status, created_at, id)`` indexes."""

from __future__ import annotations

from typing import Any

from engine.model import CheckpointStatus
from engine.ports import CheckpointTimes, TimerQuery
from storage._db import Tx
from storage._sql import Sql, bind_when, read_when

__all__ = ["checkpoint_times", "statement", "timer_nodes"]

_COLUMNS = "c.id, c.run_id, c.node_id, r.workflow_hash, c.due_at, c.escalation_level, c.created_at"
_OPEN = f"c.status = '{CheckpointStatus.open.value}' AND c.due_at IS NOT NULL"
_NODES = Sql(
    "SELECT DISTINCT r.workflow_hash, c.node_id FROM checkpoints c JOIN runs r ON r.id = c.run_id"
    f" WHERE {_OPEN} ORDER BY r.workflow_hash, c.node_id"
)


def timer_nodes(tx: Tx) -> list[tuple[str, str]]:
    """The distinct ``(workflow_hash, node_id)`` of open checkpoints with a deadline."""
    return [(row[0], row[1]) for row in tx.query(_NODES).fetchall()]


def checkpoint_times(tx: Tx, query: TimerQuery) -> list[CheckpointTimes]:
    """One page of open checkpoints with a deadline (see ``TimerQuery``)."""
    if query.ids is not None and not query.ids:
        return []
    sql, params = statement(query, tx.pg)
    return [
        CheckpointTimes(
            checkpoint_id=row[0],
            run_id=row[1],
            node_id=row[2],
            workflow_hash=row[3],
            due_at=read_when(row[4], tx.pg),
            escalation_level=row[5],
            created_at=read_when(row[6], tx.pg),
        )
        for row in tx.query(sql, params).fetchall()
    ]


def statement(query: TimerQuery, pg: bool) -> tuple[Sql, dict[str, Any]]:
    """The SQL of ``query`` and its parameters."""
    key = "c.created_at" if query.opened_between is not None else "c.due_at"
    where = [_OPEN]
    params: dict[str, Any] = {"limit": query.limit}
    if query.due_before is not None:
        where.append("c.due_at <= :due_before")
        params["due_before"] = bind_when(query.due_before, pg)
    if query.opened_between is not None:
        where.append("c.escalation_level = 0 AND c.created_at > :start AND c.created_at <= :end")
        params["start"] = bind_when(query.opened_between[0], pg)
        params["end"] = bind_when(query.opened_between[1], pg)
    if query.ids is not None:
        names = [f"i{n}" for n in range(len(query.ids))]
        where.append(f"c.id IN ({', '.join(':' + n for n in names)})")
        params.update(zip(names, query.ids, strict=True))
    if query.after is not None:
        # the first term is the index range; the second only sorts out the ties
        where.append(f"{key} >= :after_at AND ({key} > :after_at OR c.id > :after_id)")
        params["after_at"] = bind_when(query.after[0], pg)
        params["after_id"] = query.after[1]
    # by id: through the unique id index, not a walk of every open checkpoint in deadline order
    order = "c.id" if query.ids is not None else f"{key}, c.id"
    sql = Sql(
        f"SELECT {_COLUMNS} FROM checkpoints c JOIN runs r ON r.id = c.run_id"
        f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT :limit"
    )
    return sql, params
