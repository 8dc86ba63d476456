"""``signoff workflows``: list, versions, diff, publish and rollback.

The workflows folder is the published set (publish on save, docs/workflows.md): these commands
read the numbered versions the database keeps, publish a file into the folder, and roll a
workflow back by publishing an earlier source again under the next number. Runs keep the
version they started on whatever happens here.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from bot._cli_output import console, data, err_console, print_json

# the engine and the database are imported when a command runs (``signoff --help`` stays fast)
if TYPE_CHECKING:
    from bot.wiring import Container
    from bot.workflow_files import Published
    from engine.model import WorkflowPublication

__all__ = ["register", "workflows_app"]

workflows_app = typer.Typer(help="Workflows and their published versions.", no_args_is_help=True)


def _when(v: WorkflowPublication) -> str:
    return v.published_at.strftime("%Y-%m-%d %H:%M:%S UTC")


def version_json(v: WorkflowPublication, *, current: bool) -> dict[str, Any]:
    """One version for scripts."""
    return {
        "workflow_id": v.workflow_id,
        "version": v.version,
        "label": v.label,
        "content_hash": v.content_hash,
        "published_at": v.published_at.isoformat(),
        "actor": v.actor,
        "note": v.note,
        "current": current,
    }


async def _versions(c: Container, workflow_id: str) -> list[WorkflowPublication]:
    from engine.errors import NotFound

    versions = await c.store.list_publications(workflow_id)
    if not versions:
        c.catalog.get(workflow_id)  # NotFound naming close matches when the id is unknown
        raise NotFound(f"workflow '{workflow_id}' has no published versions")
    return versions


def _serving(c: Container, workflow_id: str) -> str | None:
    return c.catalog.get(workflow_id).content_hash if workflow_id in c.catalog.ids() else None


@workflows_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every workflow: its newest version, its file, and files that do not load."""
    from bot.cli import _run

    async def work(c: Container) -> dict[str, Any]:
        newest: dict[str, WorkflowPublication] = {}
        for pub in await c.store.list_publications():
            newest[pub.workflow_id] = pub
        rows = []
        for wf in c.catalog.all():
            found = newest.get(wf.id)
            rows.append(
                {
                    "id": wf.id,
                    "title": wf.title,
                    "version": None if found is None else found.version,
                    "label": wf.label,
                    "content_hash": wf.content_hash,
                    "file": wf.path,
                    "state": "ok",
                }
            )
        broken = {i.file for err in c.catalog.errors for i in err.issues}
        offered = set(c.catalog.ids())
        for wf_id, pub in sorted(newest.items()):
            if wf_id in offered:
                continue
            path = (await c.store.get_workflow_version(pub.content_hash)).path
            rows.append(
                {
                    "id": wf_id,
                    "title": "",
                    "version": pub.version,
                    "label": pub.label,
                    "content_hash": pub.content_hash,
                    "file": path,
                    # a server that loaded the file before keeps serving that version
                    "state": "file does not load" if path in broken else "no file",
                }
            )
        return {
            "workflows": rows,
            "invalid_files": [str(i) for err in c.catalog.errors for i in err.issues],
        }

    # with the sandbox, so that workflows with skill nodes load as they do in the server
    out = _run(work, with_sandbox=True)
    if as_json:
        print_json(out)
        return
    table = Table("workflow", "title", "version", "label", "hash", "file", "state")
    for row in out["workflows"]:
        table.add_row(
            data(row["id"]),
            data(row["title"]),
            "-" if row["version"] is None else f"v{row['version']}",
            data(row["label"]),
            row["content_hash"][:12],
            data(row["file"]),
            data(row["state"], "green" if row["state"] == "ok" else "red"),
        )
    console.print(table)
    for issue in out["invalid_files"]:
        err_console.print(data(issue, "red"))


