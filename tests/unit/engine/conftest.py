"""An engine on in-memory fakes, built from workflow YAML in the test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from engine.catalog import WorkflowCatalog
from engine.loader import load_workflow_text
from engine.model import Delivery
from engine.nodes.base import NodeDeps
from engine.ports import HttpRequest, HttpResponse, SendResult
from engine.roles import Role
from engine.service import Engine
from engine.testing import FixedClock, InMemoryRunStore, SeqIds

ROLES = {
    "manager": Role(members=["user:mia", "user:manny"], escalates_to="role:senior", delegates=["user:dave"]),
    "senior": Role(members=["user:sam"]),
    "admin": Role(members=["user:olga"], admin=True),
    "finance": Role(members=["user:fiona", "user:felix"], delegates=["user:dave"]),
    "support": Role(members=["user:ann", "user:ben", "user:cat"], delegates=["user:dave"]),
}


class RecordingHttp:
    """An HttpClient fake: scripted responses, every request recorded."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.responses: list[HttpResponse] = []

    async def request(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        if self.responses:
            return self.responses.pop(0)
        return HttpResponse(status=200, text='{"id": "re_1"}')


class RecordingSender:
    """A Sender fake that records deliveries and can fail the first N sends."""

    def __init__(self, fail_first: int = 0, retry_after: float | None = None) -> None:
        self.sent: list[Delivery] = []
        self.fail_first = fail_first
        self.retry_after = retry_after

    async def send(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        if self.fail_first > 0:
            self.fail_first -= 1
            return SendResult(ok=False, error="ratelimited", retryable=True, retry_after=self.retry_after)
        self.sent.append(delivery)
        return SendResult(ok=True, channel_ref="D1", message_ts=f"1.{len(self.sent)}")


@dataclass
class World:
    engine: Engine
    store: InMemoryRunStore
    clock: FixedClock
    http: RecordingHttp
    catalog: WorkflowCatalog


@pytest.fixture
def make_world() -> Callable[..., World]:
    def make(*texts: str) -> World:
        workflows = {}
        for text in texts:
            wf = load_workflow_text(text, file="test.yml", roles=ROLES)
            workflows[wf.id] = wf
        store = InMemoryRunStore()
        clock = FixedClock()
        http = RecordingHttp()
        catalog = WorkflowCatalog(workflows, roles=ROLES)
        deps = NodeDeps(clock=clock, ids=SeqIds(), http=http, roles=ROLES)
        engine = Engine(store=store, catalog=catalog, deps=deps, owner="test-1")
        return World(engine, store, clock, http, catalog)

    return make
