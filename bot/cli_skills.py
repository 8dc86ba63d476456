"""``signoff skills ...``: list, show, test and publish versions of the skill library.

``test`` runs a skill's fixtures on this machine's sandbox (and the configured LLM for prompt
skills) without starting a workflow. Exit codes: 0 ok, 2 unknown skill or a failing fixture.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bot._cli_output import console, err_console, print_json
from engine.errors import EngineError

if TYPE_CHECKING:
    from bot.wiring import FixtureResult, Skill, SkillRegistry

__all__ = ["register", "skills_app"]

skills_app = typer.Typer(help="The versioned skill library.", no_args_is_help=True)
EXIT_BAD_INPUT = 2
_SOP_LINES = 15


def register(app: typer.Typer) -> None:
    """Attach ``signoff skills`` to the main app."""
    app.add_typer(skills_app, name="skills")


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(EXIT_BAD_INPUT)


def _library() -> SkillRegistry:
    from bot.config import ConfigError, Settings
    from bot.wiring import skill_library

    try:
        return skill_library(Settings.from_env())
    except (ConfigError, EngineError) as exc:
        raise _fail(str(exc)) from None


def _select(registry: SkillRegistry, ref: str, *, every_version: bool) -> list[Skill]:
    """``name@x.y.z`` -> that version; ``name`` -> the newest (or every) version."""
    try:
        if "@" in ref:
            return [registry.get(ref)]
        versions = registry.versions(ref)
        if not versions:
            registry.get(ref)  # raises NotFound naming the known skills
        chosen = versions if every_version else versions[-1:]
        return [registry.get(f"{ref}@{v}") for v in chosen]
    except EngineError as exc:
        raise _fail(str(exc)) from None


def _kind(skill: Skill) -> str:
    return "command" if hasattr(skill.spec.runtime, "command") else "prompt"


def _skill_json(skill: Skill) -> dict[str, Any]:
    return {
        "ref": skill.ref,
        "name": skill.spec.name,
        "version": skill.spec.version,
        "description": skill.spec.description,
        "kind": _kind(skill),
        "published": skill.published,
        "content_hash": skill.content_hash,
        "inputs": skill.spec.inputs,
        "outputs": skill.spec.outputs,
        "runtime": skill.spec.runtime.model_dump(),
        "fixtures": [f.name for f in skill.fixtures],
    }


@skills_app.command("list")
def list_skills(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every skill version in the library."""
    skills = _library().list()
    if as_json:
        print_json([_skill_json(s) for s in skills])
        return
    table = Table("skill", "kind", "published", "fixtures", "description")
    table.columns[0].no_wrap = True
    for skill in skills:
        published = "[green]yes[/green]" if skill.published else "[yellow]no[/yellow]"
        table.add_row(skill.ref, _kind(skill), published, str(len(skill.fixtures)), skill.spec.description)
    console.print(table)


@skills_app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One version: contract, runtime, fixtures and the start of its SOP."""
    skill = _select(_library(), ref, every_version=False)[0]
    if as_json:
        print_json({**_skill_json(skill), "sop": skill.sop})
        return
    state = "published" if skill.published else "not published"
    console.print(f"[bold]{skill.ref}[/bold] ({_kind(skill)} skill, {state})", highlight=False)
    console.print(escape(skill.spec.description), highlight=False)
    console.print(f"\n[bold]runtime[/bold] {escape(json.dumps(skill.spec.runtime.model_dump()))}")
    for title, schema in (("inputs", skill.spec.inputs), ("outputs", skill.spec.outputs)):
        console.print(f"\n[bold]{title}[/bold]")
        console.print(escape(json.dumps(schema, indent=2)), highlight=False)
    console.print(f"\n[bold]fixtures[/bold] {', '.join(f.name for f in skill.fixtures) or 'none'}")
    sop = skill.sop.strip().splitlines()
    console.print("\n[bold]SOP.md[/bold]")
    console.print(escape("\n".join(sop[:_SOP_LINES])), highlight=False)
    if len(sop) > _SOP_LINES:
        console.print(f"[dim]... {len(sop) - _SOP_LINES} more lines in {skill.path / 'SOP.md'}[/dim]")


@skills_app.command("test")
def run_tests(
    ref: Annotated[str, typer.Argument(help="NAME (every version) or NAME@VERSION")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run a skill's fixtures without running a workflow; exit 2 when one fails."""
    skills = _select(_library(), ref, every_version=True)  # reports bad settings too
    import asyncio

    from bot.config import Settings
    from bot.wiring import run_skill_fixtures

    settings = Settings.from_env()
    results: list[FixtureResult] = []
    with tempfile.TemporaryDirectory(prefix="signoff-skill-test-") as tmp:
        for skill in skills:
            workspace = Path(tmp) / skill.ref.replace("@", "-")
            results += asyncio.run(run_skill_fixtures(settings, skill, workspace))
    failed = [r for r in results if not r.passed]
    if as_json:
        print_json([r.model_dump(mode="json") for r in results])
    else:
        console.print(_results_table(results))
        untested = [s.ref for s in skills if not s.fixtures]
        if untested:
            console.print(f"[yellow]no fixtures:[/yellow] {', '.join(untested)}", highlight=False)
        if not settings.anthropic_api_key and any(_kind(s) == "prompt" for s in skills):
            console.print("[yellow]prompt skills need ANTHROPIC_API_KEY to be tested[/yellow]")
        console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed", highlight=False)
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


def _results_table(results: list[FixtureResult]) -> Table:
    table = Table("skill", "fixture", "result", "details")
    for r in results:
        verdict = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
        details = r.error or "; ".join(f"{k}: {v}" for k, v in r.mismatches.items())
        table.add_row(r.skill, r.fixture, verdict, escape(details))
    return table


@skills_app.command()
def publish(ref: Annotated[str, typer.Argument(help="NAME@VERSION")]) -> None:
    """Record a version's content hash in skills.lock.json; from then on it may not change."""
    registry = _library()
    try:
        skill = registry.publish(ref)
    except EngineError as exc:
        raise _fail(str(exc)) from None
    console.print(f"published [bold]{skill.ref}[/bold] ({skill.content_hash[:19]})", highlight=False)
