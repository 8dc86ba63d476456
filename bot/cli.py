"""The ``signoff`` command line (Typer + Rich). Exit codes: 0 ok, 1 runtime error, 2 bad input."""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from datetime import datetime

    from bot.config import Settings
    from bot.wiring import Container, LightReader, Reader
    from engine.model import Checkpoint, Run
    from engine.outcome import RunOutcome

# Start-up stays fast (``signoff --help`` in well under a second): this module and the command
# modules it registers import only Typer at the top. The database, the engine, Slack, HTTP and
# template libraries are imported inside the commands that use them (bench/cli.py measures it).

__all__ = ["app", "main"]

app = typer.Typer(
    help="Signoff: agent workflows with durable, audited human checkpoints.", no_args_is_help=True
)
T = TypeVar("T")

EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2


def _fail(message: str, code: int) -> typer.Exit:
    # one line however long (no wrapping at the terminal width), and the message is text, not markup
    from rich.markup import escape

    from bot._cli_output import err_console

    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _settings() -> Settings:
    from bot.config import ConfigError, Settings

    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None


def _run(work: Callable[[Container], Awaitable[T]], *, with_sandbox: bool = False) -> T:
    """Build the container, run ``work``, map our errors to exit codes."""
    from bot.wiring import build

    settings = _settings()

    async def go() -> T:
        # only commands that execute nodes need a sandbox (code and skill nodes)
        container = await build(settings, with_sandbox=with_sandbox)
        try:
            return await work(container)
        finally:
            await container.close()

    return _mapped(settings, go)


def _read(work: Callable[[Reader], Awaitable[T]]) -> T:
    """Like ``_run`` for commands that only read: the store without the workflows, sandboxes,
    HTTP client or engine (``signoff tasks`` starts in a fraction of the time)."""
    from bot.wiring import open_reader

    settings = _settings()

    async def go() -> T:
        reader = await open_reader(settings)
        try:
            return await work(reader)
        finally:
            await reader.close()

    return _mapped(settings, go)


