"""SqlStore: the RunStore port on SQLite or PostgreSQL (SQLModel schema, Core statements)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.engine import URL

from engine.clients import ApiKey, Idempotency, Page, Secret, WebhookEndpoint
from engine.errors import Conflict
from engine.installations import SlackInstallation
from engine.model import (
    AuditEvent,
    Checkpoint,
    CheckpointOutcome,
    Decision,
    Delegation,
    Delivery,
    DeliveryStatus,
    Run,
    RunStatus,
    Step,
    WorkflowPublication,
    WorkflowVersion,
)
from engine.observers import Gauges
from engine.people import ConsoleSession, LoginToken, Person
from engine.ports import (
    AuditDraft,
    CheckpointTimes,
    CheckpointUpdate,
    Claimed,
    Lease,
    PurgeReport,
    RunChange,
    TimerQuery,
)
from storage import (
    _audit,
    _checkpoints,
    _clients,
    _delegations,
    _gauges,
    _installations,
    _outbox,
    _people,
    _publications,
    _queries,
    _retention,
    _runs,
    _timers,
)
from storage._db import CommitStats, Database
from storage._listen import PgListener
from storage._schema import SchemaStatus, read_status, upgrade_unless_ahead

__all__ = ["SqlStore", "create_store"]

_PUBLISH_ATTEMPTS = 3


class SqlStore:
    """The durable ``RunStore`` and ``ClientStore``: every method is one transaction on a
    database thread; on PostgreSQL also the ``ChangeFeed`` (LISTEN/NOTIFY).

    Construction runs ``alembic upgrade head`` (see ``create_store``). Call ``close`` at
    shutdown.
    """

    def __init__(
        self, url: str | URL, *, pool_size: int = 4, busy_timeout_ms: int = 5000, migrate: bool = True
    ):
        """Open the database at ``url`` and bring its schema up to date.

        Args:
            url: a SQLAlchemy URL, ``sqlite:///path.db`` or ``postgresql+psycopg://...``.
            pool_size: PostgreSQL connections (and threads); SQLite always uses one.
            busy_timeout_ms: how long SQLite waits for another process's write lock.
            migrate: run ``upgrade head`` first (off only when a deploy step migrates).

        Raises:
            StorageError: unsupported URL, unreachable database or failed migration.
        """
        self._db = Database(url, pool_size=pool_size, busy_timeout_ms=busy_timeout_ms)
        if migrate:
            try:
                self._db.call(upgrade_unless_ahead, write=True)
            except BaseException:
                self._db.shutdown()
                raise

    @property
    def url(self) -> URL:
        """The database URL (password hidden when printed)."""
        return self._db.url

    @property
    def commits(self) -> CommitStats:
        """Store calls and the transactions they were committed in (group commit's group sizes)."""
        return self._db.commits

    async def close(self) -> None:
        """Close connections and threads; later calls raise StorageError."""
        await self._db.close()

    async def schema_status(self) -> SchemaStatus:
        """Where the database's schema stands against this code's migrations."""
        return await self._db.read(read_status, core=True)

    async def publish_workflow(self, version: WorkflowVersion) -> None:
        """Store a workflow version; publishing the same hash again is a no-op."""
        await self._db.write(lambda tx: _queries.publish(tx, version))

    async def get_workflow_version(self, content_hash: str) -> WorkflowVersion:
        """The pinned source of a workflow version. Raises NotFound."""
        return await self._db.read(lambda tx: _queries.workflow_version(tx, content_hash))

    async def publish_version(
        self, version: WorkflowVersion, *, label: str, note: str, actor: str, channel: str | None = None
    ) -> tuple[WorkflowPublication, bool]:
        """Store the source and publish it under the next number unless it is the newest."""
        for attempt in range(_PUBLISH_ATTEMPTS):
            try:
                return await self._db.write(
                    lambda tx: _publications.publish_version(
                        tx, version, label=label, note=note, actor=actor, channel=channel
                    )
                )
            except Conflict:  # another process took the same number first: read again
                if attempt == _PUBLISH_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def list_publications(self, workflow_id: str | None = None) -> list[WorkflowPublication]:
        """Publications oldest first: of one workflow, or of all (by id, then number)."""
        return await self._db.read(lambda tx: _publications.list_publications(tx, workflow_id))

    async def create_run(self, run: Run, audit: list[AuditDraft], steps: list[Step] | None = None) -> None:
        """Insert a new run (and the steps it starts with). Raises Conflict when the id exists."""
        await self._db.write(lambda tx: _runs.create(tx, run, audit, steps or []))

    async def reopen_run(self, run_id: str, at: datetime, steps: list[Step], audit: list[AuditDraft]) -> Run:
        """Queue a failed run again with ``steps`` pending. Raises Conflict or NotFound."""
        return await self._db.write(lambda tx: _runs.reopen(tx, run_id, at, steps, audit))

    async def reruns_of(self, run_id: str) -> list[Run]:
        """The runs that rerun ``run_id``, oldest first."""
        return await self._db.read(lambda tx: _runs.reruns_of(tx, run_id))

    async def claim_run(self, run_id: str, owner: str, now: datetime, ttl: timedelta) -> Lease | None:
        """Take the lease of a non-final run when free or expired; None otherwise."""
        return await self._db.write(lambda tx: _runs.claim_lease(tx, run_id, owner, now, ttl))

    async def claim(self, run_id: str, owner: str, now: datetime, ttl: timedelta) -> Claimed | None:
        """``claim_run`` plus the run and its steps, in one transaction."""
        return await self._db.write(lambda tx: _runs.claim(tx, run_id, owner, now, ttl))

    async def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        """Extend a held lease. Raises LeaseLost."""
        return await self._db.write(lambda tx: _runs.renew(tx, lease, now, ttl))

    async def commit(self, lease: Lease, change: RunChange) -> Run:
        """Apply a step's results atomically. Raises LeaseLost under a stale lease."""
        return await self._db.write(lambda tx: _runs.commit(tx, lease, change))

    async def update_checkpoint(self, update: CheckpointUpdate) -> Checkpoint:
        """Compare-and-set on the checkpoint version. Raises Conflict or NotFound."""
        return await self._db.write(lambda tx: _checkpoints.update(tx, update))

    async def resolve_and_claim(
        self, update: CheckpointUpdate, owner: str, ttl: timedelta
    ) -> tuple[Checkpoint, Claimed | None]:
        """``update_checkpoint`` and ``claim`` of its run, in one transaction."""
        return await self._db.write(lambda tx: _checkpoints.update_and_claim(tx, update, owner, ttl))

    async def cancel_run(
        self,
        run_id: str,
        at: datetime,
        reason: str,
        audit: list[AuditDraft],
        deliveries: list[Delivery] | None = None,
    ) -> Run:
        """Cancel a non-final run. Raises Conflict (already final) or NotFound."""
        return await self._db.write(lambda tx: _runs.cancel(tx, run_id, at, reason, audit, deliveries or []))

    async def pause_run(
        self, run_id: str, at: datetime, paused_by: str | None, audit: list[AuditDraft]
    ) -> Run:
        """Pause (``paused_by`` set) or resume (None) a non-final run. Raises Conflict or NotFound."""
        return await self._db.write(lambda tx: _runs.pause(tx, run_id, at, paused_by, audit))

    async def get_run(self, run_id: str) -> Run:
        """One run. Raises NotFound."""
        return await self._db.read(lambda tx: _queries.run(tx, run_id))

    async def list_runs(
        self,
        *,
        status: list[RunStatus] | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        search: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[Run]:
        """Runs, newest first (``search`` and ``before``: see ``RunStore.list_runs``)."""
        return await self._db.read(
            lambda tx: _queries.runs(
                tx, status=status, workflow_id=workflow_id, limit=limit, search=search, before=before
            )
        )

    async def list_steps(self, run_id: str) -> list[Step]:
        """A run's steps in start order."""
        return await self._db.read(lambda tx: _queries.steps(tx, run_id))

    async def steps_of_runs(
        self, *, created_since: datetime, created_until: datetime, workflow_id: str | None = None
    ) -> list[Step]:
        """The steps of the runs created in the period (see ``RunStore.steps_of_runs``)."""
        return await self._db.read(
            lambda tx: _queries.steps_of_runs(tx, created_since, created_until, workflow_id)
        )

    async def checkpoint_outcomes(self, run_ids: list[str]) -> dict[str, set[CheckpointOutcome]]:
        """Run id -> the outcomes of its resolved checkpoints, in one read."""
        if not run_ids:
            return {}
        return await self._db.read(lambda tx: _queries.checkpoint_outcomes(tx, run_ids))

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        """One checkpoint. Raises NotFound."""
        return await self._db.read(lambda tx: _queries.checkpoint(tx, checkpoint_id))

    async def load_checkpoint(self, checkpoint_id: str) -> tuple[Checkpoint, Run, list[Step]]:
        """A checkpoint, its run and the run's steps, from one snapshot. Raises NotFound."""
        return await self._db.read(lambda tx: _checkpoints.load(tx, checkpoint_id))

    async def gauges(self, now: datetime) -> Gauges:
        """Open and overdue checkpoints, and outbox rows not yet sent (indexed counts)."""
        return await self._db.read(lambda tx: _gauges.gauges(tx, now))

    async def list_checkpoints(
        self, *, run_id: str | None = None, open_only: bool = False, limit: int = 500
    ) -> list[Checkpoint]:
        """Checkpoints, newest first."""
        return await self._db.read(
            lambda tx: _queries.checkpoints(tx, run_id=run_id, open_only=open_only, limit=limit)
        )

    async def timer_nodes(self) -> list[tuple[str, str]]:
        """The distinct ``(workflow_hash, node_id)`` of open checkpoints with a deadline."""
        return await self._db.read(_timers.timer_nodes)

    async def checkpoint_times(self, query: TimerQuery) -> list[CheckpointTimes]:
        """One page of open checkpoints with a deadline, through an index (see ``TimerQuery``)."""
        return await self._db.read(lambda tx: _timers.checkpoint_times(tx, query))

    async def open_checkpoints_for(
        self, principals: list[str], *, limit: int = 100, before: tuple[datetime, str] | None = None
    ) -> list[Checkpoint]:
        """Open checkpoints assigned to any of ``principals``, newest first (assignee index)."""
        return await self._db.read(lambda tx: _queries.open_for(tx, principals, limit, before))

    async def open_principals(
        self, kinds: tuple[str, ...] = ("group", "channel")
    ) -> list[tuple[str, str | None]]:
        """Distinct ``(principal, team)`` of ``kinds`` among open checkpoints' assignees."""
        return await self._db.read(lambda tx: _queries.open_principals(tx, kinds))

    async def list_decisions(
        self, *, run_id: str | None = None, checkpoint_id: str | None = None
    ) -> list[Decision]:
        """Resolving decisions in decision order."""
        return await self._db.read(
            lambda tx: _queries.decisions(tx, run_id=run_id, checkpoint_id=checkpoint_id)
        )

    async def runnable_runs(self, now: datetime, limit: int = 100) -> list[str]:
        """Ids of non-final runs with pending work and a free or expired lease."""
        return await self._db.read(lambda tx: _queries.runnable(tx, now, limit))

    async def due_deliveries(self, now: datetime, limit: int = 100) -> list[Delivery]:
        """Pending outbox rows whose next attempt is due, oldest first."""
        return await self._db.read(lambda tx: _outbox.due(tx, now, limit))

    async def claim_delivery(
        self, delivery_id: str, *, attempts: int, now: datetime, until: datetime
    ) -> Delivery | None:
        """Take a due row for one send attempt (compare-and-set on ``attempts``)."""
        return await self._db.write(lambda tx: _outbox.claim(tx, delivery_id, attempts, now, until))

    async def list_deliveries(
        self, *, checkpoint_id: str | None = None, run_id: str | None = None
    ) -> list[Delivery]:
        """Outbox rows in creation order."""
        return await self._db.read(lambda tx: _outbox.listing(tx, checkpoint_id=checkpoint_id, run_id=run_id))

    async def add_deliveries(self, deliveries: list[Delivery], audit: list[AuditDraft]) -> None:
        """Queue outbox rows outside a run commit."""
        await self._db.write(lambda tx: _outbox.add(tx, deliveries, audit))

    async def mark_delivery(
        self,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        attempts: int,
        next_attempt_at: datetime,
        error: str | None = None,
        channel_ref: str | None = None,
        message_ts: str | None = None,
        audit: list[AuditDraft] | None = None,
    ) -> None:
        """Record the result of a send attempt. Raises NotFound."""
        await self._db.write(
            lambda tx: _outbox.mark(
                tx,
                delivery_id,
                status=status,
                attempts=attempts,
                next_attempt_at=next_attempt_at,
                error=error,
                channel_ref=channel_ref,
                message_ts=message_ts,
                audit=audit or [],
            )
        )

    async def audit_events(
        self, *, run_id: str | None = None, since: datetime | None = None, after_seq: int = 0
    ) -> list[AuditEvent]:
        """Audit events in sequence order."""
        return await self._db.read(
            lambda tx: _audit.events(tx, run_id=run_id, since=since, after_seq=after_seq)
        )

    async def search_audit(
        self,
        *,
        search: str | None = None,
        kind: str | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[AuditEvent]:
        """Audit events, newest first (see ``RunStore.search_audit``)."""
        return await self._db.read(
            lambda tx: _audit.search(tx, search=search, kind=kind, before_seq=before_seq, limit=limit)
        )

    async def add_delegation(self, delegation: Delegation, audit: list[AuditDraft]) -> None:
        """Store a delegation. Raises Conflict when the id exists."""
        await self._db.write(lambda tx: _delegations.add(tx, delegation, audit))

    async def list_delegations(
        self, *, active_at: datetime | None = None, delegator: str | None = None
    ) -> list[Delegation]:
        """Delegations, oldest first."""
        return await self._db.read(
            lambda tx: _delegations.listing(tx, active_at=active_at, delegator=delegator)
        )

    async def end_delegation(self, delegation_id: str, at: datetime, audit: list[AuditDraft]) -> Delegation:
        """End a delegation early (``until`` = ``at`` when sooner). Raises NotFound."""
        return await self._db.write(lambda tx: _delegations.end(tx, delegation_id, at, audit))

    async def audit_head(self) -> tuple[int, str]:
        """The last sequence number and hash (0 and the genesis hash when empty)."""
        return await self._db.read(_audit.head)

    async def purge_runs(
        self,
        *,
        finished_before: datetime,
        at: datetime,
        dry_run: bool,
        audit: list[AuditDraft],
        limit: int = 500,
    ) -> PurgeReport:
        """See ``RunStore.purge_runs``: one transaction per batch of ``limit`` runs."""
        return await self._db.write(
            lambda tx: _retention.purge(tx, finished_before, at, dry_run, audit, limit)
        )

    # ------------------------------------------------------------------ people (PeopleStore)

    async def find_person(self, identity: str) -> Person | None:
        """The person ``identity`` is linked to, or None."""
        return await self._db.read(lambda tx: _people.find(tx, identity))

    async def get_person(self, person_id: str) -> Person:
        """One person. Raises NotFound."""
        return await self._db.read(lambda tx: _people.get(tx, person_id))

    async def list_people(self) -> list[Person]:
        """Every person, oldest first."""
        return await self._db.read(_people.listing)

    async def link_person(self, person: Person, audit: list[AuditDraft]) -> Person:
        """Insert a person or add identities to a stored one. Raises Conflict (another person's identity)."""
        return await self._db.write(lambda tx: _people.link(tx, person, audit))

    async def set_preference(
        self, person_id: str, prefers: Literal["email", "slack"] | None, audit: list[AuditDraft]
    ) -> Person:
        """Record the channel a person prefers. Raises NotFound."""
        return await self._db.write(lambda tx: _people.prefer(tx, person_id, prefers, audit))

    async def decisions_by(self, actors: list[str], *, limit: int = 50) -> list[Decision]:
        """The newest decisions made by one of ``actors``, newest first."""
        return await self._db.read(lambda tx: _people.decisions_by(tx, actors, limit))

    async def add_session(self, session: ConsoleSession, audit: list[AuditDraft]) -> None:
        """Store a new console session. Raises Conflict when its id exists."""
        await self._db.write(lambda tx: _people.add_session(tx, session, audit))

    async def get_session(self, session_id: str) -> ConsoleSession | None:
        """A console session by id, or None."""
        return await self._db.read(lambda tx: _people.get_session(tx, session_id))

    async def touch_session(self, session_id: str, at: datetime) -> None:
        """Record activity on a console session."""
        await self._db.write(lambda tx: _people.touch_session(tx, session_id, at))

    async def end_session(self, session_id: str, at: datetime, audit: list[AuditDraft]) -> None:
        """End a console session (logout)."""
        await self._db.write(lambda tx: _people.end_session(tx, session_id, at, audit))

    async def add_login_token(self, token: LoginToken) -> None:
        """Store a single-use login token. Raises Conflict when its id exists."""
        await self._db.write(lambda tx: _people.add_token(tx, token))

    async def use_login_token(self, token_id: str, at: datetime) -> LoginToken | None:
        """Mark a login token used and return it, once (None: unknown, used or expired)."""
        return await self._db.write(lambda tx: _people.use_token(tx, token_id, at))

    # ------------------------------------------------------------------ API clients (ClientStore)

    # ------------------------------------------------------------------ Slack installations

    async def save_installation(self, installation: SlackInstallation, audit: list[AuditDraft]) -> None:
        """Insert or replace the installation of ``installation.team_id``, with its audit events."""
        await self._db.write(lambda tx: _installations.save(tx, installation, audit))

    async def get_installation(self, team_id: str) -> SlackInstallation | None:
        """The installation of one workspace (or org-wide install), if any."""
        return await self._db.read(lambda tx: _installations.get(tx, team_id))

    async def list_installations(self) -> list[SlackInstallation]:
        """Every installation, by team id."""
        return await self._db.read(_installations.listing)

    async def delete_installation(self, team_id: str, audit: list[AuditDraft]) -> bool:
        """Delete one workspace's installation; False when there was none."""
        return await self._db.write(lambda tx: _installations.delete(tx, team_id, audit))

    async def add_api_key(self, key: ApiKey, audit: list[AuditDraft]) -> None:
        """Store a new key. Raises Conflict when the id exists."""
        await self._db.write(lambda tx: _clients.add_key(tx, key, audit))

    async def get_api_key(self, key_id: str) -> ApiKey:
        """One key. Raises NotFound."""
        return await self._db.read(lambda tx: _clients.key(tx, key_id))

    async def list_api_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        return await self._db.read(_clients.keys)

    async def revoke_api_key(self, key_id: str, at: datetime, audit: list[AuditDraft]) -> ApiKey:
        """Revoke a key. Raises NotFound."""
        return await self._db.write(lambda tx: _clients.revoke_key(tx, key_id, at, audit))

    async def set_key_secrets(self, key_id: str, secrets: list[Secret], audit: list[AuditDraft]) -> ApiKey:
        """Replace a key's signing secrets. Raises NotFound."""
        return await self._db.write(lambda tx: _clients.set_key_secrets(tx, key_id, secrets, audit))

    async def claim_idempotency(self, record: Idempotency) -> Idempotency:
        """The stored record of the client's key: ``record`` when new, else the first one."""
        return await self._db.write(lambda tx: _clients.claim_idempotency(tx, record))

    async def add_endpoint(self, endpoint: WebhookEndpoint, audit: list[AuditDraft]) -> None:
        """Store a webhook endpoint. Raises Conflict when the id exists."""
        await self._db.write(lambda tx: _clients.add_endpoint(tx, endpoint, audit))

    async def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        """One endpoint, deleted or not. Raises NotFound."""
        return await self._db.read(lambda tx: _clients.endpoint(tx, endpoint_id))

    async def list_endpoints(self, *, client_id: str | None = None) -> list[WebhookEndpoint]:
        """Endpoints not deleted, oldest first."""
        return await self._db.read(lambda tx: _clients.endpoints(tx, client_id=client_id))

    async def set_endpoint_secrets(
        self, endpoint_id: str, secrets: list[Secret], audit: list[AuditDraft]
    ) -> WebhookEndpoint:
        """Replace an endpoint's secrets. Raises NotFound."""
        return await self._db.write(lambda tx: _clients.set_endpoint_secrets(tx, endpoint_id, secrets, audit))

    async def delete_endpoint(
        self, endpoint_id: str, at: datetime, audit: list[AuditDraft]
    ) -> WebhookEndpoint:
        """Mark an endpoint deleted. Raises NotFound."""
        return await self._db.write(lambda tx: _clients.delete_endpoint(tx, endpoint_id, at, audit))

    async def page_runs(
        self, *, status: list[RunStatus] | None, workflow_id: str | None, after: int | None, limit: int
    ) -> Page:
        """Runs newest first, continuing after ``after``."""
        return await self._db.read(
            lambda tx: _clients.page_runs(
                tx, status=status, workflow_id=workflow_id, after=after, limit=limit
            )
        )

    async def page_checkpoints(
        self, *, open_only: bool | None, assignee: str | None, after: int | None, limit: int
    ) -> Page:
        """Checkpoints newest first, continuing after ``after``."""
        return await self._db.read(
            lambda tx: _clients.page_checkpoints(
                tx, open_only=open_only, assignee=assignee, after=after, limit=limit
            )
        )

    async def deliveries_to(self, target: str, *, limit: int) -> list[Delivery]:
        """The newest outbox rows addressed to ``target``, newest first."""
        return await self._db.read(lambda tx: _clients.deliveries_to(tx, target, limit=limit))

    async def get_delivery(self, delivery_id: str) -> Delivery:
        """One outbox row. Raises NotFound."""
        return await self._db.read(lambda tx: _clients.get_delivery(tx, delivery_id))

    async def subscribe(self, wake: Callable[[str | None], None]) -> Callable[[], Awaitable[None]] | None:
        """PostgreSQL: ``wake(run_id)`` for every checkpoint opened or resolved and run ended
        anywhere (one LISTEN connection); None on SQLite, which cannot tell other processes'
        commits."""
        if not self._db.pg:
            return None
        return await PgListener(self._db.url, wake).start()


def create_store(
    url: str | URL, *, pool_size: int = 4, busy_timeout_ms: int = 5000, migrate: bool = True
) -> SqlStore:
    """Open a ``SqlStore`` at ``url``, migrated unless ``migrate`` is False (blocks while
    ``upgrade head`` runs; without it, check ``schema_status`` before use).

    Raises:
        StorageError: unsupported URL, unreachable database or failed migration.
    """
    return SqlStore(url, pool_size=pool_size, busy_timeout_ms=busy_timeout_ms, migrate=migrate)
