"""An MCP server with two tools, so any MCP client (a coding agent, a desktop app) can ask a
person through Signoff: ``ask_human`` and ``get_decision``.

``ask_human`` opens a checkpoint (idempotent by the ``key`` the model chooses) and waits up to
``wait_s`` (50 s by default: MCP clients time tool calls out near 60 s) for the decision; if
none came, it returns ``{"status": "pending", "checkpoint_id": ...}`` and the model calls
``get_decision`` later. Both tools reach Signoff over its HTTP API with an API key, so they have
exactly the key's rights: an agent's key asks and reads, never decides.

Run it over stdio with ``signoff-mcp`` (or ``signoff mcp``), configured by ``SIGNOFF_URL``,
``SIGNOFF_API_KEY`` and optionally ``SIGNOFF_MCP_ASSIGNEE`` (the default assignee) and
``SIGNOFF_MCP_WAIT`` (seconds). ``signoff serve`` also serves it over streamable HTTP at ``/mcp``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from signoff_client._async import AsyncSignoff
from signoff_client._errors import ApiError, SignoffError, WaitTimeout
from signoff_client._models import Decision

__all__ = ["DEFAULT_WAIT_S", "ClientFor", "build_server", "main"]

DEFAULT_WAIT_S = 50.0
ClientFor = Callable[[Context], AsyncSignoff]
"""Gives the client a tool call uses (one for stdio; per request for HTTP, from its key)."""

_INSTRUCTIONS = (
    "Ask a person for approval or input before a consequential action, and get a verified answer. "
    "Call ask_human with a key you choose for this question; if it returns status 'pending', call "
    "get_decision with the checkpoint_id later (or ask_human again with the same key). Act only on "
    "outcome 'approved', 'edited' or 'answered', and only with the returned data."
)


def _error(exc: SignoffError) -> ToolError:
    if isinstance(exc, ApiError):
        fields = "".join(f"; {e.field}: {e.message}" for e in exc.errors)
        return ToolError(f"Signoff refused ({exc.status} {exc.code}): {exc.detail}{fields}")
    return ToolError(f"Signoff could not be reached: {exc}")


def _decided(decision: Decision[Any]) -> dict[str, Any]:
    body = decision.model_dump(mode="json", exclude={"data", "raw_data"})
    return {"status": "decided", **body, "data": decision.raw_data}


def _pending(checkpoint_id: str) -> dict[str, Any]:
    return {
        "status": "pending",
        "checkpoint_id": checkpoint_id,
        "next": "call get_decision with this checkpoint_id to wait again",
    }


async def _wait(sg: AsyncSignoff, checkpoint_id: str, seconds: float) -> dict[str, Any]:
    try:
        return _decided(await sg.checkpoints.wait(checkpoint_id, timeout=seconds))
    except WaitTimeout:
        return _pending(checkpoint_id)


def build_server(
    client_for: ClientFor, *, wait_s: float = DEFAULT_WAIT_S, default_assignee: str | None = None
) -> MCPServer:
    """The MCP server.

    Args:
        client_for: The Signoff client of a tool call.
        wait_s: The longest a tool call waits for a decision before answering ``pending``.
        default_assignee: Who decides when ``ask_human`` names nobody.
    """
    server: MCPServer = MCPServer("signoff", instructions=_INSTRUCTIONS)

    @server.tool()
    async def ask_human(
        prompt: Annotated[str, Field(description="The question, shown to the person as is.")],
        key: Annotated[
            str,
            Field(
                min_length=1,
                max_length=200,
                description="A key you choose for this question (e.g. 'deploy-build-42'); asking again "
                "with the same key returns the same checkpoint and its decision.",
            ),
        ],
        ctx: Context,
        show: Annotated[
            dict[str, Any] | None, Field(description="Labelled values the person sees (what to approve).")
        ] = None,
        response_schema: Annotated[
            dict[str, Any] | None,
            Field(description="JSON Schema of the data the person fills in or edits (an object schema)."),
        ] = None,
        assignee: Annotated[
            str | list[str] | None,
            Field(description="Who decides: user:U123, group:S123, role:name, channel:C123, or a list."),
        ] = None,
        timeout: Annotated[
            str | None, Field(description="The checkpoint's deadline, like 30m, 4h or 2d (then: timed_out).")
        ] = None,
    ) -> dict[str, Any]:
        """Ask a person and wait (about 50 s at most) for the decision.

        Returns the decision (outcome approved, edited, answered, rejected, timed_out or
        cancelled; data; the verified actor), or status 'pending' with the checkpoint_id.
        """
        who = assignee or default_assignee
        if not who:
            raise ToolError("name an assignee (user:U123, role:name...): this server has no default")
        sg = client_for(ctx)
        try:
            cp = await sg.checkpoints.create(
                prompt, key=key, assignee=who, show=show, response_schema=response_schema, timeout=timeout
            )
            return await _wait(sg, cp.id, wait_s)
        except SignoffError as exc:
            raise _error(exc) from exc

    @server.tool()
    async def get_decision(
        checkpoint_id: Annotated[str, Field(min_length=1, max_length=100, description="From ask_human.")],
        ctx: Context,
        wait: Annotated[
            float, Field(ge=0, description="Seconds to wait for it (capped near 50); 0 answers at once.")
        ] = DEFAULT_WAIT_S,
    ) -> dict[str, Any]:
        """The decision of a checkpoint, waiting up to ``wait`` seconds; else status 'pending'."""
        sg = client_for(ctx)
        try:
            return await _wait(sg, checkpoint_id, min(wait, wait_s))
        except SignoffError as exc:
            raise _error(exc) from exc

    return server


def main() -> None:
    """``signoff-mcp``: the MCP server over stdio, configured from the environment."""
    url, api_key = os.environ.get("SIGNOFF_URL"), os.environ.get("SIGNOFF_API_KEY")
    if not url or not api_key:
        sys.stderr.write("signoff-mcp: set SIGNOFF_URL and SIGNOFF_API_KEY (signoff keys create)\n")
        raise SystemExit(2)
    try:
        wait_s = float(os.environ.get("SIGNOFF_MCP_WAIT", DEFAULT_WAIT_S))
    except ValueError:
        sys.stderr.write("signoff-mcp: SIGNOFF_MCP_WAIT must be a number of seconds\n")
        raise SystemExit(2) from None
    client = AsyncSignoff(url, api_key)
    assignee = os.environ.get("SIGNOFF_MCP_ASSIGNEE")
    server = build_server(lambda _: client, wait_s=wait_s, default_assignee=assignee)
    server.run("stdio")
