"""The agent API: ask -> decision -> waiting long poll woken, and 1,000 long polls held.

Usage, from the repository root: ``python bench/api.py [--json] [--n 50] [--cli-n 10]
[--polls 1000] [--postgres URL]`` (PostgreSQL also from ``SIGNOFF_TEST_POSTGRES_URL``; it runs
in a throw-away schema; without it only SQLite is measured).

Everything runs as real ``signoff serve`` processes (Slack on, FakeSlack as the Web API):
* ``slack_same_process``: the agent long-polls replica A; the Approve click (signed) goes to A;
* ``slack_across_replicas``: the agent long-polls A; the click goes to replica B;
* ``cli``: the agent long-polls A; ``signoff respond`` (its own process) decides.
Latency is from the decision's ``decided_at`` (stamped in the deciding transaction) to the
agent receiving the long poll's answer, so it is the wake-up path alone, not Slack's or the
CLI's own start-up. Then ``--polls`` agents each long-poll their own checkpoint on one server,
and its RSS and CPU are read while they are all held (idle: nobody decides).
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
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402
import psutil  # noqa: E402

from bot.blocks.checkpoint import APPROVE  # noqa: E402
from storage import create_store  # noqa: E402
from tests.conftest import PG_ENV, drop_pg_schema, pg_schema_url  # noqa: E402
from tests.e2e._process import SIGNOFF, env_for  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.reliability._cluster import (  # noqa: E402
    GROUP,
    GROUP_MEMBER,
    MANAGER,
    Cluster,
    Server,
    card_posts,
    write_project,
)

ASK = {"prompt": "Deploy?", "assignee": "role:manager", "show": {"build": 42}}


def _summary(samples: list[float]) -> dict[str, float | int]:
    ms = sorted(s * 1000 for s in samples)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "n": len(ms),
        "p50_ms": round(cuts[49], 2),
        "p99_ms": round(cuts[98], 2),
        "max_ms": round(ms[-1], 2),
    }


class Agent:
    """An agent's HTTP calls to one server."""

    def __init__(self, http: aiohttp.ClientSession, server: Server, token: str) -> None:
        self.http = http
        self.base = f"http://127.0.0.1:{server.port}/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"}

    async def ask(self) -> str:
        body = {**ASK, "key": uuid.uuid4().hex}
        async with self.http.post(f"{self.base}/checkpoints", json=body, headers=self.headers) as r:
            assert r.status == 201, await r.text()
            return str((await r.json())["id"])

    async def wait(self, cp_id: str) -> tuple[int, dict[str, Any], float]:
        url = f"{self.base}/checkpoints/{cp_id}/decision?wait=25"
        async with self.http.get(url, headers=self.headers) as r:
            body = await r.json()
            return r.status, body, time.time()


