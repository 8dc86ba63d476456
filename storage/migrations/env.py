"""Alembic environment: runs inside the connection and transaction that ``storage`` hands in.

There is no alembic.ini: ``storage.migrate(url)`` and ``SqlStore`` start-up build the Config
in code and pass an open connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from storage.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, sa.Connection):
    raise TypeError("run migrations through storage.migrate(url), which passes a connection")

context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