@workflows_app.command("versions")
def versions_cmd(
    workflow_id: Annotated[str, typer.Argument(metavar="ID", help="workflow id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The published versions of one workflow, oldest first; the current one is marked."""
    from bot.cli import _run

    async def work(c: Container) -> list[dict[str, Any]]:
        serving = _serving(c, workflow_id)
        versions = await _versions(c, workflow_id)
        newest = versions[-1].version
        return [version_json(v, current=v.version == newest and v.content_hash == serving) for v in versions]

    out = _run(work)
    if as_json:
        print_json(out)
        return
    table = Table("version", "label", "hash", "published", "by", "how", "")
    for v in out:
        table.add_row(
            f"v{v['version']}",
            data(v["label"]),
            v["content_hash"][:12],
            v["published_at"][:19].replace("T", " "),
            data(v["actor"]),
            data(v["note"]),
            Text("current", style="green") if v["current"] else "",
        )
    console.print(table)


@workflows_app.command("diff")
def diff_cmd(
    workflow_id: Annotated[str, typer.Argument(metavar="ID", help="workflow id")],
    v1: Annotated[str, typer.Argument(metavar="V1", help="older version: number (3, v3) or hash prefix")],
    v2: Annotated[str, typer.Argument(metavar="V2", help="newer version: number (3, v3) or hash prefix")],
) -> None:
    """A unified diff of two versions' files."""
    from bot.cli import _run
    from engine.versions import find_version, unified_diff

    async def work(c: Container) -> tuple[list[str], str]:
        versions = await _versions(c, workflow_id)
        old, new = find_version(workflow_id, versions, v1), find_version(workflow_id, versions, v2)
        old_src = (await c.store.get_workflow_version(old.content_hash)).source
        new_src = (await c.store.get_workflow_version(new.content_hash)).source
        same = f"v{old.version} and v{new.version} of {workflow_id} have the same source"
        return unified_diff(workflow_id, old, old_src, new, new_src), same

    lines, same = _run(work)
    if not lines:
        console.print(data(same))
        return
    for line in lines:
        style = ""
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        console.print(data(line, style), soft_wrap=True, highlight=False)


def _say(done: Published) -> None:
    v = done.version
    if done.created:
        console.print(
            data(f"{v.workflow_id}: published version {v.version} ({v.content_hash[:12]}) in {done.file}"),
            highlight=False,
        )
    else:
        console.print(
            data(
                f"{v.workflow_id}: unchanged, version {v.version} already serves this source ({done.file}; "
                "a file in the workflows folder is published when it is saved)"
            ),
            highlight=False,
        )


@workflows_app.command("publish")
def publish_cmd(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="a workflow file (YAML or JSON)")],
) -> None:
    """Validate FILE and publish it as the workflow's next version (copied into the workflows
    folder when it is elsewhere). A file with problems is refused, each shown as file:line."""
    from bot.cli import _run
    from bot.workflow_files import publish_file

    if not file.is_file():
        err_console.print(f"[red]error:[/red] {file}: no such file", highlight=False, markup=True)
        raise typer.Exit(2)

    async def work(c: Container) -> Published:
        return await publish_file(
            c.store, c.catalog, c.clock, c.settings.workflows_dir, file, actor=getpass.getuser()
        )

    _say(_run(work, with_sandbox=True))


@workflows_app.command("rollback")
def rollback_cmd(
    workflow_id: Annotated[str, typer.Argument(metavar="ID", help="workflow id")],
    version: Annotated[str, typer.Argument(metavar="VERSION", help="number (3, v3) or hash prefix")],
) -> None:
    """Serve an earlier version again: its source becomes the next version and is written to the
    workflow's file. Runs already started keep the version they started on."""
    from bot.cli import _run
    from bot.workflow_files import rollback

    async def work(c: Container) -> Published:
        return await rollback(
            c.store,
            c.catalog,
            c.clock,
            c.settings.workflows_dir,
            workflow_id,
            version,
            actor=getpass.getuser(),
        )

    done = _run(work, with_sandbox=True)
    v = done.version
    if done.created:
        message = (
            f"{v.workflow_id}: version {v.version} ({v.content_hash[:12]}) serves the source of "
            f"{version} again; {done.file} rewritten. Runs already started keep their version."
        )
    else:
        message = f"{v.workflow_id}: version {v.version} already serves that source ({done.file})"
    console.print(data(message), highlight=False)


def register(app: typer.Typer) -> None:
    """Attach ``workflows`` to the main CLI."""
    app.add_typer(workflows_app, name="workflows")
