"""SQLModel table classes: the schema of every table (never leaves storage/).

The hot path uses SQLAlchemy Core statements on ``Table.__table__``; the classes exist so
that the schema has one typed definition that Alembic compares against.

Conventions:
    * Rows that are listed in insertion order carry an integer ``pk`` (autoincrement) and a
      unique text ``id``; ``pk`` gives a stable order when timestamps tie.
    * Every datetime column is ``UTCDateTime``: aware UTC in, aware UTC out, also on SQLite,
      which stores no offset.
    * Lists and dicts are ``JSON`` (PostgreSQL ``json``, not ``jsonb``, so key order survives:
      a response schema's property order is the order of the fields in a form).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

__all__ = [
    "AUDIT_HEAD_ID",
    "ApiKeyRow",
    "AuditEventRow",
    "AuditHeadRow",
    "CheckpointRow",
    "ConsoleSessionRow",
    "DecisionRow",
    "DelegationRow",
    "DeliveryRow",
    "IdempotencyRow",
    "LoginTokenRow",
    "PersonIdentityRow",
    "PersonRow",
    "RunRow",
    "SlackInstallationRow",
    "StepRow",
    "UTCDateTime",
    "WebhookEndpointRow",
    "WorkflowPublicationRow",
    "WorkflowVersionRow",
    "metadata",
]

AUDIT_HEAD_ID = 1

metadata = SQLModel.metadata
# Deterministic constraint names, so migrations can name what they create and drop.
metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC; naive values read back are taken as UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC before binding (SQLite would otherwise drop the offset)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to what SQLite returns; normalise PostgreSQL's session zone to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json(*, nullable: bool = False) -> Any:
    return Field(sa_column=sa.Column(sa.JSON(none_as_null=True), nullable=nullable))


def _when(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def _pk() -> Any:
    return Field(default=None, sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=True))


def _uid() -> Any:
    return Field(sa_column=sa.Column(sa.String, nullable=False, unique=True))


class WorkflowVersionRow(SQLModel, table=True):
    """A published workflow version, pinned by its content hash."""

    __tablename__ = "workflow_versions"

    content_hash: str = Field(primary_key=True)
    workflow_id: str = Field(index=True)
    source: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    path: str
    created_at: datetime = _when()


class WorkflowPublicationRow(SQLModel, table=True):
    """One publish of a workflow: number ``version`` serves the source ``content_hash``."""

    __tablename__ = "workflow_publications"
    __table_args__ = (sa.UniqueConstraint("workflow_id", "version", name="uq_workflow_publications_number"),)

    pk: int | None = _pk()
    workflow_id: str
    version: int
    content_hash: str
    label: str
    note: str
    actor: str
    published_at: datetime = _when()


class RunRow(SQLModel, table=True):
    """One run, its pending nodes and its lease (owner, fencing epoch, expiry)."""

    __tablename__ = "runs"

    pk: int | None = _pk()
    id: str = _uid()
    workflow_id: str = Field(index=True)
    workflow_hash: str
    status: str = Field(index=True)
    inputs: dict[str, Any] = _json()
    requester: str
    origin: dict[str, Any] = _json()
    pending: list[str] = _json()
    reason: str | None = None
    rejected: bool = False
    created_at: datetime = _when()
    updated_at: datetime = _when()
    finished_at: datetime | None = _when(nullable=True)
    lease_owner: str | None = None
    lease_epoch: int = 0
    lease_expires_at: datetime | None = _when(nullable=True)
    schema_version: int
    purged_at: datetime | None = _when(nullable=True)
    team: str | None = Field(default=None, index=True)
    paused_at: datetime | None = _when(nullable=True)
    paused_by: str | None = None
    rerun_of: str | None = Field(default=None, index=True)


class StepRow(SQLModel, table=True):
    """One node execution; upserted by id as it progresses."""

    __tablename__ = "steps"

    pk: int | None = _pk()
    id: str = _uid()
    run_id: str = Field(index=True)
    node_id: str
    node_type: str
    status: str
    attempt: int
    input: dict[str, Any] = _json()
    output: dict[str, Any] | None = _json(nullable=True)
    error: str | None = None
    started_at: datetime = _when()
    ended_at: datetime | None = _when(nullable=True)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    retryable: bool = False


class CheckpointRow(SQLModel, table=True):
    """A human checkpoint; ``version`` is the compare-and-set counter."""

    __tablename__ = "checkpoints"
    __table_args__ = (
        # the timer service's pages: deadlines before a time, and level-0 reminders by opening time
        sa.Index("ix_checkpoints_status_due_at_id", "status", "due_at", "id"),
        sa.Index("ix_checkpoints_status_created_at_id", "status", "created_at", "id"),
    )

    pk: int | None = _pk()
    id: str = _uid()
    run_id: str = Field(index=True)
    node_id: str
    status: str = Field(index=True)
    outcome: str | None = None
    version: int
    kind: str
    title: str
    prompt: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    context: dict[str, Any] = _json()
    options: list[str] = _json()
    response_schema: dict[str, Any] = _json()
    proposed: dict[str, Any] = _json()
    assignees: list[str] = _json()
    notify: list[str] = _json()
    quorum: int
    approvals: list[str] = _json()
    priority: str
    requester: str
    allow_self_approval: bool
    confirm: str | None = None
    highlight: list[str] = _json()
    due_at: datetime | None = _when(nullable=True, index=True)
    escalation_level: int
    shown_hash: str
    created_at: datetime = _when()
    resolved_at: datetime | None = _when(nullable=True)
    editors: list[str] = _json()
    delegations: dict[str, str] = _json()
    content_version: int = 0
    team: str | None = None


class CheckpointAssigneeRow(SQLModel, table=True):
    """Who a checkpoint is assigned to, one principal per row: "waiting for me" through an index."""

    __tablename__ = "checkpoint_assignees"
    __table_args__ = (
        sa.UniqueConstraint("checkpoint_id", "principal"),
        # PostgreSQL: the pattern operator class answers both ``principal IN (...)`` and the
        # ``LIKE 'group:%'`` prefix of the open groups and channels (a default-collation index
        # cannot, whatever the collation); SQLite ignores it and reads a range instead
        sa.Index(
            "ix_checkpoint_assignees_principal",
            "principal",
            postgresql_ops={"principal": "varchar_pattern_ops"},
        ),
    )

    pk: int | None = _pk()
    checkpoint_id: str = Field(index=True)
    principal: str


class DelegationRow(SQLModel, table=True):
    """``delegator``'s new checkpoints go to ``delegate`` from ``starts_at`` until ``until``."""

    __tablename__ = "delegations"

    pk: int | None = _pk()
    id: str = _uid()
    delegator: str = Field(index=True)
    delegate: str
    starts_at: datetime = _when()
    until: datetime = _when(index=True)
    created_by: str
    created_at: datetime = _when()


