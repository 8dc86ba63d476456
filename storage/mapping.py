"""Rows <-> engine models. Table classes never leave storage/; engine models cross the boundary.

Each engine model maps to the table columns of the same names (``pk`` and other storage-only
columns are left out), so reading is ``Model.model_validate(row)``: the boundary validates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel

from engine.model import AuditEvent, Checkpoint, Decision, Delivery, Run, Step, WorkflowVersion
from storage.tables import (
    AuditEventRow,
    CheckpointRow,
    DecisionRow,
    DeliveryRow,
    RunRow,
    StepRow,
    WorkflowVersionRow,
)

__all__ = [
    "AUDIT",
    "CHECKPOINTS",
    "DECISIONS",
    "DELIVERIES",
    "RUNS",
    "STEPS",
    "WORKFLOWS",
    "Mapped",
    "dumps_json",
    "normalise_json",
    "table_of",
    "to_model",
    "to_models",
    "to_values",
]

M = TypeVar("M", bound=BaseModel)


class Mapped:
    """One engine model and the table it is stored in, with the columns they share."""

    def __init__(self, model: type[BaseModel], table: sa.Table) -> None:
        missing = [name for name in model.model_fields if name not in table.c]
        if missing:
            raise TypeError(f"table {table.name} lacks columns for {model.__name__}: {missing}")
        self.model = model
        self.table = table
        self.columns: list[sa.Column[Any]] = [table.c[name] for name in model.model_fields]

    def select(self) -> sa.Select[Any]:
        """``SELECT <the model's columns> FROM <table>``."""
        return sa.select(*self.columns)


def table_of(row_class: type[Any]) -> sa.Table:
    """The Core ``Table`` of a SQLModel table class."""
    table = row_class.__table__
    if not isinstance(table, sa.Table):
        raise TypeError(f"{row_class.__name__} is not a table class")
    return table


WORKFLOWS = Mapped(WorkflowVersion, table_of(WorkflowVersionRow))
RUNS = Mapped(Run, table_of(RunRow))
STEPS = Mapped(Step, table_of(StepRow))
CHECKPOINTS = Mapped(Checkpoint, table_of(CheckpointRow))
DECISIONS = Mapped(Decision, table_of(DecisionRow))
DELIVERIES = Mapped(Delivery, table_of(DeliveryRow))
AUDIT = Mapped(AuditEvent, table_of(AuditEventRow))


def to_values(model: BaseModel) -> dict[str, Any]:
    """Column values of a model: enums become their string value, nested models dicts."""
    out = model.model_dump()
    for key, value in out.items():
        if isinstance(value, Enum):
            out[key] = value.value
    return out


def to_model(model: type[M], row: sa.Row[Any] | Mapping[str, Any]) -> M:
    """Validate one row (selected with ``Mapped.select``) into its engine model."""
    data = row._mapping if isinstance(row, sa.Row) else row
    return model.model_validate(dict(data))


def to_models(model: type[M], rows: Sequence[sa.Row[Any]]) -> list[M]:
    """Validate many rows into engine models."""
    return [model.model_validate(dict(r._mapping)) for r in rows]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        # the audit chain's encoding, so a payload hashes the same before and after storage
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps_json(value: Any) -> str:
    """The JSON encoding of JSON columns (key order kept, datetimes as ISO UTC strings)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def normalise_json(value: dict[str, Any]) -> dict[str, Any]:
    """A payload as it will read back from a JSON column (datetimes become strings, ...)."""
    result: dict[str, Any] = json.loads(dumps_json(value))
    return result
