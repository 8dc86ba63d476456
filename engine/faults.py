"""Named crash points for the fault-injection tests (docs/reliability.md).

``fault(point)`` does nothing unless this process was configured with a fault plan
(``SIGNOFF_TEST_FAULTS=<point>[:<n>]``, read by ``bot.config`` and handed over with
``configure`` by ``signoff serve``). Then the ``n``-th time the named point is reached
(the first when ``n`` is omitted) the process sends itself SIGKILL: a real crash, no
``finally`` blocks, no flush, no lease release, exactly what a power cut or an OOM kill does.

Points (where each sits, and what has happened when it fires):

``after_step_commit``
    ``Engine._drive``: a node's result is committed, the next node has not started.
``after_decision_commit``
    ``Engine.decide``: the decision is committed, the run has not resumed.
``after_outbox_row``
    ``Outbox._send``: the row is stored and due, Slack has not been called.
``during_slack_call``
    ``Outbox._send``: Slack accepted the call, its result is not recorded yet.
``during_deadline``
    ``Timeouts.fire_deadline``: a due deadline is being applied, nothing is committed.
"""

from __future__ import annotations

import os
import signal

__all__ = ["POINTS", "configure", "fault", "parse"]

POINTS = frozenset(
    {"after_step_commit", "after_decision_commit", "after_outbox_row", "during_slack_call", "during_deadline"}
)

_plan: dict[str, int] = {}
_hits: dict[str, int] = {}


def parse(spec: str | None) -> dict[str, int]:
    """``"a:2,b"`` -> ``{"a": 2, "b": 1}``.

    Raises:
        ValueError: an unknown point or a count that is not a positive integer.
    """
    plan: dict[str, int] = {}
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        point, _, count = item.strip().partition(":")
        if point not in POINTS:
            raise ValueError(f"unknown fault point {point!r}; known: {', '.join(sorted(POINTS))}")
        n = int(count) if count else 1
        if n < 1:
            raise ValueError(f"fault point {point}: the count must be 1 or more, not {n}")
        plan[point] = n
    return plan


def configure(spec: str | None) -> None:
    """Arm the points of ``spec`` (see ``parse``); ``None`` or ``""`` disarms every point."""
    plan = parse(spec)
    _plan.clear()
    _plan.update(plan)
    _hits.clear()


def fault(point: str) -> None:
    """Crash here with SIGKILL if ``point`` is armed and this is its n-th hit; otherwise nothing."""
    if not _plan or point not in _plan:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] == _plan[point]:
        os.kill(os.getpid(), signal.SIGKILL)
