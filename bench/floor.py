"""The floor under the engine's figures: the same work done with nothing of Signoff's around it.

    python bench/floor.py --json     # PostgreSQL too when SIGNOFF_BENCH_POSTGRES_URL is set

A durable step writes what the invariants ask for: the run row read under its lease, the audit
head read under its lock, the step row, the run row, one audit event and the head moved, in one
transaction. This script sends those statements straight to the driver, on the tables Signoff's
migrations create, in the store's own form: ``sqlite3`` statement by statement, parameters bound
beforehand; ``psycopg`` in pipeline mode, the run and the head locked by one statement and the
writes sent as one more, built per transaction as the store builds them. It also times Bolt
acknowledging signed Approve clicks on loopback with a listener that does nothing but
``ack()``, served by a process of its own. Run it next to ``bench/engine.py`` and
``bench/slack_ack.py``: the ratios say how much of a figure is Signoff's own.

Prints one JSON object:
* ``sqlite``: ``step_tx_us`` (one step's writes and its WAL commit), ``engine_floor_per_node_us``
  (that plus a hop to a database thread and back, the Jinja render and the audit hash one node of
  ``bench/engine.py``'s chain needs), ``hop_us``, ``render_us``, ``audit_hash_us``,
  ``cycles_per_s_max`` (a whole cycle commits 5 transactions that append to the audit chain, each
  at least a step's writes: start, two steps, the decision, the last step with the run's end);
* ``postgres``: ``step_tx_us`` one at a time, ``step_tx_per_s_8`` with 8 connections at once,
  ``head_commits_per_s`` (one connection moving the audit head and committing, nothing else: every
  transaction that appends to the chain holds the head's row lock until its commit is durable,
  so no number of connections commits them faster) and ``cycles_per_s_max`` (that over 5);
* ``bolt``: ``ack_p50_ms`` / ``ack_p99_ms`` for ``--clicks`` (200) clicks at once, and
  ``server_cpu_per_click_us`` (the Bolt process's CPU).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/engine.py would shadow the engine package: put the repository root first instead
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench")]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote  # noqa: E402

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from engine.audit import event_hash  # noqa: E402
from engine.model import Deliverable, Run, RunStatus, Step, StepStatus  # noqa: E402
from engine.ports import AuditDraft  # noqa: E402
from engine.templates import compile_value, render_value  # noqa: E402
from storage import _audit, _runs, _writes  # noqa: E402
from storage._sql import Sql, bind_when, dumps_json  # noqa: E402
from storage.mapping import RUNS, STEPS  # noqa: E402
from tests.fakes.slack import sign_request  # noqa: E402

FIXTURES = _ROOT.parent / "shared" / "fixtures" / "slack"
SECRET = "floor-signing-secret"  # noqa: S105 - a loopback benchmark's own secret
_AT = datetime(2026, 1, 1, tzinfo=UTC)
# transactions of a whole cycle that append to the audit chain: run.started, step.succeeded,
# checkpoint.opened, decision.recorded, step.succeeded + run.succeeded
AUDITED_PER_CYCLE = 5


def _per_call_us(fn: Callable[[], object], n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


class _Step:
    """One step's writes, parameters bound before the clock starts (only ids and seq change)."""

    def __init__(self, run_id: str, pg: bool) -> None:
        run = Run(
            id=run_id,
            workflow_id="chain",
            workflow_hash="h" * 64,
            status=RunStatus.running,
            inputs={"x": 1},
            requester="bench",
            pending=["n1"],
            created_at=_AT,
            updated_at=_AT,
            lease_owner="bench",
            lease_epoch=1,
        )
        self.insert_run = RUNS.params(run, pg)
        self.update_run = RUNS.params(run, pg, _writes.MUTABLE_AND_ID)
        self.run = run
        step = Step(
            id="s",
            run_id=run_id,
            node_id="n0",
            node_type="set",
            status=StepStatus.succeeded,
            output=Deliverable(data={"v": "1-0"}),
            started_at=_AT,
            ended_at=_AT,
        )
        self.step = STEPS.params(step, pg)
        self.event = {
            "at": bind_when(_AT, pg),
            "actor": "engine",
            "channel": "engine",
            "kind": "step.succeeded",
            "run_id": run_id,
            "checkpoint_id": None,
            "payload": dumps_json({"node": "n0", "type": "set", "output_hash": "a" * 64}),
            "sealed": True,
        }
        self.draft = AuditDraft(
            at=_AT,
            actor="engine",
            channel="engine",
            kind="step.succeeded",
            run_id=run_id,
            payload={"node": "n0", "type": "set", "output_hash": "a" * 64},
        )
        self.run_id = run_id
        self.step_model = step
        self.n = 0

    def writes(self, seq: int, prev: str) -> list[tuple[Sql, dict[str, Any]]]:
        self.n += 1
        return [
            (_writes.UPSERT_STEP, {**self.step, "id": f"{self.run_id}-{self.n}"}),
            (_writes.UPDATE_RUN, self.update_run),
            (_audit.INSERT_EVENT, {**self.event, "seq": seq + 1, "prev_hash": prev, "hash": "b" * 64}),
            (_audit.UPDATE_HEAD, {"seq": seq + 1, "hash": "b" * 64}),
        ]

    def batch(self, seq: int, prev: str) -> tuple[Sql, dict[str, Any]]:
        """PostgreSQL: the same writes as the store sends them, one statement of CTEs."""
        self.n += 1
        writes = _writes.Writes(pg=True)
        writes.steps([self.step_model.model_copy(update={"id": f"{self.run_id}-{self.n}"})])
        writes.run(self.run)
        writes.audit([self.draft], (seq, prev))  # chained and hashed, as the store does
        batch = writes.one()
        assert batch is not None
        return batch


