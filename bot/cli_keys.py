"""``signoff keys ...``: API keys for agents and people (stored as hashes, shown once)."""

from __future__ import annotations

import getpass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot._cli_output import console, print_json

if TYPE_CHECKING:
    from bot.wiring import Container
    from engine.clients import ApiKey, ClientStore

# the scopes of engine.clients.Scope, for --help without importing the engine (a test pins them)
SCOPES = (
    "checkpoints:create",
    "checkpoints:read",
    "checkpoints:decide",
    "runs:write",
    "runs:read",
    "webhooks:manage",
)

__all__ = ["keys_app", "register"]

keys_app = typer.Typer(help="API keys of the HTTP API (docs/api.md).", no_args_is_help=True)
_ROTATION_OVERLAP = timedelta(hours=24)


def _clients(c: Container) -> ClientStore:
    from engine.errors import InvalidInput

    if c.clients is None:
        raise InvalidInput("this database does not keep API keys")
    return c.clients


def _key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "scopes": key.scopes,
        "as_user": key.as_user,
        "created_by": key.created_by,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="who or what uses it, e.g. deploy-bot")],
    scopes: Annotated[str, typer.Option("--scopes", help=", ".join(SCOPES))],
    as_user: Annotated[
        str | None, typer.Option("--as-user", help="bind to a person (Slack id): may then decide as them")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a key; it is printed this once (only its hash is stored)."""
    from bot.api._auth import new_key, parse_scopes
    from bot.cli import EXIT_BAD_INPUT, _fail, _run
    from engine.errors import InvalidInput

    try:
        wanted = parse_scopes(scopes)
    except ValueError as exc:
        raise _fail(f"--scopes: {exc}", EXIT_BAD_INPUT) from None

    async def work(c: Container) -> Any:
        try:
            return await new_key(
                _clients(c),
                c.ids,
                c.clock.now(),
                name=name,
                scopes=wanted,
                as_user=as_user,
                created_by=getpass.getuser(),
            )
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None

    made = _run(work)
    if as_json:
        print_json({"key": made.token, "webhook_secret": made.signing_secret, **_key_json(made.record)})
        return
    console.print(f"key [bold]{made.record.id}[/bold] ({made.record.name}): {', '.join(wanted)}")
    console.print(f"  key (shown once): {made.token}", highlight=False, markup=False)
    console.print(f"  callback signing secret: {made.signing_secret}", highlight=False, markup=False)


@keys_app.command("list")
def listing(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every key (never the key itself)."""
    from rich.text import Text

    from bot._cli_output import data, id_table
    from bot.cli import _run

    found: list[ApiKey] = _run(lambda c: _clients(c).list_api_keys())
    if as_json:
        print_json([_key_json(k) for k in found])
        return
    rows: list[list[Text | str]] = [
        [
            data(k.id),
            data(k.name),
            ", ".join(k.scopes),
            data(k.as_user or "(agent)"),
            f"{k.created_at:%Y-%m-%d}",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
        ]
        for k in found
    ]
    console.print(id_table("id", "name", "scopes", "bound to", "created", "revoked", ids=("id",), rows=rows))


@keys_app.command("revoke")
def revoke(key_id: str) -> None:
    """Revoke a key: every request with it is refused from now on."""
    from bot.cli import _run
    from engine.ports import AuditDraft

    async def work(c: Container) -> ApiKey:
        now = c.clock.now()
        audit = AuditDraft(
            at=now, actor=getpass.getuser(), channel="cli", kind="api_key.revoked", payload={"key": key_id}
        )
        return await _clients(c).revoke_api_key(key_id, now, [audit])

    done = _run(work)
    console.print(f"key {done.id} ({done.name}) revoked")


@keys_app.command("rotate-secret")
def rotate_secret(key_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A new secret for the webhooks sent to the callback_urls this key names; the old one signs
    too for 24 hours."""
    from bot.api._auth import new_secret
    from bot.cli import _run
    from engine.clients import rotated
    from engine.ports import AuditDraft

    async def work(c: Container) -> tuple[str, Any]:
        clients = _clients(c)
        key = await clients.get_api_key(key_id)
        now = c.clock.now()
        secret = new_secret()
        audit = AuditDraft(
            at=now,
            actor=getpass.getuser(),
            channel="cli",
            kind="api_key.secret_rotated",
            payload={"key": key_id},
        )
        await clients.set_key_secrets(
            key_id, rotated(key.signing_secrets, secret, now, _ROTATION_OVERLAP), [audit]
        )
        return secret, now + _ROTATION_OVERLAP

    secret, until = _run(work)
    if as_json:
        print_json({"webhook_secret": secret, "previous_valid_until": until.isoformat()})
        return
    console.print(f"new callback signing secret: {secret}", highlight=False, markup=False)
    console.print(f"the previous one keeps signing until {until:%Y-%m-%d %H:%M} UTC")


def register(app: typer.Typer) -> None:
    """Add ``keys`` to the CLI."""
    app.add_typer(keys_app, name="keys")
