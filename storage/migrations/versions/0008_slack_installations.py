"""Multi-workspace Slack: the installations of the OAuth v2 install flow (tokens as ciphertext),
and the workspace of each run and checkpoint.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "slack_installations",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("team_name", sa.String(), nullable=True),
        sa.Column("enterprise_id", sa.String(), nullable=True),
        sa.Column("enterprise_name", sa.String(), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("app_id", sa.String(), nullable=True),
        sa.Column("bot_id", sa.String(), nullable=True),
        sa.Column("bot_user_id", sa.String(), nullable=True),
        sa.Column("bot_token", sa.Text(), nullable=True),
        sa.Column("bot_refresh_token", sa.Text(), nullable=True),
        sa.Column("bot_token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bot_scopes", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("user_id", sa.String(), nullable=True),
        sa.Column("user_token", sa.Text(), nullable=True),
        sa.Column("user_refresh_token", sa.Text(), nullable=True),
        sa.Column("user_token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_scopes", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_slack_installations")),
        sa.UniqueConstraint("team_id", name=op.f("uq_slack_installations_team_id")),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("team", sa.String(), nullable=True))
        batch.create_index(batch.f("ix_runs_team"), ["team"], unique=False)
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(sa.Column("team", sa.String(), nullable=True))
    # existing runs started from Slack name their workspace nowhere else: they stay unbound (None)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("team")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index(batch.f("ix_runs_team"))
        batch.drop_column("team")
    op.drop_table("slack_installations")
