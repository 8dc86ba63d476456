"""Durable storage: SQLModel tables, the SQL ``RunStore`` and its Alembic migrations."""

from __future__ import annotations

from storage._db import StorageError
from storage._migrate import migrate
from storage._schema import SchemaState, SchemaStatus, schema_status, upgrade_schema
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
