"""Graceful shutdown of ``signoff serve`` (SIGTERM or SIGINT).

In order, within ``SIGNOFF_SHUTDOWN_GRACE`` seconds (default 20, under Kubernetes' 30):

1. ``/readyz`` answers 503 (``shutdown: draining``), so load balancers stop sending traffic;
   the HTTP server keeps answering what still arrives (a decision made here is recorded, and
   its run is left for another replica to continue).
2. Socket Mode disconnects and the timers stop (their jobs stay in the database, where the
   other replicas' schedulers fire them).
3. The engine starts no new node; runs being driven finish their node and are released. A
   node still running at the deadline is cancelled, and its run released (``engine._draining``).
4. The worker stops: recovery at once, the outbox after the row it is sending (a send cut
   short hands its claim back).

Then the server closes its listener: held long polls (``/api/v1`` waits, console event
streams) answer at once, a request still running after 5 s is cancelled, and the MCP endpoint's
session manager stops; then the database closes. Nothing is left leased: every run this
process held is released, so another process continues it at once rather than after
``SIGNOFF_LEASE_TTL``. A SIGKILL skips all of this; then leases expire instead.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from bot.health import Readiness
from bot.scheduler import Timers
from bot.worker import Worker
from engine.service import Engine

if TYPE_CHECKING:
    from bot.slack import SlackSurface

__all__ = ["shut_down"]

log = logging.getLogger("signoff.server")


async def shut_down(
    *,
    readiness: Readiness,
    engine: Engine,
    worker: Worker,
    timers: Timers,
    slack: SlackSurface | None,
    grace_s: float,
) -> None:
    """Stop taking work, finish or release it, and stop the loops (steps 1-4 above)."""
    began = time.monotonic()
    readiness.draining = True
    log.info("shutting down: not ready; finishing work for up to %.0fs", grace_s)
    if slack is not None:
        await slack.close()
    await timers.stop()
    cut = await engine.finish_driving(grace_s)
    left = max(0.0, grace_s - (time.monotonic() - began))
    await worker.stop(grace_s=left)
    log.info(
        "work finished in %.1fs%s",
        time.monotonic() - began,
        f"; {len(cut)} run(s) cut short and released: {', '.join(cut)}" if cut else "",
    )