class DecisionRow(SQLModel, table=True):
    """The one resolving decision of a checkpoint (unique per checkpoint).

    Quorum votes that do not resolve are kept in ``checkpoints.approvals`` and in the audit
    trail, so every row here resolved its checkpoint and the unique index is the last line of
    defence behind the compare-and-set.
    """

    __tablename__ = "decisions"

    pk: int | None = _pk()
    id: str = _uid()
    checkpoint_id: str = Field(sa_column=sa.Column(sa.String, nullable=False, unique=True))
    run_id: str = Field(index=True)
    action: str
    data: dict[str, Any] = _json()
    comment: str | None = None
    actor: str
    channel: str
    resolved_by: str
    rule: str | None = None
    shown_hash: str
    output_hash: str
    diff: dict[str, Any] = _json()
    created_at: datetime = _when()


class DeliveryRow(SQLModel, table=True):
    """An outbox row: one message to send (or update) after its transaction commits."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # the delivery log of a webhook endpoint
        sa.Index("ix_deliveries_target_pk", "target", "pk"),
    )

    pk: int | None = _pk()
    id: str = _uid()
    run_id: str | None = Field(default=None, index=True)
    checkpoint_id: str | None = Field(default=None, index=True)
    kind: str
    target: str
    payload: dict[str, Any] = _json()
    status: str
    attempts: int
    next_attempt_at: datetime = _when()
    channel_ref: str | None = None
    message_ts: str | None = None
    error: str | None = None
    created_at: datetime = _when()


class AuditEventRow(SQLModel, table=True):
    """One hash-chained audit event; ``seq`` is assigned by the store (1, 2, 3, ...)."""

    __tablename__ = "audit_events"

    seq: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    at: datetime = _when(index=True)
    actor: str
    channel: str
    kind: str
    run_id: str | None = Field(default=None, index=True)
    checkpoint_id: str | None = None
    payload: dict[str, Any] = _json()
    prev_hash: str
    hash: str
    sealed: bool = False


class AuditHeadRow(SQLModel, table=True):
    """The single row naming the last audit event; locking it serialises appends."""

    __tablename__ = "audit_head"

    id: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    hash: str


class PersonRow(SQLModel, table=True):
    """A person; ``identities`` lists every identity linked to them (``person_identities`` indexes them)."""

    __tablename__ = "people"

    pk: int | None = _pk()
    id: str = _uid()
    name: str
    identities: list[str] = _json()
    created_at: datetime = _when()
    prefers: str | None = None  # email | slack: the channel they are reached on (bot/mail)


class PersonIdentityRow(SQLModel, table=True):
    """One identity (``user:``, ``email:``, ``oidc:``) of one person: unique across people."""

    __tablename__ = "person_identities"

    pk: int | None = _pk()
    identity: str = Field(sa_column=sa.Column(sa.String, nullable=False, unique=True))
    person_id: str = Field(index=True)


class ConsoleSessionRow(SQLModel, table=True):
    """A signed-in console session, by the SHA-256 of its cookie's session id."""

    __tablename__ = "console_sessions"

    pk: int | None = _pk()
    id: str = _uid()
    person_id: str = Field(index=True)
    provider: str
    created_at: datetime = _when()
    seen_at: datetime = _when()
    expires_at: datetime = _when()
    ended_at: datetime | None = _when(nullable=True)


