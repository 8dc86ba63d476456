"""The version at which each checkpoint's proposal last changed (stale copies are refused), and
sealed audit events (their hash covers data keys by digest, so a retention purge keeps the chain),
and when a run's payloads were purged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("checkpoints") as batch:
        # existing rows: a proposal edited by a quorum member changed at the current version
        batch.add_column(sa.Column("content_version", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("audit_events") as batch:
        # existing events were hashed over their whole payload
        batch.add_column(sa.Column("sealed", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(
        "UPDATE checkpoints SET content_version = version "
        "WHERE editors IS NOT NULL AND CAST(editors AS TEXT) NOT IN ('[]', 'null')"
    )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("sealed")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("purged_at")
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("content_version")
