"""In-memory fakes of the engine's ports, for fast tests of the engine and its callers."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

from engine._memory_store import InMemoryRunStore

__all__ = ["FixedClock", "InMemoryRunStore", "SeqIds", "StaticDirectory"]


class FixedClock:
    """A clock that moves only when told to; ``sleep`` advances it instantly."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The current fake time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        """Advance time and yield to the loop once."""
        self.advance(seconds)
        await asyncio.sleep(0)


class SeqIds:
    """Deterministic ids: ``run_1``, ``run_2``, ..."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def new(self, prefix: str) -> str:
        """The next id with ``prefix``."""
        return f"{prefix}{next(self._counter)}"


class StaticDirectory:
    """A ``Directory`` with fixed user groups and channel members."""

    def __init__(
        self, groups: dict[str, list[str]] | None = None, channels: dict[str, list[str]] | None = None
    ) -> None:
        self.groups = dict(groups or {})
        self.channels = dict(channels or {})

    async def group_members(self, group_id: str, team: str | None = None) -> list[str]:
        """Members of a group; nobody for an unknown one (one workspace: ``team`` is ignored)."""
        return list(self.groups.get(group_id, []))

    async def channel_members(self, channel_id: str) -> list[str]:
        """Members of a channel; nobody for an unknown one."""
        return list(self.channels.get(channel_id, []))