def _schema(url: str) -> None:
    """Signoff's tables, made by its migrations, with the audit head row in place."""
    from bot.wiring import database_url
    from storage._migrate import migrate

    migrate(database_url(url))


_LOCK_RUN = _runs._LOCK_RUN
_LOCK_RUN_AND_HEAD = _runs._LOCK_RUN_AND_HEAD
_LOCK_HEAD = _audit._LOCK_HEAD
_INSERT_RUN = _runs._INSERT_RUN


def sqlite_floor(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/floor.db"
        _schema(f"sqlite:///{path}")
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        work = _Step("run_floor", pg=False)
        conn.execute(_INSERT_RUN.lite, work.insert_run)
        conn.execute(_audit.UPDATE_HEAD.lite, {"seq": 0, "hash": "0" * 64})

        def step() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_LOCK_RUN.lite, {"run_id": work.run_id}).fetchone()
            seq, prev = conn.execute(_LOCK_HEAD.lite).fetchone()
            for sql, params in work.writes(seq, prev):
                conn.execute(sql.lite, params)
            conn.execute("COMMIT")

        step_us = _per_call_us(step, n)
        conn.close()
    pool = ThreadPoolExecutor(1)

    async def hops() -> float:
        loop = asyncio.get_running_loop()
        for _ in range(100):
            await loop.run_in_executor(pool, int)
        start = time.perf_counter()
        for _ in range(n):
            await loop.run_in_executor(pool, int)
        return (time.perf_counter() - start) / n * 1e6

    hop_us = asyncio.run(hops())
    pool.shutdown()
    data = compile_value({"v": "{{ inputs.x }}-0"})
    scope = {"inputs": {"x": 1}, "nodes": {}, "run": {}}
    render_us = _per_call_us(lambda: render_value(data, scope), n)

    def digest() -> str:
        return event_hash(
            seq=1,
            at=_AT,
            actor="engine",
            channel="engine",
            kind="step.succeeded",
            run_id="run_floor",
            checkpoint_id=None,
            payload={"node": "n0", "type": "set", "output_hash": "a" * 64},
            prev_hash="0" * 64,
            sealed=True,
        )

    hash_us = _per_call_us(digest, n)
    return {
        "step_tx_us": round(step_us, 1),
        "hop_us": round(hop_us, 1),
        "render_us": round(render_us, 1),
        "audit_hash_us": round(hash_us, 1),
        "engine_floor_per_node_us": round(step_us + hop_us + render_us + hash_us, 1),
        "cycles_per_s_max": round(1e6 / (AUDITED_PER_CYCLE * step_us), 1),
    }


