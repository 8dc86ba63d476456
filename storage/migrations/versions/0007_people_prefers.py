"""The channel each person prefers to be reached on (``email`` or ``slack``; the email channel).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("prefers", sa.String(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("people") as batch:
        batch.drop_column("prefers")
