"""Schemathesis against the running API, from its own OpenAPI document, with valid and invalid
requests: no 5xx, and every response (status, content type, headers, body) matches the
document. Bounded for CI: a fixed number of examples per operation, derandomized."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.api._openapi import OPENAPI_PATH
from tests.e2e.api_harness import api_env, ask_body

EXAMPLES = 15  # per operation and mode: about 550 requests in all
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class Running:
    """The server in its own thread and event loop (Schemathesis calls it synchronously)."""

    base: str
    token: str
    checkpoint: str


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    ready: dict[str, str] = {}
    started = threading.Event()
    stop: list[asyncio.Event] = []
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        async with api_env(tmp_path, f"sqlite:///{tmp_path}/s.db") as env:
            token, _ = await env.key(
                "checkpoints:create,checkpoints:read,checkpoints:decide,runs:write,runs:read,webhooks:manage",
                as_user="UMGR0001",
            )
            _, cp, _ = await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="seed"))
            ready.update(base=env.base, token=token, checkpoint=cp["id"])
            stop.append(asyncio.Event())
            started.set()
            await stop[0].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(60), "the server did not start"
    try:
        yield Running(ready["base"], ready["token"], ready["checkpoint"])
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(60)
        loop.close()


def test_the_api_holds_its_own_contract(running: Running) -> None:
    schema = schemathesis.openapi.from_url(running.base + OPENAPI_PATH)
    session = requests.Session()
    headers = {"Authorization": f"Bearer {running.token}"}
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) > 15
    for operation, mode in itertools.product(operations, GenerationMode):

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def holds(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            # half the time, a checkpoint that exists (so more than 404s get checked)
            ids = case.path_parameters
            if "id" in ids and case.method != "DELETE" and hash(str(case.body)) % 2 == 0:
                ids["id"] = running.checkpoint
            if isinstance(case.query.get("wait"), int):
                case.query["wait"] = 0  # long polls are tested elsewhere; here they would only wait
            response = case.call(base_url=running.base, session=session, headers=headers, timeout=60)
            case.validate_response(response, checks=CHECKS)

        holds()
