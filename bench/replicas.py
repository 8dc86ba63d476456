"""Two ``signoff serve`` replicas on one PostgreSQL: N runs paused at a checkpoint, every decision
delivered three times (a click, its redelivery to the other replica, a double click).

Usage, from the repository root: ``python bench/replicas.py [--runs 1000] [--postgres URL]``
(PostgreSQL also from ``SIGNOFF_TEST_POSTGRES_URL``; it runs in a throw-away schema). Prints one
line of JSON; every ``*_duplicates`` must be 0 and decisions = resumes = succeeded = runs.
CI runs the same scenario with 100 runs (tests/reliability/test_replicas.py).
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
import os  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402

import aiohttp  # noqa: E402

from storage import create_store  # noqa: E402
from tests.conftest import PG_ENV, drop_pg_schema, pg_schema_url  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.reliability._cluster import GROUP, GROUP_MEMBER, Cluster, write_project  # noqa: E402
from tests.reliability._replicas import ReplicaFigures, replica_load  # noqa: E402


async def _main(runs: int, concurrency: int) -> ReplicaFigures:
    schema = f"signoff_bench_{uuid.uuid4().hex[:10]}"
    url = pg_schema_url(schema)
    store = create_store(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_project(root)
            async with FakeSlack(usergroups={GROUP: [GROUP_MEMBER]}) as fake, aiohttp.ClientSession() as http:
                cluster = Cluster(root, url, fake, http, store)
                try:
                    return await replica_load(cluster, runs, concurrency=concurrency)
                finally:
                    cluster.stop_all()
    finally:
        await store.close()
        drop_pg_schema(schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at once")
    parser.add_argument("--postgres", default=os.environ.get(PG_ENV), help=f"default: ${PG_ENV}")
    args = parser.parse_args()
    if not args.postgres:
        parser.error(f"needs PostgreSQL: --postgres URL or ${PG_ENV}")
    os.environ[PG_ENV] = args.postgres
    figures = asyncio.run(_main(args.runs, args.concurrency))
    print(figures.as_json())
    duplicates = (
        figures.step_duplicates
        + figures.decision_duplicates
        + figures.card_duplicates
        + figures.update_duplicates
        + figures.message_duplicates
    )
    expected = (figures.runs,) * 3
    sys.exit(
        0 if duplicates == 0 and (figures.decisions, figures.resumes, figures.succeeded) == expected else 1
    )


if __name__ == "__main__":
    main()
