"""Alembic, run from code: ``upgrade head`` inside one locked transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import URL

from storage._db import Database, Tx
from storage._revisions import MIGRATIONS_DIR

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["MIGRATIONS_DIR", "alembic_config", "migrate", "upgrade"]

# any constant works; it only has to be the same in every replica
_PG_LOCK_KEY = 0x5160FF


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic Config pointing at storage/migrations, optionally bound to a connection."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(tx: Tx) -> None:
    """``alembic upgrade head`` in ``tx``.

    Replicas starting together wait for each other: PostgreSQL through an advisory lock held
    until the transaction ends, SQLite through the ``BEGIN IMMEDIATE`` write lock of ``tx``.
    """
    if tx.pg:
        tx.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    from alembic import command

    command.upgrade(alembic_config(tx.conn), "head")


def migrate(url: str | URL) -> None:
    """Bring the database at ``url`` to the newest schema (creates it when empty)."""
    db = Database(url, pool_size=1)
    try:
        db.call(upgrade, write=True)
    finally:
        db.shutdown()
