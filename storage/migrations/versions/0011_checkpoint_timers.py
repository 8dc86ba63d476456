"""Timer pages: open checkpoints by deadline and by opening time, through two indexes, so the
timer service reads the deadlines of the next minutes instead of every open checkpoint.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_checkpoints_status_due_at_id", "checkpoints", ["status", "due_at", "id"])
    op.create_index("ix_checkpoints_status_created_at_id", "checkpoints", ["status", "created_at", "id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_checkpoints_status_created_at_id", table_name="checkpoints")
    op.drop_index("ix_checkpoints_status_due_at_id", table_name="checkpoints")
