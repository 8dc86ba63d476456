"""Operator controls: pausing and resuming runs (private: use ``engine.service.Engine``).

A pause is written to the run's row in one transaction with its audit event, so it reaches
every process through the database: the one driving the run sees it on the run its next step
commit returns and releases the run before starting another node; no process claims or
recovers a paused run. Decisions are still taken (their successors wait in ``pending``). A
resume clears it; the caller then drives the run, and any other process's recovery loop would
too.
"""

from __future__ import annotations

from engine._driving import Driving
from engine.commands import Pause, Resume
from engine.errors import NotAllowed
from engine.model import Run
from engine.policy import is_admin

__all__ = ["Controlling"]


class Controlling(Driving):
    """Pause and resume."""

    async def pause(self, command: Pause) -> Run:
        """Pause a run (its requester or an admin). Raises NotAllowed, Conflict, NotFound."""
        await self._may_control(command.run_id, command.actor, "pause")
        payload = {"reason": command.reason} if command.reason else {}
        audit = self._audit("run.paused", command.actor, command.channel, command.run_id, payload=payload)
        run = await self.store.pause_run(command.run_id, self.clock.now(), command.actor, [audit])
        self._changed(run.id)
        return run

    async def resume(self, command: Resume) -> Run:
        """Resume a paused run (its requester or an admin); drive it next. Raises as ``pause``."""
        await self._may_control(command.run_id, command.actor, "resume")
        audit = self._audit("run.resumed", command.actor, command.channel, command.run_id)
        run = await self.store.pause_run(command.run_id, self.clock.now(), None, [audit])
        self._changed(run.id)
        return run

    async def _may_control(self, run_id: str, actor: str, verb: str) -> None:
        run = await self.store.get_run(run_id)
        if await self.gate.same_person(actor, run.requester):
            return
        if not is_admin(actor, self.catalog.roles, await self.gate.aliases(actor)):
            raise NotAllowed(f"only the person who started this run, or an admin, can {verb} it")
