"""Workflow publications: numbered versions per workflow (publish, rollback), oldest first.

The sources already stored (pinned by runs) become versions 1, 2, ... of their workflow in the
order they were stored.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "workflow_publications",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("note", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_workflow_publications")),
        sa.UniqueConstraint("workflow_id", "version", name="uq_workflow_publications_number"),
    )
    op.execute(
        "INSERT INTO workflow_publications"
        " (workflow_id, version, content_hash, label, note, actor, published_at)"
        " SELECT workflow_id,"
        " ROW_NUMBER() OVER (PARTITION BY workflow_id ORDER BY created_at, content_hash),"
        " content_hash, '', 'stored before numbered versions', '', created_at"
        " FROM workflow_versions"
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("workflow_publications")
