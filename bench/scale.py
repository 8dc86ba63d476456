"""Scale benchmark: many open checkpoints at once.

    python bench/scale.py --json [--open 100000]

Opens ``--open`` checkpoints (each a run of a one-person approval with a one-hour timeout),
ten of them the oldest and assigned to one person, the rest spread over 50 others. Then
measures, on the same database:

* ``rss_mb`` / ``rss_start_mb``: the process's resident memory after opening them, and before;
* ``inbox_p99_ms`` / ``inbox_p50_ms``: "waiting for me" for that one person (``Engine.waiting_for``,
  the query behind App Home, ``signoff tasks --assignee``, the console inbox and the API list),
  200 times, and whether it found all ten (``inbox_complete``);
* ``reconcile_s``: a timer service's start-up reconciliation (one job per deadline).

SQLite always; PostgreSQL too when SIGNOFF_BENCH_POSTGRES_URL is set. Prints
``{"sqlite": {"open": N, "rss_mb": ..., "inbox_p99_ms": ..., "reconcile_s": ...}, "postgres": {...}}``.
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
from bench.timers import _pct, _rss_mb
from bot.config import Settings
from bot.scheduler import Timers
from bot.wiring import build
from engine.timeouts import Timeouts

WORKFLOW = """\
id: ask_WHO
inputs: {type: object, properties: {}}
nodes:
  - {id: gate, type: human, prompt: "ok?", assignee: "user:WHO", timeout: 1h}
"""
TARGET = "U0TARGET"
OTHERS = [f"U{i:07d}" for i in range(50)]


async def measure(url: str, count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = project(Path(tmp), url, [TARGET, *OTHERS])
        c = await build(settings, with_sandbox=False)
        try:
            rss_start = _rss_mb()

            async def open_one(who: str) -> None:
                run = await c.engine.start(f"ask_{who}", {}, requester="bench")
                await c.engine.drive(run.id)

            # the target's ten are the oldest: a newest-first page of everything would miss them
            for _ in range(10):
                await open_one(TARGET)
            t0 = time.perf_counter()
            rest = count - 10
            workers = 8

            async def worker(w: int) -> None:
                for i in range(w, rest, workers):
                    await open_one(OTHERS[i % len(OTHERS)])

            await asyncio.gather(*(worker(w) for w in range(workers)))
            open_s = time.perf_counter() - t0
            rss_open = _rss_mb()

            found = 0
            times = []
            for _ in range(200):
                t1 = time.perf_counter()
                page = await c.engine.waiting_for(TARGET, limit=50)
                times.append((time.perf_counter() - t1) * 1000)
                found = len(page.items)

            timers = Timers(Timeouts(c.engine), url, scope="scale", reconcile_s=3600)
            t0 = time.perf_counter()
            await timers.start()
            reconcile_s = time.perf_counter() - t0
            rss_after = _rss_mb()
            await timers.stop()
            return {
                "open": count,
                "open_s": round(open_s, 1),
                "rss_start_mb": round(rss_start, 1),
                "rss_mb": round(rss_open, 1),
                "rss_after_reconcile_mb": round(rss_after, 1),
                "inbox_complete": found == 10,
                "inbox_p50_ms": round(statistics.median(times), 2),
                "inbox_p99_ms": round(_pct(times, 0.99), 2),
                "reconcile_s": round(reconcile_s, 2),
            }
        finally:
            await c.close()


def project(work: Path, url: str, people: list[str]) -> Settings:
    """Settings for a folder holding one approval workflow ``ask_<who>`` per person."""
    (work / "workflows").mkdir()
    for who in people:
        text = WORKFLOW.replace("WHO", who)
        (work / "workflows" / f"ask_{who}.yml").write_text(text, encoding="utf-8")
    return Settings(
        database_url=url,
        workflows_dir=work / "workflows",
        skills_dir=work / "none",
        roles_file=work / "r.yml",
    )


async def on_both(doc: str, name: str, measure: Callable[[str, int], Awaitable[dict[str, Any]]]) -> None:
    """Parse ``--json --open N``, run ``measure`` on SQLite and, when SIGNOFF_BENCH_POSTGRES_URL
    is set, on PostgreSQL (in a scratch schema), and print ``{"sqlite": ..., "postgres": ...}``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--open", type=int, default=100_000, dest="count", help="open checkpoints")
    args = parser.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = await measure(f"sqlite:///{tmp}/{name}.db", args.count)
    pg = os.environ.get("SIGNOFF_BENCH_POSTGRES_URL")
    if pg:
        with scratch_schema(pg, f"signoff_{name}") as scoped:
            out["postgres"] = await measure(scoped, args.count)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


async def main() -> None:
    await on_both(__doc__ or "", "scale", measure)


if __name__ == "__main__":
    asyncio.run(main())
