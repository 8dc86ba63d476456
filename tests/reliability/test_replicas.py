"""Two replicas on one PostgreSQL (issue 6 §3): every decision delivered three times to both
replicas, exactly one decision and one resume per run, no duplicate step or Slack message.

CI runs 100 runs; ``python bench/replicas.py --runs 1000`` runs the full load
(figures in docs/reliability.md).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from storage import create_store
from tests.conftest import drop_pg_schema, pg_schema_url
from tests.fakes.slack import FakeSlack
from tests.reliability._cluster import GROUP, GROUP_MEMBER, Cluster, write_project
from tests.reliability._replicas import replica_load

RUNS = int(os.environ.get("SIGNOFF_REPLICA_RUNS", "100"))


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    schema = f"signoff_r_{uuid.uuid4().hex[:10]}"
    url = pg_schema_url(schema)
    write_project(tmp_path)
    store = create_store(url)
    try:
        async with FakeSlack(usergroups={GROUP: [GROUP_MEMBER]}) as fake, aiohttp.ClientSession() as http:
            running = Cluster(tmp_path, url, fake, http, store)
            try:
                yield running
            finally:
                running.stop_all()
    finally:
        await store.close()
        drop_pg_schema(schema)


@pytest.mark.postgres
async def test_two_replicas_decide_each_checkpoint_exactly_once(cluster: Cluster) -> None:
    figures = await replica_load(cluster, RUNS)
    print(figures.as_json())  # noqa: T201
    assert (figures.runs, figures.decisions, figures.resumes, figures.succeeded) == (RUNS,) * 4, figures
    assert figures.step_duplicates == 0, figures
    assert figures.decision_duplicates == 0, figures
    assert (figures.card_duplicates, figures.update_duplicates, figures.message_duplicates) == (0, 0, 0), (
        figures
    )
    assert (figures.cards_not_final, figures.deliveries_unsent) == (0, 0), figures
