"""The version at which each checkpoint's proposal last changed (stale copies are refused), and
sealed audit events (their hash covers data keys by digest, so a retention purge keeps the chain),
when a run's payloads were purged, and an index of checkpoint assignees ("waiting for me").

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import json
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
    op.create_table(
        "checkpoint_assignees",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("checkpoint_id", sa.String(), nullable=False),
        sa.Column("principal", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_checkpoint_assignees")),
        sa.UniqueConstraint("checkpoint_id", "principal", name=op.f("uq_checkpoint_assignees_checkpoint_id")),
    )
    op.create_index(
        op.f("ix_checkpoint_assignees_checkpoint_id"), "checkpoint_assignees", ["checkpoint_id"], unique=False
    )
    op.create_index(op.f("ix_checkpoint_assignees_principal"), "checkpoint_assignees", ["principal"], unique=False)
    _index_existing_assignees()
    op.execute(
        "UPDATE checkpoints SET content_version = version "
        "WHERE editors IS NOT NULL AND CAST(editors AS TEXT) NOT IN ('[]', 'null')"
    )


def _index_existing_assignees() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, assignees FROM checkpoints")).fetchall()
    table = sa.table("checkpoint_assignees", sa.column("checkpoint_id"), sa.column("principal"))
    values = []
    for checkpoint_id, assignees in rows:
        principals = json.loads(assignees) if isinstance(assignees, str) else assignees
        values += [{"checkpoint_id": checkpoint_id, "principal": p} for p in dict.fromkeys(principals or [])]
    if values:
        op.bulk_insert(table, values)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_checkpoint_assignees_principal"), table_name="checkpoint_assignees")
    op.drop_index(op.f("ix_checkpoint_assignees_checkpoint_id"), table_name="checkpoint_assignees")
    op.drop_table("checkpoint_assignees")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("sealed")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("purged_at")
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("content_version")