def postgres_floor(url: str, n: int) -> dict[str, float]:
    import psycopg
    import sqlalchemy as sa

    from bot.wiring import database_url

    sa_url = database_url(url)
    schema = f"signoff_floor_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(sa_url)
    with admin.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        scoped = sa.engine.make_url(sa_url).update_query_dict({"options": f"-csearch_path={schema}"})
        _schema(scoped.render_as_string(hide_password=False))
        dsn = sa.engine.make_url(sa_url).set(drivername="postgresql").render_as_string(hide_password=False)
        options = f"-csearch_path={schema}"
        works = [_Step(f"run_floor_{i}", pg=True) for i in range(8)]
        with psycopg.connect(dsn, options=options, autocommit=True) as raw:
            for w in works:
                raw.execute(_INSERT_RUN.pg, w.insert_run)
            raw.execute(_audit.UPDATE_HEAD.pg, {"seq": 0, "hash": "0" * 64})

        def steps(work: _Step, count: int, out: list[float]) -> None:
            with psycopg.connect(dsn, options=options) as conn:
                start = time.perf_counter()
                for _ in range(count):
                    with conn.transaction(), conn.pipeline():
                        # as the store does: run row and audit head locked by one statement,
                        # the writes as one more
                        row = conn.execute(_LOCK_RUN_AND_HEAD.pg, {"run_id": work.run_id}).fetchone()
                        assert row is not None
                        sql, params = work.batch(int(row[-2]), str(row[-1]))
                        conn.execute(sql.pg, params)
                out.append(time.perf_counter() - start)

        def head_moves(count: int) -> float:
            with psycopg.connect(dsn, options=options) as conn:
                start = time.perf_counter()
                for i in range(count):
                    with conn.transaction(), conn.pipeline():
                        conn.execute(_LOCK_HEAD.pg)
                        conn.execute(_audit.UPDATE_HEAD.pg, {"seq": i, "hash": "c" * 64})
                return count / (time.perf_counter() - start)

        head_per_s = head_moves(n)
        one: list[float] = []
        steps(works[0], n, one)
        many: list[float] = []
        start = time.perf_counter()
        threads = [threading.Thread(target=steps, args=(w, n // 8, many)) for w in works]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        per_s_8 = (n // 8) * 8 / (time.perf_counter() - start)
    finally:
        with admin.begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
    return {
        "step_tx_us": round(one[0] / n * 1e6, 1),
        "step_tx_per_s_8": round(per_s_8, 1),
        "head_commits_per_s": round(head_per_s, 1),
        "cycles_per_s_max": round(head_per_s / AUDITED_PER_CYCLE, 1),
    }


def _bolt_server(port_out: Any) -> None:
    """A Bolt app whose only listener acks, served on loopback in its own process."""
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.authorization import AuthorizeResult

    async def authorize(**kwargs: Any) -> AuthorizeResult:
        # what an installation store answers, without a Web API call
        return AuthorizeResult(
            enterprise_id=None,
            team_id=kwargs.get("team_id"),
            bot_token="xoxb-floor",  # noqa: S106 - never sent anywhere
            bot_user_id="UBOT",
        )

    app = AsyncApp(signing_secret=SECRET, authorize=authorize)

    @app.action(re.compile(".*"))
    async def _ack(ack: Any) -> None:
        await ack()

    async def cpu(_: web.Request) -> web.Response:
        return web.Response(text=repr(time.process_time()))

    async def serve() -> None:
        web_app = app.web_app(path="/slack/events")
        web_app.router.add_get("/cpu", cpu)
        runner = web.AppRunner(web_app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_out.send(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(serve())


async def bolt_floor(clicks: int) -> dict[str, float]:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    server = ctx.Process(target=_bolt_server, args=(send,), daemon=True)
    server.start()
    try:
        if not receive.poll(60):
            raise RuntimeError("the Bolt server did not start within 60 s")
        base = f"http://127.0.0.1:{receive.recv()}"
        payload = json.loads((FIXTURES / "block_actions_message_button.json").read_text())
        body = ("payload=" + quote(json.dumps(payload))).encode()
        latencies: list[float] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

            async def click() -> None:
                headers = {"Content-Type": "application/x-www-form-urlencoded", **sign_request(SECRET, body)}
                start = time.perf_counter()
                async with http.post(f"{base}/slack/events", data=body, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"Bolt answered {r.status}")
                latencies.append((time.perf_counter() - start) * 1000)

            async def server_cpu() -> float:
                async with http.get(f"{base}/cpu") as r:
                    return float(await r.text())

            await asyncio.gather(*(click() for _ in range(20)))  # warm up
            latencies.clear()
            cpu = await server_cpu()
            await asyncio.gather(*(click() for _ in range(clicks)))
            cpu_per_click = (await server_cpu() - cpu) / clicks * 1e6
    finally:
        server.terminate()
        server.join(10)
    ordered = sorted(latencies)
    return {
        "clicks": clicks,
        "ack_p50_ms": round(statistics.median(ordered), 1),
        "ack_p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "server_cpu_per_click_us": round(cpu_per_click, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--n", type=int, default=2000, help="transactions per measure")
    parser.add_argument("--clicks", type=int, default=200)
    args = parser.parse_args()
    out: dict[str, Any] = {"sqlite": sqlite_floor(args.n)}
    pg = os.environ.get("SIGNOFF_BENCH_POSTGRES_URL")
    if pg:
        out["postgres"] = postgres_floor(pg, args.n)
    out["bolt"] = asyncio.run(bolt_floor(args.clicks))
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
