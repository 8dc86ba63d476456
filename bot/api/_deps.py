"""What the API's handlers share: the process, its client store, the waiters, background work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.api._auth import Caller, authenticate
from bot.api._waiting import Waiters
from bot.wiring import Container
from engine.clients import ClientStore
from engine.errors import EngineError
from engine.model import Run

__all__ = ["DEPS", "ApiDeps", "caller_of", "deps_of"]

log = logging.getLogger("signoff.api")


@dataclass
class ApiDeps:
    """One per process (mounted on its aiohttp application)."""

    container: Container
    clients: ClientStore
    waiters: Waiters
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def background(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``work`` after the response (driving a run); errors are logged, never lost silently."""
        task = asyncio.create_task(self._logged(work, name), name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, Any], name: str) -> None:
        try:
            await work
        except EngineError as exc:
            log.warning("%s: %s (the recovery loop takes over)", name, exc)
        except Exception:
            log.exception("%s failed (the recovery loop takes over)", name)

    async def drive_later(self, run: Run) -> None:
        """Drive a run in the background (its nodes may take long); recovery resumes it if we die."""
        self.background(self.container.engine.drive(run.id), f"drive {run.id}")

    async def stop(self) -> None:
        """Cancel background work (the recovery loop of any process resumes it)."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)


DEPS = web.AppKey("signoff_api", ApiDeps)


def deps_of(request: web.Request) -> ApiDeps:
    """The API of the request's application."""
    return request.app[DEPS]


async def caller_of(request: web.Request) -> Caller:
    """The authenticated caller (401 problem otherwise)."""
    return await authenticate(request, deps_of(request).clients)
