"""``signoff people``: who is who across channels (a Slack id, an email address, a login).

Sign-in links the identities a provider vouches for by itself; ``signoff people link`` is how an
administrator says that two names are one person before (or without) a sign-in, for example a
roles file member ``email:ann@corp.example`` who decides in Slack as ``U024BE7LH``.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from bot._cli_output import console, print_json

if TYPE_CHECKING:
    from bot.wiring import Container
    from engine.people import PeopleStore, Person

__all__ = ["link_people", "people_app", "prefer_channel", "register"]

people_app = typer.Typer(help="People and the identities linked to each.", no_args_is_help=True)


def _identity(raw: str) -> str:
    from engine.errors import InvalidInput
    from engine.people import as_principal
    from engine.roles import parse_principal

    principal = as_principal(raw.strip())
    try:
        kind, _ = parse_principal(principal)
    except ValueError:
        kind = ""
    if kind not in {"user", "email"}:
        raise InvalidInput(
            f"{raw!r} is not a person: use user:U024BE7LH (or a login name) or email:ann@corp.example"
        )
    return principal


def _store(c: Container) -> PeopleStore:
    from engine.errors import InvalidInput

    if c.people is None:
        raise InvalidInput("this store keeps no people")
    return c.people


async def link_people(c: Container, first: str, second: str, actor: str) -> Person:
    """Link two identities to one person (a new person when neither is known yet).

    Raises:
        InvalidInput: an identity is neither ``user:`` nor ``email:``.
        Conflict: they already belong to two different people.
    """
    from engine.errors import Conflict
    from engine.people import Person
    from engine.ports import AuditDraft

    people = _store(c)
    wanted = [_identity(first), _identity(second)]
    found = {p.id: p for p in [await people.find_person(i) for i in wanted] if p is not None}
    if len(found) > 1:
        raise Conflict(f"{wanted[0]} and {wanted[1]} already belong to two different people")
    now = c.clock.now()
    person = next(iter(found.values()), None) or Person(id=c.ids.new("per_"), created_at=now)
    added = [i for i in wanted if i not in person.identities]
    if not added:
        return person
    audit = AuditDraft(
        at=now,
        actor=actor,
        channel="cli",
        kind="person.linked",
        payload={"person": person.id, "added": added},
    )
    return await people.link_person(
        person.model_copy(update={"identities": [*person.identities, *added]}), [audit]
    )


@people_app.command("link")
def link_cmd(
    first: Annotated[str, typer.Argument(help="user:U024BE7LH, a login name, or email:ann@corp.example")],
    second: Annotated[str, typer.Argument(help="another identity of the same person")],
) -> None:
    """Say that two identities are one person (quorum then counts them once)."""
    from bot.cli import _run

    async def work(c: Container) -> Person:
        return await link_people(c, first, second, getpass.getuser())

    person = _run(work)
    console.print(f"{person.id}: {', '.join(person.identities)}")


async def prefer_channel(c: Container, who: str, channel: str, actor: str) -> Person:
    """Record the channel the person ``who`` names prefers: ``email``, ``slack`` or ``none``.

    Raises:
        InvalidInput: ``who`` is not a person, or ``channel`` is not one of those words.
    """
    from engine.errors import InvalidInput
    from engine.people import Person
    from engine.ports import AuditDraft

    if channel not in {"email", "slack", "none"}:
        raise InvalidInput(f"{channel!r} is not a channel: use email, slack or none")
    people = _store(c)
    identity = _identity(who)
    person = await people.find_person(identity)
    now = c.clock.now()
    if person is None:  # a person known by this one name so far
        person = await people.link_person(
            Person(id=c.ids.new("per_"), identities=[identity], created_at=now), []
        )
    prefers: Literal["email", "slack"] | None = (
        None if channel == "none" else "email" if channel == "email" else "slack"
    )
    audit = AuditDraft(
        at=now,
        actor=actor,
        channel="cli",
        kind="person.prefers",
        payload={"person": person.id, "prefers": prefers},
    )
    return await people.set_preference(person.id, prefers, [audit])


@people_app.command("prefer")
def prefer_cmd(
    who: Annotated[str, typer.Argument(help="user:U024BE7LH, a login name, or email:ann@corp.example")],
    channel: Annotated[str, typer.Argument(help="email, slack, or none (the default rule)")],
) -> None:
    """Say how a person is reached for checkpoints: by email or on Slack."""
    from bot.cli import _run

    async def work(c: Container) -> Person:
        return await prefer_channel(c, who, channel, getpass.getuser())

    person = _run(work)
    console.print(f"{person.id}: prefers {person.prefers or 'the default'}")


@people_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every person and their identities."""
    from rich.text import Text

    from bot._cli_output import data, id_table
    from bot.cli import _run

    async def work(c: Container) -> Any:
        return await _store(c).list_people()

    found: list[Person] = _run(work)
    if as_json:
        print_json([p.model_dump(mode="json") for p in found])
        return
    rows: list[list[Text | str]] = [
        [data(p.id), data(p.name or ""), data(", ".join(p.identities)), p.prefers or ""] for p in found
    ]
    console.print(id_table("person", "name", "identities", "prefers", ids=("person",), rows=rows))


def register(app: typer.Typer) -> None:
    """Attach ``people`` to the main CLI."""
    app.add_typer(people_app, name="people")
