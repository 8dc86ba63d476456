"""'Waiting for me' on PostgreSQL with many open checkpoints, in seconds instead of minutes.

    SIGNOFF_BENCH_POSTGRES_URL=... python bench/inbox.py --json [--open 100000] [--runs 200]

Opens the 60 checkpoints of ``bench/scale.py`` through the engine (ten for one person, the oldest,
one for each of 50 others), then copies the others' rows in SQL (checkpoints and their assignee
index rows, newer than the ten) up to ``--open`` open checkpoints and runs ``ANALYZE``: the same
shape as ``bench/scale.py`` without opening 100,000 runs one by one (the copies have no runs or
steps, which "waiting for me" does not read). Then times, ``--runs`` times each:

* ``waiting_for``: ``Engine.waiting_for`` for the one person (page of 50), as ``bench/scale.py``;
* each store read it is made of (``list_delegations``, ``open_principals``, ``find_person``,
  ``open_checkpoints_for``) on its own.

Prints ``{"open": N, "waiting_for": {"p50_ms": ..., "p99_ms": ...}, ...}``. Works in a scratch
schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._pg import scratch_schema
from bench.scale import OTHERS, TARGET, project
from bench.timers import _pct
from bot.wiring import build

_CHECKPOINT_COLUMNS = (
    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
    " AND table_name = 'checkpoints' AND column_name NOT IN ('pk', 'id', 'created_at')"
    " ORDER BY ordinal_position"
)


def _copy(url: str, count: int) -> int:
    """Copy the others' open checkpoints (and assignee rows) up to ``count`` open in all;
    returns how many are open."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            cols = [str(r[0]) for r in conn.exec_driver_sql(_CHECKPOINT_COLUMNS)]
            names = ", ".join(cols)
            picked = ", ".join(f"c.{c}" for c in cols)
            copies = max(0, (count - 10 - len(OTHERS)) // len(OTHERS))
            conn.execute(
                sa.text(
                    f"INSERT INTO checkpoints (id, created_at, {names})"
                    f" SELECT 'copy' || g || '-' || c.id, c.created_at + g * INTERVAL '1 millisecond',"
                    f" {picked} FROM checkpoints c CROSS JOIN generate_series(1, :copies) g"
                    " WHERE strpos(CAST(c.assignees AS TEXT), :target) = 0"
                ),
                {"copies": copies, "target": TARGET},
            )
            conn.exec_driver_sql(
                "INSERT INTO checkpoint_assignees (checkpoint_id, principal)"
                " SELECT c.id, a.principal FROM checkpoints c JOIN checkpoint_assignees a"
                " ON a.checkpoint_id = substring(c.id FROM strpos(c.id, '-') + 1)"
                " WHERE left(c.id, 4) = 'copy'"
            )
            conn.exec_driver_sql("ANALYZE")
            opened = conn.exec_driver_sql("SELECT count(*) FROM checkpoints WHERE status = 'open'")
            return int(opened.scalar_one())
    finally:
        engine.dispose()


async def _times(call: Callable[[], Awaitable[object]], runs: int) -> dict[str, float]:
    await call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await call()
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(_pct(times, 0.99), 2)}


async def measure(url: str, count: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = project(Path(tmp), url, [TARGET, *OTHERS])
        c = await build(settings, with_sandbox=False)
        try:
            for who in [TARGET] * 10 + OTHERS:
                run = await c.engine.start(f"ask_{who}", {}, requester="bench")
                await c.engine.drive(run.id)
            opened = _copy(url, count)
            e = c.engine
            page = await e.waiting_for(TARGET, limit=50)
            principals = await e.principals_of(TARGET)
            return {
                "open": opened,
                "complete": len(page.items) == 10,
                "waiting_for": await _times(lambda: e.waiting_for(TARGET, limit=50), runs),
                "list_delegations": await _times(
                    lambda: e.store.list_delegations(active_at=e.clock.now()), runs
                ),
                "open_principals": await _times(lambda: e.store.open_principals(("group", "channel")), runs),
                "find_person": await _times(lambda: e.gate.aliases(TARGET), runs),
                "open_checkpoints_for": await _times(
                    lambda: e.store.open_checkpoints_for(principals, limit=50), runs
                ),
            }
        finally:
            await c.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--open", type=int, default=100_000, dest="count", help="open checkpoints")
    parser.add_argument("--runs", type=int, default=200, help="timed calls of each read")
    args = parser.parse_args()
    pg = os.environ.get("SIGNOFF_BENCH_POSTGRES_URL")
    if not pg:
        parser.error("set SIGNOFF_BENCH_POSTGRES_URL (this benchmark is for PostgreSQL)")
    with scratch_schema(pg, "signoff_inbox") as scoped:
        out = await measure(scoped, args.count, args.runs)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
