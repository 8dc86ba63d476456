"""The workflow page's versions and the diff of two versions (unified, escaped by the page)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.web._views import CONTAINER, render
from bot.wiring import Container
from engine.errors import NotFound
from engine.model import Workflow
from engine.versions import diff_lines, find_version, unified_diff

__all__ = ["diff_page", "versions_context"]


async def versions_context(container: Container, workflow: Workflow) -> dict[str, Any]:
    """What the workflow page shows about versions: newest first, the serving one marked, and
    the problems of the workflow's file while it does not load."""
    versions = await container.store.list_publications(workflow.id)
    newest = versions[-1].version if versions else None
    return {
        "versions": list(reversed(versions)),
        "serving": newest if versions and versions[-1].content_hash == workflow.content_hash else None,
        "file_problems": [str(i) for i in container.catalog.errors_for(workflow.id)],
    }


async def diff_page(request: web.Request) -> web.Response:
    """``/workflows/{id}/diff?from=V1&to=V2``: by default the newest version against the one before."""
    c = request.app[CONTAINER]
    workflow_id = request.match_info["workflow_id"]
    versions = await c.store.list_publications(workflow_id)
    if not versions:
        c.catalog.get(workflow_id)  # names close matches when the id is unknown
        raise NotFound(f"workflow '{workflow_id}' has no published versions")
    new = find_version(workflow_id, versions, request.query.get("to") or str(versions[-1].version))
    old = find_version(workflow_id, versions, request.query.get("from") or str(max(new.version - 1, 1)))
    old_src = (await c.store.get_workflow_version(old.content_hash)).source
    new_src = (await c.store.get_workflow_version(new.content_hash)).source
    return render(
        request,
        "workflow_diff.html",
        workflow_id=workflow_id,
        title=c.catalog.get(workflow_id).title if workflow_id in c.catalog.ids() else workflow_id,
        old=old,
        new=new,
        versions=list(reversed(versions)),
        lines=diff_lines(unified_diff(workflow_id, old, old_src, new, new_src)),
    )
