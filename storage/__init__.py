"""Durable storage: SQLModel tables, the SQL ``RunStore`` and its Alembic migrations.

The names below are imported on first use, so that ``storage.light`` (the CLI's read path, the
database driver alone) does not pay for SQLAlchemy by being inside this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage._errors import StorageError
    from storage._migrate import migrate
    from storage._revisions import SchemaState, SchemaStatus
    from storage._schema import schema_status, upgrade_schema
    from storage.store import SqlStore, create_store

__all__ = [
    "SchemaState",
    "SchemaStatus",
    "SqlStore",
    "StorageError",
    "create_store",
    "migrate",
    "schema_status",
    "upgrade_schema",
]

_HOME = {
    "SchemaState": "storage._revisions",
    "SchemaStatus": "storage._revisions",
    "SqlStore": "storage.store",
    "StorageError": "storage._errors",
    "create_store": "storage.store",
    "migrate": "storage._migrate",
    "schema_status": "storage._schema",
    "upgrade_schema": "storage._schema",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
