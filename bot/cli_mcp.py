"""``signoff mcp``: the MCP server over stdio, for MCP clients that start it as a command.

It is ``signoff_client.mcp`` (the tools ``ask_human`` and ``get_decision``), which reaches a
Signoff server over the HTTP API with an agent's key: ``SIGNOFF_URL``, ``SIGNOFF_API_KEY``, and
optionally ``SIGNOFF_MCP_ASSIGNEE`` and ``SIGNOFF_MCP_WAIT``. Nothing but MCP goes to stdout.
"""

from __future__ import annotations

import sys

import typer

__all__ = ["register"]


def mcp() -> None:
    """MCP server over stdio (ask_human, get_decision); needs SIGNOFF_URL and SIGNOFF_API_KEY."""
    try:
        from signoff_client.mcp import main
    except ImportError as exc:
        sys.stderr.write(
            f"signoff mcp: {exc.name} is not installed: pip install -e clients/python -e '.[mcp]'\n"
        )
        raise typer.Exit(1) from None
    main()


def register(app: typer.Typer) -> None:
    """Add ``mcp`` to the CLI."""
    app.command(name="mcp")(mcp)
