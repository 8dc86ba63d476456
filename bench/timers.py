"""Timer benchmark: many open checkpoints with deadlines, fired by APScheduler.

    python bench/timers.py --json [--count 10000] [--spread 60]

Opens ``count`` checkpoints whose deadlines are spread over ``spread`` seconds, starts the timers
(only the deadlines of the next ``horizon_s`` become jobs; the window moves on as time passes),
and measures how late each deadline fires (p50/p99), the largest number of jobs the job store
held (``jobs_peak``), the process RSS before and after, and the reconciliation time. SQLite
always; PostgreSQL too when SIGNOFF_BENCH_POSTGRES_URL is set.
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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._pg import scratch_schema
from bot.config import Settings
from bot.scheduler import Timers
from bot.wiring import SystemClock, build
from engine.timeouts import Timeouts

WORKFLOW = """\
id: timed
inputs: {type: object, properties: {}}
nodes:
  - {id: gate, type: human, prompt: "ok?", assignee: "user:u", timeout: SPREADs}
"""


class ShiftedClock(SystemClock):
    """Wall time minus a settable shift, so that deadlines can be spread while opening them."""

    shift = timedelta(0)

    def now(self) -> datetime:
        return super().now() - self.shift


class RecordingTimeouts(Timeouts):
    """Records when each deadline was handled, against when it was due."""

    lateness: list[float] = []

    async def fire_deadline(self, checkpoint_id: str, level: int | None = None) -> str:
        cp = await self.store.get_checkpoint(checkpoint_id)
        fired = SystemClock().now()
        outcome = await super().fire_deadline(checkpoint_id, level)
        if cp.due_at is not None and outcome not in {"closed", "stale"}:
            self.lateness.append((fired - cp.due_at).total_seconds())
        return outcome


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def measure(url: str, count: int, spread: float) -> dict[str, Any]:
    """Open, schedule and fire ``count`` deadlines on one database."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "workflows").mkdir()
        (work / "workflows" / "timed.yml").write_text(WORKFLOW.replace("SPREAD", str(int(spread))))
        settings = Settings(
            database_url=url,
            workflows_dir=work / "workflows",
            skills_dir=work / "none",
            roles_file=work / "r.yml",
        )
        clock = ShiftedClock()
        c = await build(settings, with_sandbox=False, clock=clock)
        rss_start = _rss_mb()
        opened_at = time.perf_counter()
        # deadlines start after a lead time that covers opening and reconciling, so lateness
        # measures the scheduler, not checkpoints that were already overdue when it started
        lead = 10.0 + count / 100
        for i in range(count):
            # checkpoint i "opens" later, so its deadline lands i/count into the spread
            clock.shift = timedelta(seconds=-(lead + spread * i / count) + spread)
            run = await c.engine.start("timed", {}, requester="bench")
            await c.engine.drive(run.id)
        clock.shift = timedelta(0)
        open_s = time.perf_counter() - opened_at
        rss_open = _rss_mb()
        RecordingTimeouts.lateness = []
        timers = Timers(RecordingTimeouts(c.engine), url, scope="bench", reconcile_s=3600)
        t0 = time.perf_counter()
        added = await timers.start()
        reconcile_s = time.perf_counter() - t0
        rss_peak = _rss_mb()
        jobs_peak = len(timers.jobstore.job_ids())
        deadline = time.monotonic() + lead + spread + 120
        while len(RecordingTimeouts.lateness) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            rss_peak = max(rss_peak, _rss_mb())
            jobs_peak = max(jobs_peak, len(await asyncio.to_thread(timers.jobstore.job_ids)))
        await timers.stop()
        second = Timers(RecordingTimeouts(c.engine), url, scope="bench2", reconcile_s=3600)
        t0 = time.perf_counter()
        await second.start()
        idle_reconcile_s = time.perf_counter() - t0
        await second.stop()
        await c.close()
        late = RecordingTimeouts.lateness
        return {
            "checkpoints": count,
            "fired": len(late),
            "open_s": round(open_s, 1),
            "reconcile_s": round(reconcile_s, 2),
            "jobs_added": added,
            "jobs_peak": jobs_peak,
            "reconcile_after_s": round(idle_reconcile_s, 2),
            "lateness_p50_ms": round(statistics.median(late) * 1000, 1) if late else None,
            "lateness_p99_ms": round(_pct(late, 0.99) * 1000, 1) if late else None,
            "lateness_max_ms": round(max(late) * 1000, 1) if late else None,
            "rss_start_mb": round(rss_start, 1),
            "rss_open_mb": round(rss_open, 1),
            "rss_peak_mb": round(rss_peak, 1),
        }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=60.0)
    args = parser.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = await measure(f"sqlite:///{tmp}/timers.db", args.count, args.spread)
    pg = os.environ.get("SIGNOFF_BENCH_POSTGRES_URL")
    if pg:
        with scratch_schema(pg, "signoff_timers") as scoped:
            out["postgres"] = await measure(scoped, args.count, args.spread)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
