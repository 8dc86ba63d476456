"""Rows <-> engine models. Table classes never leave storage/; engine models cross the boundary.

Each engine model maps to the table columns of the same names (``pk`` and other storage-only
columns are left out). A ``Shape`` knows those columns: it writes the SQL column list, turns a
model into bind parameters and validates a selected row into the model (the boundary
validates).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql

from engine.clients import ApiKey, Idempotency, WebhookEndpoint
from engine.installations import SlackInstallation
from engine.model import (
    AuditEvent,
    Checkpoint,
    Decision,
    Delegation,
    Delivery,
    Run,
    Step,
    WorkflowPublication,
    WorkflowVersion,
)
from storage._sql import JSON, PLAIN, WHEN, Rows, Sql, bind_when, dumps_json
from storage.tables import (
    ApiKeyRow,
    AuditEventRow,
    CheckpointRow,
    DecisionRow,
    DelegationRow,
    DeliveryRow,
    IdempotencyRow,
    RunRow,
    SlackInstallationRow,
    StepRow,
    UTCDateTime,
    WebhookEndpointRow,
    WorkflowPublicationRow,
    WorkflowVersionRow,
)

__all__ = [
    "API_KEYS",
    "AUDIT",
    "CHECKPOINTS",
    "DECISIONS",
    "DELEGATIONS",
    "DELIVERIES",
    "ENDPOINTS",
    "IDEMPOTENCY",
    "INSTALLATIONS",
    "PUBLICATIONS",
    "RUNS",
    "STEPS",
    "WORKFLOWS",
    "Shape",
    "insert",
    "on_conflict_update",
    "table_of",
    "upsert",
]

M = TypeVar("M", bound=BaseModel)

_QUOTE = postgresql.dialect().identifier_preparer.quote  # type: ignore[no-untyped-call]


def table_of(row_class: type[Any]) -> sa.Table:
    """The Core ``Table`` of a SQLModel table class."""
    table = row_class.__table__
    if not isinstance(table, sa.Table):
        raise TypeError(f"{row_class.__name__} is not a table class")
    return table


def _kind(column: sa.Column[Any]) -> int:
    if isinstance(column.type, UTCDateTime):
        return WHEN
    if isinstance(column.type, sa.JSON):
        return JSON
    return PLAIN


class Shape(Rows[M]):
    """An engine model's columns in one table: its SQL column list, its parameters, its rows."""

    def __init__(self, model: type[M], row_class: type[Any]) -> None:
        table = table_of(row_class)
        missing = [name for name in model.model_fields if name not in table.c]
        if missing:
            raise TypeError(f"table {table.name} lacks columns for {model.__name__}: {missing}")
        kinds = {name: _kind(table.c[name]) for name in model.model_fields}
        super().__init__(
            model,
            table.name,
            whens={n for n, k in kinds.items() if k == WHEN},
            jsons={n for n, k in kinds.items() if k == JSON},
            quote=_QUOTE,
        )
        self._subsets: dict[frozenset[str], tuple[tuple[str, int], ...]] = {}

    def params(self, model: BaseModel, pg: bool, only: frozenset[str] | None = None) -> dict[str, Any]:
        """Bind parameters named after the columns (enums as values, JSON as text), optionally
        ``only`` some of them."""
        kinds = self.kinds if only is None else self._only(only)
        fields = model.__dict__
        out: dict[str, Any] = {}
        for name, kind in kinds:
            value = fields[name]
            if kind == JSON:
                if isinstance(value, BaseModel):
                    value = value.model_dump()
                value = None if value is None else dumps_json(value)
            elif kind == WHEN:
                value = bind_when(value, pg)
            elif isinstance(value, Enum):
                value = value.value
            out[name] = value
        return out

    def columns_of(self, alias: str) -> str:
        """The column list qualified by a table alias (for a join)."""
        return ", ".join(f"{alias}.{_QUOTE(name)}" for name in self.names)

    def _only(self, only: frozenset[str]) -> tuple[tuple[str, int], ...]:
        kinds = self._subsets.get(only)
        if kinds is None:
            kinds = self._subsets[only] = tuple((n, k) for n, k in self.kinds if n in only)
        return kinds


def insert(shape: Shape[Any], extra: str = "") -> Sql:
    """``INSERT INTO <table> (<columns>) VALUES (<params>) <extra>``."""
    params = ", ".join(f":{name}" for name in shape.names)
    return Sql(f"INSERT INTO {shape.table} ({shape.columns}) VALUES ({params}) {extra}".rstrip())


def upsert(shape: Shape[Any], key: str, keep: set[str]) -> Sql:
    """Insert, or on a duplicate ``key`` overwrite every column but those in ``keep``."""
    return insert(shape, on_conflict_update(shape, key, keep))


def on_conflict_update(shape: Shape[Any], key: str, keep: set[str]) -> str:
    """``upsert``'s clause: ``ON CONFLICT (<key>) DO UPDATE SET`` every column but ``keep``."""
    sets = ", ".join(f"{_QUOTE(n)} = excluded.{_QUOTE(n)}" for n in shape.names if n not in keep)
    return f"ON CONFLICT ({_QUOTE(key)}) DO UPDATE SET {sets}"


WORKFLOWS: Shape[WorkflowVersion] = Shape(WorkflowVersion, WorkflowVersionRow)
PUBLICATIONS: Shape[WorkflowPublication] = Shape(WorkflowPublication, WorkflowPublicationRow)
RUNS: Shape[Run] = Shape(Run, RunRow)
STEPS: Shape[Step] = Shape(Step, StepRow)
CHECKPOINTS: Shape[Checkpoint] = Shape(Checkpoint, CheckpointRow)
DECISIONS: Shape[Decision] = Shape(Decision, DecisionRow)
DELIVERIES: Shape[Delivery] = Shape(Delivery, DeliveryRow)
AUDIT: Shape[AuditEvent] = Shape(AuditEvent, AuditEventRow)
DELEGATIONS: Shape[Delegation] = Shape(Delegation, DelegationRow)
API_KEYS: Shape[ApiKey] = Shape(ApiKey, ApiKeyRow)
IDEMPOTENCY: Shape[Idempotency] = Shape(Idempotency, IdempotencyRow)
ENDPOINTS: Shape[WebhookEndpoint] = Shape(WebhookEndpoint, WebhookEndpointRow)
INSTALLATIONS: Shape[SlackInstallation] = Shape(SlackInstallation, SlackInstallationRow)
