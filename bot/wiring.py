"""Composition root: builds the store, catalog, engine, outbox and adapters from Settings.

The only module that imports the adapters (storage, skills) and the real clock and ids.
"""

from __future__ import annotations

import inspect
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bot.config import ConfigError, Settings
from engine.errors import EngineError, InvalidWorkflow, SkillFailed

# The adapters (storage: SQLAlchemy; skills: aiohttp, Anthropic, Docker), the engine's service and
# asyncio are imported where a process is built, not here: the CLI imports this module for its
# types, and `signoff --help` or `signoff tasks` must not pay for what they do not use.
if TYPE_CHECKING:
    from engine.catalog import WorkflowCatalog
    from engine.clients import ChangeFeed, ClientStore
    from engine.installations import InstallationStore
    from engine.model import Run, WorkflowVersion
    from engine.nodes.base import SkillRunner
    from engine.outbox import Outbox
    from engine.people import PeopleStore
    from engine.ports import LLM, Clock, IdFactory, RunStore, Sandbox, SandboxRequest, SandboxResult, Sender
    from engine.roles import Role
    from engine.sensitive import RedactionSource, Redactor
    from engine.service import Engine
    from skills.registry import FixtureResult, Skill, SkillRegistry
    from storage import SchemaState, SchemaStatus, SqlStore, StorageError
    from storage.light import LightReader

    class _VersionedSource(RedactionSource, Protocol):
        async def get_workflow_version(self, content_hash: str) -> WorkflowVersion: ...