async def _key(env: dict[str, str], root: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        SIGNOFF,
        "keys",
        "create",
        "--name",
        "bench",
        "--scopes",
        "checkpoints:create,checkpoints:read",
        "--json",
        env=env,
        cwd=root,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return str(json.loads(out)["key"])


async def _respond(env: dict[str, str], root: Path, cp_id: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        SIGNOFF,
        "respond",
        cp_id,
        "approve",
        "--as",
        MANAGER,
        env=env,
        cwd=root,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await proc.wait() == 0


async def _one(agent: Agent, decide: Any) -> float:
    cp_id = await agent.ask()
    waiter = asyncio.create_task(agent.wait(cp_id))
    await asyncio.sleep(0.1)  # the long poll is held before anyone decides
    await decide(cp_id)
    status, body, received = await waiter
    assert status == 200, body
    return received - datetime.fromisoformat(body["decided_at"]).timestamp()


async def _latencies(
    cluster: Cluster, a: Server, b: Server, token: str, n: int, cli_n: int
) -> dict[str, Any]:
    agent = Agent(cluster.http, a, token)
    env = env_for(cluster.database_url, cluster.root, a.port)

    def click(server: Server) -> Any:
        async def decide(cp_id: str) -> None:
            assert await cluster.interact(server, cluster.click_payload(APPROVE, cp_id, MANAGER)) == 200

        return decide

    async def cli(cp_id: str) -> None:
        await _respond(env, cluster.root, cp_id)

    out: dict[str, Any] = {}
    for name, decide, count in (
        ("slack_same_process", click(a), n),
        ("slack_across_replicas", click(b), n),
        ("cli", cli, cli_n),
    ):
        await _one(agent, decide)  # warm-up
        out[name] = _summary([await _one(agent, decide) for _ in range(count)])
    return out


async def _cpu_percent(proc: psutil.Process, seconds: float) -> float:
    cpu0, t0 = proc.cpu_times(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, t1 = proc.cpu_times(), time.monotonic()
    return 100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (t1 - t0)


async def _settled(cluster: Cluster, proc: psutil.Process, cards: int, limit_s: float = 900.0) -> None:
    """Until the server is idle: every ask's cards sent (its outbox drained), CPU quiet."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        sent = len(card_posts(cluster.fake))
        if sent >= cards and await _cpu_percent(proc, 2.0) < 5.0:
            return
        await asyncio.sleep(1.0)
    raise AssertionError(f"the server did not settle within {limit_s:g} s")


async def _held(cluster: Cluster, server: Server, token: str, polls: int) -> dict[str, Any]:
    agent = Agent(cluster.http, server, token)
    proc = psutil.Process(server.proc.pid)
    sem = asyncio.Semaphore(16)

    async def ask() -> str:
        async with sem:
            return await agent.ask()

    cards = len(card_posts(cluster.fake)) + 2 * polls  # one per manager: the user and the group member
    ids = await asyncio.gather(*(ask() for _ in range(polls)))
    await _settled(cluster, proc, cards)
    rss_before = proc.memory_info().rss
    idle = await _cpu_percent(proc, 10.0)
    waiters = [asyncio.create_task(agent.wait(cp_id)) for cp_id in ids]
    await asyncio.sleep(8.0)  # every request is in and sleeping (the window ends before their 25 s)
    held = await _cpu_percent(proc, 10.0)
    rss_held = proc.memory_info().rss
    answers = await asyncio.gather(*waiters)
    return {
        "held": polls,
        "answered_202_after_25s": sum(1 for status, _, _ in answers if status == 202),
        "rss_mb_before": round(rss_before / 2**20, 1),
        "rss_mb_held": round(rss_held / 2**20, 1),
        "kb_per_poll": round((rss_held - rss_before) / 1024 / polls, 1),
        "cpu_percent_idle_no_polls": round(idle, 2),
        "cpu_percent_polls_held": round(held, 2),
    }


async def _backend(url: str, n: int, cli_n: int, polls: int) -> dict[str, Any]:
    store = create_store(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_project(root)
            connector = aiohttp.TCPConnector(limit=0)
            async with (
                FakeSlack(usergroups={GROUP: [GROUP_MEMBER]}) as fake,
                aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http,
            ):
                cluster = Cluster(root, url, fake, http, store)
                try:
                    a = await cluster.start(name="a")
                    b = await cluster.start(name="b")
                    token = await _key(env_for(url, root, a.port), root)
                    result = await _latencies(cluster, a, b, token, n, cli_n) if n else {}
                    result["long_polls"] = await _held(cluster, a, token, polls)
                    return result
                finally:
                    cluster.stop_all()
    finally:
        await store.close()


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"cpus": os.cpu_count(), "load_1m_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = await _backend(f"sqlite:///{tmp}/bench.db", args.n, args.cli_n, args.polls)
    if args.postgres:
        os.environ[PG_ENV] = args.postgres
        schema = f"signoff_bench_{uuid.uuid4().hex[:10]}"
        try:
            out["postgres"] = await _backend(pg_schema_url(schema), args.n, args.cli_n, args.polls)
        finally:
            drop_pg_schema(schema)
    out["load_1m_at_end"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="decisions per Slack scenario (0: skip latencies)")
    parser.add_argument("--cli-n", type=int, default=10, help="decisions made by `signoff respond`")
    parser.add_argument("--polls", type=int, default=1000, help="long polls held at once")
    parser.add_argument("--postgres", default=os.environ.get(PG_ENV), help=f"default: ${PG_ENV}")
    parser.add_argument("--json", action="store_true", help="one line of JSON (default: indented)")
    args = parser.parse_args()
    figures = asyncio.run(_main(args))
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
