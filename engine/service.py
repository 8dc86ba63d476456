"""The Engine: starts runs, drives them node by node under a lease, applies decisions.

Every step is committed (with its audit event) before the next node starts, so a crashed
process resumes from the last committed step. A checkpoint is resolved by compare-and-set:
exactly one decision wins.

The implementation is split by concern: ``_engine_core`` (ports and helpers), ``_driving``
(start, drive, recover) and ``_deciding`` (decide, check, cancel).
"""

from __future__ import annotations

from engine._deciding import Deciding

__all__ = ["Engine"]


class Engine(Deciding):
    """Applies workflow semantics through the ports; one instance per process."""