class LoginTokenRow(SQLModel, table=True):
    """A single-use login token (pending OIDC login, emailed link), by the SHA-256 of its secret."""

    __tablename__ = "login_tokens"

    pk: int | None = _pk()
    id: str = _uid()
    kind: str
    data: dict[str, Any] = _json()
    created_at: datetime = _when()
    expires_at: datetime = _when(index=True)
    used_at: datetime | None = _when(nullable=True)


class ApiKeyRow(SQLModel, table=True):
    """An API key: the SHA-256 of its secret (never the secret), scopes, the person it is bound
    to (none: an agent), and the secrets that sign webhooks to the callback URLs it names."""

    __tablename__ = "api_keys"

    pk: int | None = _pk()
    id: str = _uid()
    name: str
    secret_hash: str
    scopes: list[str] = _json()
    as_user: str | None = None
    signing_secrets: list[dict[str, Any]] = _json()
    created_by: str
    created_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)


class IdempotencyRow(SQLModel, table=True):
    """The first use of an idempotency key by a client: the request's hash and what it made."""

    __tablename__ = "api_idempotency"
    __table_args__ = (sa.UniqueConstraint("client_id", "key", name="uq_api_idempotency_client_key"),)

    pk: int | None = _pk()
    client_id: str
    key: str
    request_hash: str
    resource: str
    resource_id: str
    created_at: datetime = _when()


class WebhookEndpointRow(SQLModel, table=True):
    """A webhook subscription: the URL, the event types, its signing secrets."""

    __tablename__ = "webhook_endpoints"

    pk: int | None = _pk()
    id: str = _uid()
    client_id: str = Field(index=True)
    url: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    events: list[str] = _json()
    description: str = ""
    secrets: list[dict[str, Any]] = _json()
    created_at: datetime = _when()
    deleted_at: datetime | None = _when(nullable=True)


class SlackInstallationRow(SQLModel, table=True):
    """A Slack workspace's installation (multi-workspace mode); every token column holds Fernet
    ciphertext, never a token (docs/security.md)."""

    __tablename__ = "slack_installations"

    pk: int | None = _pk()
    team_id: str = _uid()
    team_name: str | None = None
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    is_enterprise_install: bool = False
    app_id: str | None = None
    bot_id: str | None = None
    bot_user_id: str | None = None
    bot_token: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    bot_refresh_token: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    bot_token_expires_at: datetime | None = _when(nullable=True)
    bot_scopes: list[str] = _json()
    user_id: str | None = None
    user_token: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    user_refresh_token: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    user_token_expires_at: datetime | None = _when(nullable=True)
    user_scopes: list[str] = _json()
    installed_at: datetime = _when()
    updated_at: datetime = _when()
