"""The Engine: starts runs, drives them node by node under a lease, applies decisions.

Every step is committed (with its audit event) before the next node starts, so a crashed
process resumes from the last committed step. A checkpoint is resolved by compare-and-set:
exactly one decision wins.

The implementation is split by concern: ``_engine_core`` (ports and helpers), ``_driving``
(start, drive, recover), ``_deciding`` (decide, check, cancel), ``_controlling`` (pause,
resume), ``_rerunning`` (rerun), ``_inbox`` (what waits for whom) and ``_draining``
(stopping without losing work).
"""

from __future__ import annotations

from engine._draining import Draining
from engine._inbox import Inbox
from engine._rerunning import Rerunning

__all__ = ["Engine"]


class Engine(Inbox, Draining, Rerunning):
    """Applies workflow semantics through the ports; one instance per process."""
