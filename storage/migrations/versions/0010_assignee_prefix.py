"""The assignee index answers a principal prefix on PostgreSQL ("waiting for me" asks which user
groups and channels have open checkpoints with ``LIKE 'group:%'``; an index in the database's
default collation cannot answer that, so every assignee row was read). SQLite's index stays as it
is: its queries read a range of it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_checkpoint_assignees_principal"


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(_INDEX, table_name="checkpoint_assignees")
    op.create_index(
        _INDEX,
        "checkpoint_assignees",
        ["principal"],
        unique=False,
        postgresql_ops={"principal": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(_INDEX, table_name="checkpoint_assignees")
    op.create_index(_INDEX, "checkpoint_assignees", ["principal"], unique=False)
