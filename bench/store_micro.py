"""Micro-benchmark of the store's hot path: step commit, claim, checkpoint compare-and-set.

Usage, from the repository root: ``python -m bench.store_micro [--n 2000] [--postgres URL]``
(PostgreSQL also from ``SIGNOFF_TEST_POSTGRES_URL``; it runs in a throw-away schema). Prints
the median and p90 microseconds per call around the awaited store call (thread hop included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from engine.model import (
    Checkpoint,
    CheckpointOutcome,
    Decision,
    Deliverable,
    Run,
    RunStatus,
    Step,
    StepStatus,
)
from engine.ports import AuditDraft, CheckpointUpdate, RunChange
from storage import SqlStore, create_store

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)
TTL = timedelta(seconds=60)


async def _timed(n: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for i in range(n):
        start = time.perf_counter_ns()
        await call(i)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def _report(backend: str, op: str, samples: list[float]) -> None:
    q = statistics.quantiles(samples, n=10)
    print(f"{backend:9} {op:28} median {statistics.median(samples):8.1f} us   p90 {q[8]:8.1f} us")


def _run(i: int) -> Run:
    return Run(
        id=f"run_{i}",
        workflow_id="bench",
        workflow_hash="h",
        status=RunStatus.queued,
        inputs={"amount": i},
        requester="U1",
        pending=["a"],
        created_at=T0,
        updated_at=T0,
    )


def _step(i: int) -> Step:
    return Step(
        id=f"step_{i}",
        run_id="run_0",
        node_id="a",
        node_type="set",
        status=StepStatus.succeeded,
        input={"i": i},
        output=Deliverable(text="x" * 200, data={"total": i, "note": "y" * 200}),
        started_at=T0,
        ended_at=T0,
    )


async def bench(backend: str, store: SqlStore, n: int) -> None:
    """Run the three measurements on an empty store."""
    await store.create_run(_run(0), [])
    lease = await store.claim_run("run_0", "w1", T0, TTL)
    assert lease is not None

    async def commit(i: int) -> object:
        audit = [AuditDraft(at=T0, actor="engine", channel="engine", kind="step.succeeded", run_id="run_0")]
        return await store.commit(lease, RunChange(at=T0, steps=[_step(i)], audit=audit))

    _report(backend, "commit (step + audit)", await _timed(n, commit))
    for i in range(1, n + 1):
        await store.create_run(_run(i), [])

    async def claim(i: int) -> object:
        return await store.claim_run(f"run_{i + 1}", "w1", T0, TTL)

    _report(backend, "claim_run", await _timed(n, claim))
    cps = [Checkpoint(id=f"cp_{i}", run_id="run_0", node_id="h", created_at=T0) for i in range(n)]
    for start in range(0, n, 500):
        await store.commit(lease, RunChange(at=T0, checkpoints=cps[start : start + 500]))

    async def resolve(i: int) -> object:
        decision = Decision(
            id=f"d_{i}",
            checkpoint_id=f"cp_{i}",
            run_id="run_0",
            action="approve",
            actor="U1",
            channel="slack",
            created_at=T0,
        )
        audit = [AuditDraft(at=T0, actor="U1", channel="slack", kind="checkpoint.resolved", run_id="run_0")]
        update = CheckpointUpdate(
            checkpoint_id=f"cp_{i}",
            expected_version=0,
            at=T0,
            resolve=True,
            outcome=CheckpointOutcome.approved,
            decision=decision,
            pending_add=["next"],
            audit=audit,
        )
        return await store.update_checkpoint(update)

    _report(backend, "update_checkpoint (resolve)", await _timed(n, resolve))


async def main() -> None:
    """Benchmark SQLite always, PostgreSQL when a URL is given."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--postgres", default=os.environ.get("SIGNOFF_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = create_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        await bench("sqlite", store, args.n)
        await store.close()
    if args.postgres:
        base = make_url(args.postgres)
        schema = f"signoff_bench_{os.getpid()}"
        admin = sa.create_engine(base)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            url = base.update_query_dict({"options": f"-csearch_path={schema}"})
            store = create_store(url.render_as_string(hide_password=False))
            await bench("postgres", store, args.n)
            await store.close()
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
