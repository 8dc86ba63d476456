"""Operator controls and reruns: when and by whom a run was paused, the run a rerun repeats, and
whether a failed step may be retried in place.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("paused_by", sa.String(), nullable=True))
        batch.add_column(sa.Column("rerun_of", sa.String(), nullable=True))
    op.create_index(op.f("ix_runs_rerun_of"), "runs", ["rerun_of"], unique=False)
    with op.batch_alter_table("steps") as batch:
        batch.add_column(sa.Column("retryable", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("retryable")
    op.drop_index(op.f("ix_runs_rerun_of"), table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("rerun_of")
        batch.drop_column("paused_by")
        batch.drop_column("paused_at")
