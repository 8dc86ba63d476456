"""Delegations, and who edited / who was delegated on each checkpoint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "delegations",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("delegator", sa.String(), nullable=False),
        sa.Column("delegate", sa.String(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_delegations")),
        sa.UniqueConstraint("id", name=op.f("uq_delegations_id")),
    )
    op.create_index(op.f("ix_delegations_delegator"), "delegations", ["delegator"], unique=False)
    op.create_index(op.f("ix_delegations_until"), "delegations", ["until"], unique=False)
    with op.batch_alter_table("checkpoints") as batch:
        # existing rows: nobody edited, nobody delegated
        batch.add_column(
            sa.Column("editors", sa.JSON(none_as_null=True), nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(
            sa.Column("delegations", sa.JSON(none_as_null=True), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("delegations")
        batch.drop_column("editors")
    op.drop_index(op.f("ix_delegations_until"), table_name="delegations")
    op.drop_index(op.f("ix_delegations_delegator"), table_name="delegations")
    op.drop_table("delegations")
