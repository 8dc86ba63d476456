"""Slack ack latency: N concurrent Approve clicks, signed, on the real /slack/events endpoint.

Usage, from the repository root: ``python bench/slack_ack.py [--n 200] [--json] [--postgres URL]``
(PostgreSQL also from ``SIGNOFF_TEST_POSTGRES_URL``; it runs in a throw-away schema).

Measured per click:
* ack, server: from Bolt receiving the request to the response it returns (what Slack's
  3 s budget is about);
* ack, client: the HTTP round trip seen by the sender on loopback (an upper bound);
* resumed: from sending the click to the run's next node starting (decision committed, run
  driven past the checkpoint).
The Web API is FakeSlack on loopback; the outbox keeps posting and updating cards meanwhile.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts bench/ first on sys.path, where bench/engine.py would shadow
# the engine package; put the repository root there instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench")]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote  # noqa: E402

import aiohttp  # noqa: E402

from bot.blocks.checkpoint import APPROVE  # noqa: E402
from tests.fakes.slack import sign_request  # noqa: E402
from tests.scenario._harness import MANAGER, REQUESTER, SECRET, SlackEnv, slack_env  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p99_ms": round(_pct(values, 0.99), 2),
        "max_ms": round(max(values), 2),
    }


async def _waiting_runs(env: SlackEnv, n: int) -> list[tuple[str, str]]:
    engine, store = env.container.engine, env.container.store
    for i in range(n):
        run = await engine.start(
            "refund", {"customer": f"C{i}", "amount": 120}, requester=REQUESTER, origin={"channel": "bench"}
        )
        await engine.drive(run.id)
    cps = await store.list_checkpoints(open_only=True, limit=n)
    assert len(cps) == n, f"{len(cps)} checkpoints open, wanted {n}"
    # Let the outbox post the cards first, so the clicks measure deciding, not a backlog.
    await env.until(lambda: _drained(env), timeout=120)
    return [(cp.id, cp.run_id) for cp in cps]


async def _drained(env: SlackEnv) -> bool:
    return not await env.container.store.due_deliveries(datetime.now(UTC), 1)


async def _resumed_at(env: SlackEnv, run_id: str) -> datetime | None:
    steps = await env.container.store.list_steps(run_id)
    return next((s.started_at for s in steps if s.node_id == "send"), None)


async def measure(database_url: str, n: int, *, sequential: bool = False) -> dict[str, Any]:
    """Run the clicks against one database; returns the latency summaries.

    Args:
        database_url: where the process keeps its state.
        n: how many runs wait, and how many clicks are sent (one per checkpoint).
        sequential: one click at a time, each after the previous run resumed (no contention),
            instead of all at once.
    """
    with tempfile.TemporaryDirectory() as tmp:
        async with slack_env(Path(tmp), database_url) as env:
            targets = await _waiting_runs(env, n)
            server: list[float] = []
            dispatch = env.surface.app.async_dispatch

            async def timed(req: Any) -> Any:
                start = time.perf_counter()
                response = await dispatch(req)
                server.append((time.perf_counter() - start) * 1000)
                return response

            env.surface.app.async_dispatch = timed  # type: ignore[method-assign]
            bodies = [
                ("payload=" + quote(json.dumps(env.click(APPROVE, cp, MANAGER)))).encode()
                for cp, _ in targets
            ]
            client: list[float] = []
            sent: dict[str, datetime] = {}
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

                async def click(body: bytes, run_id: str) -> None:
                    headers = {
                        "Content-Type": "application/x-www-form-urlencoded",
                        **sign_request(SECRET, body),
                    }
                    sent[run_id] = datetime.now(UTC)
                    start = time.perf_counter()
                    async with http.post(env.url, data=body, headers=headers) as response:
                        await response.read()
                        assert response.status == 200, response.status
                    client.append((time.perf_counter() - start) * 1000)

                pairs = list(zip(bodies, targets, strict=True))
                if sequential:
                    for body, (_, run) in pairs:
                        await click(body, run)
                        await env.until(functools.partial(_resumed_at, env, run), timeout=30)
                else:
                    await asyncio.gather(*(click(body, run) for body, (_, run) in pairs))

            async def all_resumed() -> list[datetime] | None:
                found = [await _resumed_at(env, run) for _, run in targets]
                return None if None in found else [f for f in found if f is not None]

            resumed = await env.until(all_resumed, timeout=120)
            lags = [
                (at - sent[run]).total_seconds() * 1000 for at, (_, run) in zip(resumed, targets, strict=True)
            ]
            decisions = len(await env.container.store.list_decisions())
    return {
        "clicks": n,
        "decisions": decisions,
        "ack_server": _summary(server),
        "ack_client": _summary(client),
        "click_to_resumed": _summary(lags),
    }


def _postgres_url(explicit: str | None) -> tuple[str, str] | None:
    raw = explicit or os.environ.get("SIGNOFF_TEST_POSTGRES_URL")
    if not raw:
        return None
    from tests.conftest import pg_schema_url

    schema = f"signoff_bench_{uuid.uuid4().hex[:8]}"
    os.environ.setdefault("SIGNOFF_TEST_POSTGRES_URL", raw)
    return pg_schema_url(schema), schema


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--postgres", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    results: dict[str, Any] = {}
    for mode, sequential in (("burst", False), ("one_by_one", True)):
        n = args.n if not sequential else min(args.n, 50)
        with tempfile.TemporaryDirectory() as tmp:
            results[f"sqlite_{mode}"] = await measure(f"sqlite:///{tmp}/bench.db", n, sequential=sequential)
        pg = _postgres_url(args.postgres)
        if pg is not None:
            from tests.conftest import drop_pg_schema

            try:
                results[f"postgresql_{mode}"] = await measure(pg[0], n, sequential=sequential)
            finally:
                drop_pg_schema(pg[1])
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for backend, r in results.items():
        for name in ("ack_server", "ack_client", "click_to_resumed"):
            s = r[name]
            print(
                f"{backend:22} {name:17} p50 {s['p50_ms']:8.2f} ms  "
                f"p99 {s['p99_ms']:8.2f} ms  max {s['max_ms']:8.2f} ms"
            )


if __name__ == "__main__":
    asyncio.run(main())
