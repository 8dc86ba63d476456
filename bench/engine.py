"""Engine benchmark: per-node overhead, pause/resume throughput and latency, whole cycles.

    python bench/engine.py --json          # SQLite; PostgreSQL too when SIGNOFF_BENCH_POSTGRES_URL is set

Prints one JSON object: {"sqlite": {...}, "postgres": {...}} with per_node_us, pauses_per_s,
resumes_per_s, resume_p50_ms, resume_p99_ms, cycles_per_s, concurrent_cycles_per_s (8 runs at
once) and concurrent_calls_per_commit (store calls per transaction meanwhile: group commit).
Every step, checkpoint, decision and audit event is committed durably, audit hash chain
included.
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings
from bot.wiring import Container, build
from engine.commands import Decide

CHAIN = (
    "id: chain\nnodes:\n"
    + "".join(f'  - id: n{i}\n    type: set\n    data: {{v: "{{{{ inputs.x }}}}-{i}"}}\n' for i in range(10))
    + "edges:\n"
    + "".join(f"  - {{from: n{i}, to: n{i + 1}}}\n" for i in range(9))
)
CHAIN = CHAIN.replace(
    "id: chain\n", "id: chain\ninputs: {type: object, properties: {x: {type: integer}}}\n", 1
)

GATE = """\
id: gate
inputs: {type: object, properties: {x: {type: integer}}}
nodes:
  - {id: a, type: set, data: {x: "{{ inputs.x }}"}}
  - {id: h, type: human, prompt: "ok {{ inputs.x }}?", assignee: "user:approver", options: [approve, reject]}
  - {id: b, type: set, data: {done: true}}
edges:
  - {from: a, to: h}
  - {from: h, to: b}
"""


async def _container(url: str, workdir: Path) -> Container:
    (workdir / "workflows").mkdir(exist_ok=True)
    (workdir / "workflows" / "chain.yml").write_text(CHAIN, encoding="utf-8")
    (workdir / "workflows" / "gate.yml").write_text(GATE, encoding="utf-8")
    settings = Settings(
        database_url=url,
        workflows_dir=workdir / "workflows",
        skills_dir=workdir / "none",
        roles_file=workdir / "roles.yml",
    )
    return await build(settings, with_sandbox=False)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(url: str, runs: int) -> dict[str, float]:
    """All figures for one database."""
    with tempfile.TemporaryDirectory() as tmp:
        c = await _container(url, Path(tmp))
        try:
            engine = c.engine
            chain_runs = max(50, runs // 5)
            t0 = time.perf_counter()
            for i in range(chain_runs):
                run = await engine.start("chain", {"x": i}, requester="bench")
                await engine.drive(run.id)
            per_node_us = (time.perf_counter() - t0) / (chain_runs * 10) * 1e6

            t0 = time.perf_counter()
            ids = []
            for i in range(runs):
                run = await engine.start("gate", {"x": i}, requester="bench")
                await engine.drive(run.id)
                ids.append(run.id)
            pauses_per_s = runs / (time.perf_counter() - t0)
            cps = [cp for cp in await c.store.list_checkpoints(open_only=True, limit=runs * 2)]
            latencies = []
            t0 = time.perf_counter()
            for cp in cps:
                t1 = time.perf_counter()
                await engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="approver"))
                latencies.append((time.perf_counter() - t1) * 1000)
            resumes_per_s = len(cps) / (time.perf_counter() - t0)

            cycles = max(100, runs // 2)
            t0 = time.perf_counter()
            for i in range(cycles):
                run = await engine.start("gate", {"x": i}, requester="bench")
                await engine.drive(run.id)
                [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
                await engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="approver"))
            cycles_per_s = cycles / (time.perf_counter() - t0)

            async def worker(n: int) -> None:
                for i in range(n):
                    run = await engine.start("gate", {"x": i}, requester="bench")
                    await engine.drive(run.id)
                    [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
                    await engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="approver"))

            # a server runs many runs at once: the engine's Python overlaps the database thread
            stats = getattr(c.store, "commits", None)
            calls0, txs0 = (stats.calls, stats.transactions) if stats is not None else (0, 0)
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(cycles // 8) for _ in range(8)))
            concurrent_cycles_per_s = (cycles // 8) * 8 / (time.perf_counter() - t0)
            # group commit (SQLite): store calls per transaction while 8 runs went at once
            group = (stats.calls - calls0) / max(1, stats.transactions - txs0) if stats is not None else 1.0
            return {
                "per_node_us": round(per_node_us, 1),
                "pauses_per_s": round(pauses_per_s, 1),
                "resumes_per_s": round(resumes_per_s, 1),
                "resume_p50_ms": round(statistics.median(latencies), 3),
                "resume_p99_ms": round(_pct(latencies, 0.99), 3),
                "cycles_per_s": round(cycles_per_s, 1),
                "concurrent_cycles_per_s": round(concurrent_cycles_per_s, 1),
                "concurrent_calls_per_commit": round(group, 2),
            }
        finally:
            await c.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = await measure(f"sqlite:///{tmp}/bench.db", args.runs)
    pg = os.environ.get("SIGNOFF_BENCH_POSTGRES_URL")
    if pg:
        out["postgres"] = await _pg(pg, args.runs)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


async def _pg(url: str, runs: int) -> dict[str, float]:
    import sqlalchemy as sa

    from bot.wiring import database_url

    url = database_url(url)
    schema = f"signoff_bench_{os.getpid()}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        scoped = sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        return await measure(scoped.render_as_string(hide_password=False), runs)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