_LAZY = {
    # re-exported for `signoff skills`, `signoff db` and the CLI's error mapping, imported on first use
    "FixtureResult": "skills.registry",
    "Skill": "skills.registry",
    "SkillRegistry": "skills.registry",
    "SchemaState": "storage",
    "SchemaStatus": "storage",
    "StorageError": "storage",
    "LightReader": "storage.light",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from bot.telemetry import Metrics

__all__ = [
    "Adapters",
    "Container",
    "FixtureResult",
    "LightReader",
    "Reader",
    "SchemaState",
    "SchemaStatus",
    "Skill",
    "SkillRegistry",
    "StorageError",
    "SystemClock",
    "UuidIds",
    "adapters",
    "build",
    "database_url",
    "open_reader",
    "outbox_claim",
    "probe_sandbox",
    "read_schema",
    "run_skill_fixtures",
    "skill_library",
    "upgrade_database",
]

log = logging.getLogger("signoff.wiring")


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        """Now, timezone-aware."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep."""
        import asyncio

        await asyncio.sleep(seconds)


class UuidIds:
    """Random, time-prefixed ids (sortable by creation within a second)."""

    def new(self, prefix: str) -> str:
        """``prefix`` + 20 hex characters."""
        return f"{prefix}{uuid.uuid4().hex[:20]}"


def outbox_claim(settings: Settings) -> timedelta:
    """How long a process may take to send one outbox row before another one may send it."""
    return timedelta(seconds=2 * settings.lease_ttl_s)


def database_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``postgres://`` URLs (we ship psycopg 3)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url.removeprefix(plain)
    return url


@dataclass
class Container:
    """Everything one process runs with."""

    settings: Settings
    store: RunStore
    catalog: WorkflowCatalog
    engine: Engine
    outbox: Outbox | None
    clock: Clock
    ids: IdFactory
    roles: dict[str, Role]
    closers: list[Any] = field(default_factory=list)
    people: PeopleStore | None = None  # people, sessions and login tokens (the store, when it keeps them)
    clients: ClientStore | None = None  # API keys, idempotency, webhook endpoints (bot/api)
    feed: ChangeFeed | None = None  # other processes' commits (PostgreSQL LISTEN), for long polls
    installations: InstallationStore | None = None  # Slack workspaces that installed Signoff
    # the database's schema revision against this code's (readiness); None without a SQL store
    schema: Callable[[], Awaitable[SchemaStatus]] | None = None
    # the process's Prometheus series (bot.telemetry), once the server mounts /metrics
    metrics: Metrics | None = None

    async def close(self) -> None:
        """Release connections and sessions."""
        for closer in reversed(self.closers):
            result = closer()
            if inspect.isawaitable(result):
                await result


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _llm(settings: Settings) -> LLM | None:
    if not settings.anthropic_api_key:
        return None
    from skills.llm import AnthropicLLM

    return AnthropicLLM(api_key=settings.anthropic_api_key, base_url=settings.anthropic_base_url)


def _sandbox(settings: Settings) -> Sandbox | None:
    from skills.sandbox import choose_sandbox

    try:
        return choose_sandbox(settings.sandbox, docker_image=os.environ.get("SIGNOFF_DOCKER_IMAGE"))
    except EngineError as exc:
        if settings.sandbox != "auto":
            raise ConfigError(f"SIGNOFF_SANDBOX={settings.sandbox}: {exc}") from exc
        log.warning("no sandbox available, code and skill nodes will fail: %s", exc)
        return None


def probe_sandbox(settings: Settings) -> str:
    """The name of the sandbox backend ``SIGNOFF_SANDBOX`` gives here (blocking: it probes).

    Raises:
        EngineError: no backend works; the message says why and what to install.
    """
    from skills.sandbox import choose_sandbox

    return choose_sandbox(settings.sandbox, docker_image=os.environ.get("SIGNOFF_DOCKER_IMAGE")).name


def _skills(settings: Settings, sandbox: Sandbox | None, llm: LLM | None) -> SkillRunner | None:
    if not settings.skills_dir.is_dir():
        return None
    from skills.registry import RegistryRunner, SkillRegistry

    registry = SkillRegistry.load(settings.skills_dir)
    if sandbox is None:
        return None
    return RegistryRunner(registry, sandbox=sandbox, llm=llm, model=settings.default_model)


async def build(
    settings: Settings,
    *,
    sender: Sender | None = None,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
    store: RunStore | None = None,
    with_sandbox: bool = True,
) -> Container:
    """Build a process. Raises ConfigError or InvalidWorkflow with a clear message."""
    from bot.local import LocalSender
    from bot.workflow_files import publish_catalog
    from engine.catalog import WorkflowCatalog
    from engine.nodes.base import NodeDeps
    from engine.outbox import Outbox
    from engine.people import PeopleStore
    from engine.roles import load_roles
    from engine.service import Engine
    from engine.testing import InMemoryRunStore
    from skills.http import AiohttpClient
    from storage import SqlStore

    clock = clock or SystemClock()
    ids = ids or UuidIds()
    try:
        roles = load_roles(settings.roles_file)
    except InvalidWorkflow as exc:
        raise ConfigError(f"SIGNOFF_ROLES_FILE ({settings.roles_file}):\n{exc}") from exc
    closers: list[Any] = []
    schema = None
    if store is None:
        sql = await _open_store(settings)
        closers.append(sql.close)
        store, schema = sql, sql.schema_status
    llm = _llm(settings)
    if llm is not None:
        closers.append(getattr(llm, "aclose", lambda: None))
    sandbox = _sandbox(settings) if with_sandbox else None
    skill_runner = _skills(settings, sandbox, llm)
    catalog = WorkflowCatalog.from_directory(
        settings.workflows_dir, roles=roles, skills=skill_runner, llm_available=llm is not None
    )
    # publish on save: what the folder holds is the published set (bot/workflow_files.py)
    await publish_catalog(store, catalog, clock)
    http = AiohttpClient(settings.http_allow)
    closers.append(http.close)
    deps = NodeDeps(
        clock=clock,
        ids=ids,
        http=http,
        sandbox=sandbox,
        llm=llm,
        skills=skill_runner,
        # absolute, because sandboxes bind-mount step workspaces by path
        workspace_root=settings.workspace_dir.resolve(),
        default_model=settings.default_model,
        roles=roles,
        people=store if isinstance(store, PeopleStore) else None,
    )
    engine = Engine(
        store=store,
        catalog=catalog,
        deps=deps,
        owner=_owner(),
        lease_ttl=timedelta(seconds=settings.lease_ttl_s),
        delegation_max=timedelta(days=settings.delegation_max_days),
        webhook_events=True,
        limits=settings.limits,
    )
    if isinstance(sender, LocalSender):
        sender.masked_by(engine)  # its messages go to the log, where no sensitive value may
    outbox = (
        Outbox(store, sender, clock, claim_ttl=outbox_claim(settings), observers=engine.observers)
        if sender is not None
        else None
    )
    container = Container(
        settings=settings,
        store=store,
        catalog=catalog,
        engine=engine,
        outbox=outbox,
        clock=clock,
        ids=ids,
        roles=roles,
        closers=closers,
        people=deps.people,
        clients=store if isinstance(store, SqlStore | InMemoryRunStore) else None,
        feed=store if isinstance(store, SqlStore) else None,
        installations=store if isinstance(store, SqlStore | InMemoryRunStore) else None,
        schema=schema,
    )
    from bot.mail import install as install_mail  # bot.mail names Container: imported once built

    try:
        install_mail(container)
    except BaseException:
        await container.close()
        raise
    return container


@dataclass
class Reader:
    """The store alone, for commands that only read (``signoff tasks``, ``show``, ``runs``): no
    workflow files are loaded, no sandbox is probed, no HTTP client or engine is built."""

    settings: Settings
    store: RunStore
    clock: Clock
    closers: list[Any] = field(default_factory=list)

    async def redactor(self, run: Run) -> Redactor:
        """What to mask when showing ``run``, as ``Engine.redactor`` has it, read from the stored
        version of its workflow without compiling it."""
        return await stored_redactor(self.store, run)

    async def close(self) -> None:
        """Release the connections."""
        for closer in reversed(self.closers):
            await closer()


async def stored_redactor(store: _VersionedSource, run: Run) -> Redactor:
    """What to mask when showing ``run``, as ``Engine.redactor`` has it, read from the stored
    version of its workflow without compiling it (the store, or the light reader)."""
    from engine.errors import NotFound
    from engine.sensitive import may_mark_sensitive, run_redactor, stored_inputs_schema

    try:
        version = await store.get_workflow_version(run.workflow_hash)
        schema = stored_inputs_schema(version.source) if may_mark_sensitive(version.source) else {}
    except NotFound:
        schema = {}
    return await run_redactor(store, run, schema)


def open_light_reader(settings: Settings) -> LightReader | None:
    """The database driver alone on ``SIGNOFF_DATABASE_URL``, for ``signoff tasks``: no SQLAlchemy,
    table classes or Alembic. None when the full store must open it first: a URL the light path
    does not read, a SQLite file not created yet, a schema that is empty or behind this code's
    (``open_reader`` migrates it, or fails naming ``signoff db upgrade``, exactly as before).

    Raises:
        StorageError: the database cannot be reached.
    """
    from storage.light import open_light

    light = open_light(database_url(settings.database_url))  # used on this thread (sqlite3)
    if light is None:
        return None
    try:
        status = light.schema()
    except BaseException:
        light.close()
        raise
    if not status.usable:
        light.close()
        return None
    if status.state.value == "ahead":
        log.warning("%s; running on it", status.describe())
    return light


async def open_reader(settings: Settings) -> Reader:
    """The store at ``SIGNOFF_DATABASE_URL`` for reading (migrated first when it may be, as
    ``build`` does). Raises ConfigError for an unusable schema, StorageError when unreachable."""
    sql = await _open_store(settings)
    return Reader(settings=settings, store=sql, clock=SystemClock(), closers=[sql.close])


async def _open_store(settings: Settings) -> SqlStore:
    """The SQL store; migrated here only with ``SIGNOFF_AUTO_MIGRATE`` (default for SQLite).

    Raises:
        ConfigError: the schema is older than this code (the message names ``signoff db upgrade``).
    """
    from storage import SchemaState, create_store

    url = database_url(settings.database_url)
    import asyncio

    sql: SqlStore = await asyncio.to_thread(create_store, url, migrate=settings.auto_migrate)
    try:
        status = await sql.schema_status()
    except BaseException:
        await sql.close()
        raise
    if not status.usable:
        await sql.close()
        raise ConfigError(status.describe())
    if status.state is SchemaState.ahead:
        log.warning("%s; running on it", status.describe())
    return sql


async def read_schema(settings: Settings) -> SchemaStatus:
    """The schema status of ``SIGNOFF_DATABASE_URL`` (a missing SQLite file reads as empty).

    Raises:
        StorageError: the database cannot be reached.
    """
    import asyncio

    from storage import schema_status

    return await asyncio.to_thread(schema_status, database_url(settings.database_url))


async def upgrade_database(settings: Settings) -> tuple[SchemaStatus, SchemaStatus]:
    """``alembic upgrade head`` on ``SIGNOFF_DATABASE_URL``; the status before and after.

    Raises:
        StorageError: the database cannot be reached or a migration failed.
    """
    import asyncio

    from storage import upgrade_schema

    return await asyncio.to_thread(upgrade_schema, database_url(settings.database_url))


@dataclass
class Adapters:
    """The LLM, sandbox and skill runner of a process, without a database (``signoff validate``)."""

    llm: LLM | None
    sandbox: Sandbox | None
    skills: SkillRunner | None

    async def close(self) -> None:
        """Release the LLM client's connections."""
        closer = getattr(self.llm, "aclose", None)
        if closer is not None:
            await closer()


def adapters(settings: Settings, *, with_sandbox: bool = True) -> Adapters:
    """Build the adapters that workflow validation consults (skills, LLM availability)."""
    llm = _llm(settings)
    sandbox = _sandbox(settings) if with_sandbox else None
    return Adapters(llm=llm, sandbox=sandbox, skills=_skills(settings, sandbox, llm))


def skill_library(settings: Settings) -> SkillRegistry:
    """The skill library at ``SIGNOFF_SKILLS_DIR``.

    Raises:
        InvalidWorkflow: every problem found in the library (see ``SkillRegistry.load``).
    """
    from skills.registry import SkillRegistry

    return SkillRegistry.load(settings.skills_dir)


class _NoSandbox:
    """Stands in when no sandbox works here, so prompt skills can still be tested."""

    name = "none"

    def __init__(self, reason: str) -> None:
        self._reason = reason

    async def run(self, request: SandboxRequest, workspace: Path) -> SandboxResult:
        raise SkillFailed(f"no sandbox is available: {self._reason}")


async def run_skill_fixtures(settings: Settings, skill: Skill, workspace: Path) -> list[FixtureResult]:
    """Run every fixture of ``skill`` on this machine's sandbox and the configured LLM."""
    import asyncio

    from skills.registry import test_skill
    from skills.sandbox import choose_sandbox

    try:
        sandbox: Sandbox = await asyncio.to_thread(
            choose_sandbox, settings.sandbox, docker_image=os.environ.get("SIGNOFF_DOCKER_IMAGE")
        )
    except EngineError as exc:
        sandbox = _NoSandbox(str(exc))
    llm = _llm(settings)
    try:
        return await test_skill(
            skill, sandbox=sandbox, llm=llm, workspace=workspace, model=settings.default_model
        )
    finally:
        await Adapters(llm=llm, sandbox=None, skills=None).close()
