"""The one storage error the rest of the code sees (light: the CLI's read path imports it alone)."""

from __future__ import annotations

from engine.errors import EngineError

__all__ = ["StorageError"]


class StorageError(EngineError):
    """The database failed in a way the caller cannot fix (unreachable, locked too long, ...)."""
