"""``signoff db upgrade`` and ``signoff db current``: the database schema, migrated on purpose.

With PostgreSQL, replicas do not migrate at start-up (``SIGNOFF_AUTO_MIGRATE`` is off): a deploy
step runs ``signoff db upgrade`` once, then the replicas start, and one that finds an older
schema refuses to serve. Exit codes: 0 ok, 1 the database failed, 2 bad configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bot._cli_output import console, err_console, print_json

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.wiring import SchemaStatus

__all__ = ["db_app", "register"]

db_app = typer.Typer(help="The database schema (migrations).", no_args_is_help=True)
EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2


def register(app: typer.Typer) -> None:
    """Attach ``signoff db`` to the main app."""
    app.add_typer(db_app, name="db")


def _settings() -> Settings:
    from bot.config import ConfigError, Settings

    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None


def _fail(message: str, code: int) -> typer.Exit:
    from rich.markup import escape

    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _json(status: SchemaStatus) -> dict[str, object]:
    return {"current": status.current, "head": status.head, "state": status.state.value}


@db_app.command()
def upgrade() -> None:
    """Migrate the database to this version's schema (creates it when empty); safe to repeat."""
    import asyncio

    from bot.wiring import upgrade_database
    from engine.errors import EngineError

    settings = _settings()
    try:
        before, after = asyncio.run(upgrade_database(settings))
    except EngineError as exc:
        raise _fail(f"could not migrate the database: {exc}", EXIT_RUNTIME) from None
    if before.current == after.current:
        console.print(f"nothing to do: {after.describe()}", highlight=False, soft_wrap=True)
    else:
        was = before.current or "empty"
        console.print(f"upgraded the database schema from {was} to {after.current}", highlight=False)


@db_app.command()
def current(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show the database's schema revision and this version's; exit 0 even when it is behind."""
    import asyncio

    from bot.wiring import read_schema
    from engine.errors import EngineError

    settings = _settings()
    try:
        status = asyncio.run(read_schema(settings))
    except EngineError as exc:
        raise _fail(f"could not read the database: {exc}", EXIT_RUNTIME) from None
    if as_json:
        print_json(_json(status))
        return
    console.print(f"database: {status.current or 'empty'}", highlight=False)
    console.print(f"this version: {status.head}", highlight=False)
    console.print(status.describe(), highlight=False, soft_wrap=True)
