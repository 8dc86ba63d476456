"""Timer start-up over many open checkpoints, without minutes of opening them one by one.

    python bench/timer_startup.py --json [--open 100000]

Opens one checkpoint through the engine (a one-person approval with a one-hour timeout), copies
its run and checkpoint rows ``--open`` - 1 times in SQL, then measures a timer service's start-up
(``startup_s``, the jobs it added), one later move of the window (``window_pass_s``) and the
process RSS before and after (``bench/scale.py`` measures the same start-up after opening each run
through the engine). SQLite always; PostgreSQL too when SIGNOFF_BENCH_POSTGRES_URL is set.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench.scale import on_both, project
from bench.timers import _rss_mb
from bot.scheduler import Timers
from bot.wiring import build
from engine.timeouts import Timeouts
from storage.tables import metadata


def _copy(table: str, pg: bool) -> str:
    """Copy every row of ``table`` :n times, suffixing its id (and a checkpoint's run id)."""
    columns = [c.name for c in metadata.tables[table].columns if c.name != "pk"]
    values = [
        f"{c} || '_' || CAST(g.n AS TEXT)" if c == "id" or (table == "checkpoints" and c == "run_id") else c
        for c in columns
    ]
    series = (
        "generate_series(1, :n) AS g(n)"
        if pg
        else "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :n)"
        " SELECT n FROM s) AS g"
    )
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {table}, {series}"


async def measure(url: str, count: int) -> dict[str, Any]:
    """Open ``count`` checkpoints, then start a timer service on them."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = project(Path(tmp), url, ["U1"])
        c = await build(settings, with_sandbox=False)
        try:
            run = await c.engine.start("ask_U1", {}, requester="bench")
            await c.engine.drive(run.id)
            engine = sa.create_engine(url)
            pg = engine.dialect.name == "postgresql"
            with engine.begin() as connection:
                for table in ("runs", "checkpoints"):
                    connection.execute(sa.text(_copy(table, pg)), {"n": count - 1})
                if pg:
                    connection.execute(sa.text("ANALYZE checkpoints"))
                    connection.execute(sa.text("ANALYZE runs"))
            engine.dispose()
            rss_before = _rss_mb()
            timers = Timers(Timeouts(c.engine), url, scope="startup", reconcile_s=3600)
            t0 = time.perf_counter()
            added = await timers.start()
            startup_s = time.perf_counter() - t0
            rss_after = _rss_mb()
            t0 = time.perf_counter()
            await timers.reconcile()
            window_s = time.perf_counter() - t0
            await timers.stop()
        finally:
            await c.close()
        return {
            "open": count,
            "startup_s": round(startup_s, 2),
            "jobs_added": added,
            "window_pass_s": round(window_s, 3),
            "rss_before_mb": round(rss_before, 1),
            "rss_after_mb": round(rss_after, 1),
        }


async def main() -> None:
    await on_both(__doc__ or "", "timer_startup", measure)


if __name__ == "__main__":
    asyncio.run(main())