def _mapped(settings: Settings, go: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``go``; our errors become one line on stderr and an exit code, never a traceback."""
    import asyncio

    return _mapped_call(settings, lambda: asyncio.run(go()))


def _mapped_call(settings: Settings, call: Callable[[], T]) -> T:
    """``call()``, with our errors mapped as ``_mapped`` does (no event loop: the light path)."""
    from bot.config import ConfigError, database_problem
    from bot.wiring import StorageError
    from engine.errors import (
        Conflict,
        EngineError,
        InvalidInput,
        InvalidWorkflow,
        NeedsDetail,
        NotAllowed,
        NotFound,
    )

    try:
        return call()
    except InvalidInput as exc:
        details = "".join(f"\n  {k or 'input'}: {v}" for k, v in exc.errors.items())
        raise _fail(f"{exc}{details}", EXIT_BAD_INPUT) from None
    except NeedsDetail as exc:
        message = f"not recorded: the reviewer asks: {exc.question} (answer again with more detail)"
        raise _fail(message, EXIT_BAD_INPUT) from None
    except (Conflict, NotAllowed, NotFound, InvalidWorkflow, ConfigError) as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    except StorageError as exc:  # unreachable, refused, locked too long: one line naming the setting
        raise _fail(database_problem(settings.database_url, exc), EXIT_RUNTIME) from None
    except EngineError as exc:
        raise _fail(str(exc), EXIT_RUNTIME) from None


def _me(user: str | None) -> str:
    return user or getpass.getuser()


@app.command()
def validate(paths: Annotated[list[Path] | None, typer.Argument(help="files or folders")] = None) -> None:
    """Check workflow files; every problem is shown as file:line: node: message."""
    from bot._cli_output import console, err_console
    from bot.config import ConfigError
    from bot.wiring import adapters
    from engine.errors import InvalidWorkflow
    from engine.loader import load_workflow_file
    from engine.roles import load_roles

    settings = _settings()
    try:
        roles = load_roles(settings.roles_file)
    except InvalidWorkflow as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    files: list[Path] = []
    for path in paths or [settings.workflows_dir]:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in {".yml", ".yaml", ".json"})
        elif path.exists():
            files.append(path)
        else:
            raise _fail(f"{path}: no such file or folder", EXIT_BAD_INPUT)
    try:
        tools = adapters(settings)  # skill refs and LLM nodes are checked against this machine's setup
    except (InvalidWorkflow, ConfigError) as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    import asyncio

    asyncio.run(tools.close())
    bad = 0
    for file in files:
        try:
            wf = load_workflow_file(
                file, roles=roles, skills=tools.skills, llm_available=tools.llm is not None
            )
        except InvalidWorkflow as exc:
            bad += 1
            for issue in exc.issues:
                err_console.print(str(issue), highlight=False, markup=False, soft_wrap=True)
            continue
        console.print(f"[green]ok[/green] {file} ({wf.id}: {len(wf.nodes)} nodes)", highlight=False)
    if bad:
        raise _fail(f"{bad} of {len(files)} workflow file(s) have problems", EXIT_BAD_INPUT)


@app.command()
def run(
    workflow: str,
    inputs: Annotated[list[str] | None, typer.Option("--input", "-i", help="key=value (repeat)")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="requester (default: you)")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the run until it ends")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start a run and execute it until it pauses or ends."""
    from bot._cli_output import console, print_json, run_json
    from engine.errors import InvalidInput
    from engine.inputs import coerce_inputs, parse_pairs
    from engine.model import RunStatus
    from engine.outcome import load_outcome
    from engine.sensitive import redact_decision, redact_run, redact_step

    async def work(c: Container) -> dict[str, Any]:
        wf = c.catalog.get(workflow)
        raw, rest = parse_pairs(inputs or [])
        if rest:
            raise InvalidInput("inputs must be key=value", {w: "expected key=value" for w in rest})
        values, errors = coerce_inputs(wf.inputs, raw)
        if errors:
            raise InvalidInput(f"inputs of '{wf.id}' are invalid", errors)
        started = await c.engine.start(wf.id, values, requester=_me(as_user), origin={"channel": "cli"})
        if not as_json:
            console.print(f"started [bold]{started.id}[/bold] ({wf.id})")
        result = await _follow(c, started.id, wait=wait, quiet=as_json)
        r = await c.engine.redactor(result)
        return run_json(
            redact_run(r, result),
            [redact_step(r, st) for st in await c.store.list_steps(started.id)],
            [redact_decision(r, d) for d in await c.store.list_decisions(run_id=started.id)],
            outcome=await load_outcome(c.store, result),
        )

    out = _run(work, with_sandbox=True)
    if as_json:
        print_json(out)
    if out["status"] == RunStatus.failed.value:
        raise typer.Exit(EXIT_RUNTIME)


async def _follow(c: Container, run_id: str, *, wait: bool, quiet: bool) -> Any:
    import asyncio

    from rich.markup import escape

    from bot._cli_output import console
    from engine.model import RunStatus
    from engine.outcome import load_outcome

    shown: set[str] = set()
    while True:
        await c.engine.drive(run_id)
        current = await c.store.get_run(run_id)
        for step in await c.store.list_steps(run_id):
            key = f"{step.id}:{step.status.value}"
            if key not in shown and not quiet:
                shown.add(key)
                console.print(
                    f"  {step.node_id:<20} {step.node_type:<8} {step.status.value}"
                    + (f"  {step.error}" if step.error else ""),
                    soft_wrap=True,
                )
        if current.paused_at is not None and not wait:
            if not quiet:
                console.print(f"run {run_id}: [bold]paused[/bold] by {escape(current.paused_by or '')}")
            return current
        if current.status.final or (not wait and current.status is RunStatus.waiting):
            if not quiet:
                outcome = await load_outcome(c.store, current)
                console.print(
                    f"run {run_id}: [bold]{current.status.value}[/bold]"
                    + (f", outcome [bold]{outcome.value}[/bold]" if outcome else "")
                    + (f" ({escape(current.reason)})" if current.reason else ""),
                    soft_wrap=True,
                )
                if current.status is RunStatus.waiting:
                    for cp in await c.store.list_checkpoints(run_id=run_id, open_only=True):
                        console.print(
                            f"  waiting at {cp.node_id}: checkpoint {cp.id} for {', '.join(cp.assignees)}",
                            soft_wrap=True,
                        )
            return current
        await asyncio.sleep(0.5)


@app.command()
def runs(
    status: Annotated[str | None, typer.Option(help="queued, running, waiting, succeeded, ...")] = None,
    workflow: Annotated[str | None, typer.Option()] = None,
    limit: int = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List runs, newest first."""
    from bot._cli_output import console, print_json, run_json, runs_table
    from engine.model import RunStatus
    from engine.outcome import load_outcomes

    statuses = None
    if status:
        try:
            statuses = [RunStatus(s) for s in status.split(",")]
        except ValueError:
            raise _fail(
                f"unknown status {status!r}; use {', '.join(s.value for s in RunStatus)}", EXIT_BAD_INPUT
            ) from None

    async def work(c: Reader) -> tuple[list[Run], dict[str, RunOutcome | None]]:
        found = await c.store.list_runs(status=statuses, workflow_id=workflow, limit=limit)
        return found, await load_outcomes(c.store, found)

    found, outcomes = _read(work)
    if as_json:
        print_json([run_json(r, outcome=outcomes[r.id]) for r in found])
    else:
        console.print(runs_table(found, outcomes))


@app.command()
def show(run_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A run with its steps (timings, outputs in full), decisions and, in full, what its open
    checkpoints propose."""
    from bot._cli_output import checkpoint_json, console, print_json, run_json, show_run
    from engine.outcome import run_outcome
    from engine.sensitive import redact_checkpoint, redact_decision, redact_run, redact_step

    async def work(c: Reader) -> Any:
        found = await c.store.get_run(run_id)
        # sensitive values (marked in the workflow's schemas) are masked wherever they were copied
        r = await c.redactor(found)
        return (
            redact_run(r, found),
            [redact_step(r, st) for st in await c.store.list_steps(run_id)],
            [redact_decision(r, d) for d in await c.store.list_decisions(run_id=run_id)],
            [redact_checkpoint(r, cp) for cp in await c.store.list_checkpoints(run_id=run_id)],
            [rerun.id for rerun in await c.store.reruns_of(run_id)],
        )

    found, steps, decisions, checkpoints, reruns = _read(work)
    outcome = run_outcome(found, checkpoints)
    if as_json:
        print_json(
            {
                **run_json(found, steps, decisions, outcome=outcome),
                "reruns": reruns,
                "checkpoints": [checkpoint_json(cp) for cp in checkpoints],
            }
        )
    else:
        show_run(found, steps, decisions, checkpoints, outcome)
        if reruns:
            console.print(f"rerun as {', '.join(reruns)}", highlight=False)


_ASSIGNEE_HELP = (
    "only what waits for this person: a Slack id (U024BE7LH), user:U024BE7LH, email:ann@corp.example"
    " or a person id from `signoff people list`. Resolved here: the identities linked to the person,"
    " the roles they hold (SIGNOFF_ROLES_FILE) and active delegations to them; Slack user groups and"
    " channels are resolved by the Slack app only (its Home tab), not by the CLI"
)


@app.command()
def tasks(
    overdue: Annotated[bool, typer.Option("--overdue", help="only checkpoints past their deadline")] = False,
    assignee: Annotated[str | None, typer.Option("--assignee", help=_ASSIGNEE_HELP)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="checkpoints per page")] = 50,
    before: Annotated[
        str | None,
        typer.Option(
            "--before", help="the next page: those older than this checkpoint (printed after a page)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Open checkpoints, newest first, a page at a time, each with its version and, in full, what
    Approve passes on. After a page, the command for the next one."""
    import os

    # no pydantic plugin is installed with Signoff: spare this command pydantic's search of every
    # installed package's entry points for one (an operator's own setting is kept)
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from bot._cli_output import (
        checkpoint_json,
        console,
        err_console,
        print_checkpoint,
        print_json,
        tasks_table,
    )

    if assignee is not None:
        open_cps, now, more = _waiting_for(assignee.strip(), overdue=overdue, limit=limit, before=before)
    else:
        open_cps, now, more = _open_page(overdue=overdue, limit=limit, before=before)
    if as_json:
        print_json([checkpoint_json(cp) for cp in open_cps])
    else:
        console.print(tasks_table(open_cps, now))
        for cp in open_cps:
            console.print()
            print_checkpoint(cp)
    if more is not None:
        flags = [f"--assignee {assignee.strip()}"] if assignee is not None else []
        flags += ["--overdue"] if overdue else []
        flags += [f"--limit {limit}"] if limit != 50 else []
        flags += ["--json"] if as_json else []
        count, last = more
        what = f"{count} more" if count is not None else "more"
        line = f"{what}: signoff tasks {' '.join([*flags, '--before', last])}"
        (err_console if as_json else console).print(line, highlight=False, markup=False, soft_wrap=True)


def _cursor_of(cp: Checkpoint) -> tuple[datetime, str]:
    return cp.created_at, cp.id


def _open_page(
    *, overdue: bool, limit: int, before: str | None
) -> tuple[list[Checkpoint], datetime, tuple[int | None, str] | None]:
    """One page of every open checkpoint, masked, read with the database driver alone, without
    an event loop (the full store opens the database first only to migrate or refuse it)."""
    from bot.config import ConfigError
    from bot.wiring import SystemClock, open_light_reader, open_reader, stored_redactor
    from engine.sensitive import Redactor, redact_checkpoint

    settings = _settings()

    def page_of(light: LightReader) -> tuple[list[Checkpoint], datetime, tuple[int | None, str] | None]:
        now = SystemClock().now()
        due_by = now if overdue else None
        cursor = _cursor_of(light.checkpoint(before)) if before else None
        page = light.open_checkpoints(limit=limit, before=cursor, due_by=due_by)
        more = None
        if len(page) == limit:
            rest = light.count_open(before=_cursor_of(page[-1]), due_by=due_by)
            more = (rest, page[-1].id) if rest else None
        redactors: dict[str, Redactor] = {}
        masked = []
        for cp in page:
            r = redactors.get(cp.run_id)
            if r is None:  # once per run: it reads every checkpoint and decision of the run
                r = redactors[cp.run_id] = _done(stored_redactor(light, light.run(cp.run_id)))
            masked.append(redact_checkpoint(r, cp))
        return masked, now, more

    def read() -> tuple[list[Checkpoint], datetime, tuple[int | None, str] | None]:
        light = open_light_reader(settings)
        if light is None:  # not created, empty or behind: the store migrates it or says why not
            import asyncio

            async def opened() -> None:
                await (await open_reader(settings)).close()

            asyncio.run(opened())
            light = open_light_reader(settings)
        if light is None:
            scheme = settings.database_url.split(":")[0]
            raise ConfigError(f"signoff tasks reads SQLite files and PostgreSQL, not {scheme}:")
        try:
            return page_of(light)
        finally:
            light.close()

    return _mapped_call(settings, read)


def _done(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never waits (the light reader answers at once)."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise RuntimeError("the light read path waited on something")


def _waiting_for(
    who: str, *, overdue: bool, limit: int, before: str | None
) -> tuple[list[Checkpoint], datetime, tuple[int | None, str] | None]:
    """One page of what ``who`` may decide now, through the assignee index (``Engine.waiting_for``)."""
    from engine.errors import InvalidInput, NotFound
    from engine.sensitive import Redactor, redact_checkpoint

    if not who:
        raise _fail(
            "--assignee needs a person: U024BE7LH, user:U024BE7LH or email:ann@corp.example", EXIT_BAD_INPUT
        )

    async def work(c: Container) -> tuple[list[Checkpoint], datetime, tuple[int | None, str] | None]:
        actor = who
        if who.startswith("per_") and c.people is not None:  # a person id: any of their identities
            try:
                person = await c.people.get_person(who)
            except NotFound:
                raise InvalidInput(f"no person {who!r}: see `signoff people list`") from None
            actor = person.identities[0] if person.identities else who
        cursor = _cursor_of(await c.store.get_checkpoint(before)) if before else None
        page = await c.engine.waiting_for(actor, limit=limit, before=cursor)
        now = c.clock.now()
        found = [cp for cp in page.items if not overdue or (cp.due_at is not None and cp.due_at <= now)]
        redactors: dict[str, Redactor] = {}
        masked = []
        for cp in found:
            r = redactors.get(cp.run_id)
            if r is None:  # once per run: it reads every checkpoint and decision of the run
                r = redactors[cp.run_id] = await c.engine.redactor(await c.store.get_run(cp.run_id))
            masked.append(redact_checkpoint(r, cp))
        return masked, now, (None, page.next[1]) if page.next else None

    return _run(work)


@app.command()
def respond(
    checkpoint_id: str,
    action: Annotated[str, typer.Argument(help="approve, reject, edit, answer or a custom option")],
    as_user: Annotated[str | None, typer.Option("--as", help="who decides (default: you)")] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="JSON object of edited or answered fields")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="why you reject (asked for when missing)")
    ] = None,
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    confirm: Annotated[
        str | None, typer.Option("--confirm", help="the confirmation word, when asked")
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            help="the checkpoint version you reviewed (signoff tasks shows it); refused when it has changed",
        ),
    ] = None,
) -> None:
    """Decide a checkpoint; prints the proposal it decides on first. The run then continues here.

    A reject needs a reason: --reason, or typed when asked on a terminal."""
    from bot._cli_output import console, outcome_line, print_checkpoint
    from engine.commands import Decide
    from engine.outcome import load_outcome

    try:
        payload = json.loads(data) if data else {}
    except ValueError as exc:
        raise _fail(f"--data is not valid JSON: {exc}", EXIT_BAD_INPUT) from None
    if not isinstance(payload, dict):
        raise _fail("--data must be a JSON object", EXIT_BAD_INPUT)
    command = Decide(
        checkpoint_id=checkpoint_id,
        action=action,
        actor=_me(as_user),
        channel="cli",
        data=payload,
        comment=_reject_reason(reason, comment) if action == "reject" else _joined(reason, comment),
        confirm=confirm,
        expected_version=version,
    )

    async def work(c: Container) -> Any:
        cp = await c.store.get_checkpoint(checkpoint_id)
        # what the decision passes on, printed before deciding; without --version it is the
        # current version, which the engine records on the decision
        print_checkpoint(cp, intro=f"{command.action} ")
        # the decision gate refuses a version older than the current proposal (and audits it)
        decision = await c.engine.decide(command)
        current = await c.store.get_run(cp.run_id)
        return (
            decision,
            await c.store.get_checkpoint(checkpoint_id),
            current,
            await load_outcome(c.store, current),
        )

    decision, after, current, outcome = _run(work, with_sandbox=True)
    console.print(outcome_line(command.action, decision, after, current, outcome), markup=False)


def _joined(reason: str | None, comment: str | None) -> str | None:
    parts = [p.strip() for p in (reason, comment) if p and p.strip()]
    return "\n".join(parts) or None


def _reject_reason(reason: str | None, comment: str | None) -> str:
    """The reason a reject records: ``--reason`` (or ``--comment``), else asked for on a terminal."""
    given = _joined(reason, comment)
    if given:
        return given
    if not sys.stdin.isatty():
        raise _fail(
            'a reject needs a reason: add --reason "..." (it is recorded with the decision)', EXIT_BAD_INPUT
        )
    while True:
        typed = str(
            typer.prompt(
                "Reason for rejecting (recorded with the decision)", default="", show_default=False, err=True
            )
        ).strip()
        if typed:
            return typed
        typer.echo("A reject needs a reason.", err=True)


@app.command()
def cancel(
    run_id: str,
    as_user: Annotated[str | None, typer.Option("--as")] = None,
    reason: Annotated[str, typer.Option()] = "cancelled from the CLI",
) -> None:
    """Cancel a run (its requester or an admin)."""
    from bot._cli_output import console
    from engine.commands import Cancel

    done = _run(lambda c: c.engine.cancel(Cancel(run_id=run_id, actor=_me(as_user), reason=reason)))
    console.print(f"run {done.id} cancelled")


@app.command()
def serve() -> None:
    """Start the server: Slack (with credentials) or local mode with the web console."""
    from bot.server import serve as run_server
    from bot.telemetry import configure_logging

    settings = _settings()
    # JSON lines when not on a terminal, the process's secrets masked (docs/observability.md)
    configure_logging(settings.log_format, secrets=settings.secrets())
    # a taken port, an unreachable database, a bad setting: one line naming the setting, no traceback
    with contextlib.suppress(KeyboardInterrupt):
        _mapped(settings, lambda: run_server(settings))


def _register_subcommands() -> None:
    """The one place command modules join the CLI. Each imports only Typer (and other light
    modules) at its top, so that ``signoff --help`` stays fast: tests/unit/bot/test_cli_startup.py."""
    from bot import cli_db, doctor
    from bot.cli_audit import register
    from bot.cli_control import register as register_control
    from bot.cli_graph import register as register_graph
    from bot.cli_keys import register as register_keys
    from bot.cli_mcp import register as register_mcp
    from bot.cli_people import register as register_people
    from bot.cli_skills import register as register_skills
    from bot.cli_workflows import register as register_workflows

    register_skills(app)
    register(app)
    register_people(app)
    register_keys(app)
    cli_db.register(app)
    doctor.register(app)
    register_mcp(app)
    register_workflows(app)
    register_control(app)
    register_graph(app)


_register_subcommands()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
