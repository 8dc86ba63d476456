"""Traces of a real Slack process, read from the SDK's in-memory exporter: one trace per run,
a span per node under the run's span, and the Slack requests that caused them."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from bot.blocks.checkpoint import APPROVE
from bot.telemetry import tracing
from bot.telemetry._tracing import run_span_context
from engine.model import RunStatus
from engine.observers import RunFinished, StepFinished
from tests.scenario._flow import full_scenario, start_waiting
from tests.scenario._harness import MANAGER, SlackEnv, slack_env

NODES = {"node draft", "node approval", "node send", "node tell"}


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def env(tmp_path: Path, exporter: InMemorySpanExporter) -> AsyncIterator[SlackEnv]:
    spans = tracing(exporter=exporter)
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db", tracing=spans) as running:
        yield running


def _of_run(spans: tuple[ReadableSpan, ...], run_id: str) -> list[ReadableSpan]:
    trace_id = run_span_context(run_id).trace_id
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


async def _second_run(env: SlackEnv) -> str:
    cp = await start_waiting(env)
    await env.send("interaction", env.click(APPROVE, cp.id, MANAGER))

    async def ended() -> bool:
        return (await env.container.store.get_run(cp.run_id)).status.final

    await env.until(ended)
    return cp.run_id


async def _recorded(env: SlackEnv, exporter: InMemorySpanExporter, run_id: str) -> None:
    """Wait for the run's span: it is recorded just after the commit that ended the run."""
    await env.until(
        lambda: [s for s in _of_run(exporter.get_finished_spans(), run_id) if s.name == "run refund"]
    )


async def test_one_trace_per_run_with_a_span_per_node(env: SlackEnv, exporter: InMemorySpanExporter) -> None:
    await full_scenario(env)
    first = (await env.container.store.list_runs())[0]
    assert first.status is RunStatus.succeeded
    second = await _second_run(env)
    await _recorded(env, exporter, first.id)
    await _recorded(env, exporter, second)
    spans = exporter.get_finished_spans()
    traces = {}
    for run_id in (first.id, second):
        mine = _of_run(spans, run_id)
        runs = [s for s in mine if s.name == "run refund"]
        assert len(runs) == 1, [s.name for s in mine]
        run_span = runs[0]
        assert run_span.parent is None
        assert run_span.context is not None
        assert run_span.context.span_id == run_span_context(run_id).span_id
        assert run_span.attributes is not None
        assert run_span.attributes["signoff.outcome"] == "succeeded"
        nodes = [s for s in mine if s is not run_span]
        assert sorted(s.name for s in nodes) == sorted(NODES), "one span per node, nothing else"
        for node in nodes:
            assert node.parent is not None
            assert node.parent.span_id == run_span.context.span_id
            assert node.attributes is not None
            assert node.attributes["signoff.run_id"] == run_id
            assert node.status.status_code is not StatusCode.ERROR
            assert node.start_time is not None
            assert run_span.start_time is not None
            assert node.start_time >= run_span.start_time
        traces[run_id] = run_span.context.trace_id
    assert traces[first.id] != traces[second]

    # every Slack request has a server span; the nodes it caused link to it
    requests = {
        s.context.span_id: s
        for s in spans
        if s.name == "POST /slack/events" and s.kind is SpanKind.SERVER and s.context is not None
    }
    assert len(requests) >= 6
    approval = next(s for s in _of_run(spans, second) if s.name == "node approval")
    linked = [link.context.span_id for link in approval.links]
    assert linked, "the decision's node span links to the click that decided it"
    assert set(linked) <= set(requests)
    click = requests[linked[0]]
    assert click.attributes is not None
    assert click.attributes["http.response.status_code"] == 200
    named = [s for s in requests.values() if s.attributes and s.attributes.get("signoff.run_id") == second]
    assert named, "the requests that started or decided the run name it"
    assert not [s for s in spans if s.name.startswith("GET /metrics")], "scrapes are not traced"


class Collector:
    """A fake OpenTelemetry collector: OTLP/HTTP protobuf on ``/v1/traces``, on a loopback port."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self.server = TestServer(app, host="127.0.0.1")

    async def _traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.requests.append(ExportTraceServiceRequest.FromString(body))
        return web.Response(body=b"", content_type="application/x-protobuf")

    def spans(self) -> list[Any]:
        return [
            span
            for req in self.requests
            for resource in req.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


async def test_spans_are_exported_over_otlp_when_an_endpoint_is_set() -> None:
    assert tracing(None) is None, "off by default"
    collector = Collector()
    await collector.server.start_server()
    try:
        spans = tracing(str(collector.server.make_url("/")))
        assert spans is not None
        at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        step = StepFinished(
            at=at + timedelta(seconds=2),
            run_id="run_otlp",
            workflow="refund",
            step_id="step_1",
            node_id="draft",
            node_type="llm",
            status="succeeded",
            attempt=1,
            started_at=at,
            model="claude-haiku-4-5",
            input_tokens=1000,
            output_tokens=200,
        )
        spans.on_event(step)
        spans.on_event(
            RunFinished(
                at=at + timedelta(seconds=3),
                run_id="run_otlp",
                workflow="refund",
                outcome="succeeded",
                started_at=at,
            )
        )
        # the exporter posts from its own thread; the collector answers on this loop
        await asyncio.to_thread(spans.shutdown)
    finally:
        await collector.server.close()
    got = {s.name: s for s in collector.spans()}
    assert set(got) == {"node draft", "run refund"}
    ids = run_span_context("run_otlp")
    assert {int.from_bytes(s.trace_id, "big") for s in got.values()} == {ids.trace_id}
    assert int.from_bytes(got["node draft"].parent_span_id, "big") == ids.span_id
    assert got["node draft"].end_time_unix_nano - got["node draft"].start_time_unix_nano == 2_000_000_000
    attributes = {a.key: a.value for a in got["node draft"].attributes}
    assert attributes["gen_ai.usage.input_tokens"].int_value == 1000
    assert attributes["signoff.node_type"].string_value == "llm"
    [resource] = {r.resource.SerializeToString() for req in collector.requests for r in req.resource_spans}
    assert b"signoff" in resource


async def test_request_spans_are_named_by_route_template(exporter: InMemorySpanExporter) -> None:
    spans = tracing(exporter=exporter)
    assert spans is not None

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/")

    app = web.Application(middlewares=[spans.middleware])
    app.router.add_get("/login/email/{token}", ok, name="web.login_link")
    app.router.add_get("/moved", moved, name="web.moved")
    app.router.add_get("/healthz", ok, name="web.healthz")
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            for path in ("/login/email/secret-login-token", "/healthz", "/nothing/here", "/moved"):
                async with http.get(
                    server.make_url(path), headers={"traceparent": parent}, allow_redirects=False
                ):
                    pass
    finally:
        await server.close()
    got = {s.name: s for s in exporter.get_finished_spans()}
    assert set(got) == {"GET /login/email/{token}", "GET (unmatched)", "GET /moved"}
    assert "secret-login-token" not in str([s.to_json() for s in got.values()])
    link = got["GET /login/email/{token}"]
    assert link.context is not None
    assert link.parent is not None
    assert f"{link.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c", (
        "the caller's trace continues"
    )
    assert link.attributes is not None
    assert link.attributes["http.response.status_code"] == 200
    assert got["GET (unmatched)"].attributes is not None
    assert got["GET (unmatched)"].attributes["http.response.status_code"] == 404
    assert got["GET /moved"].attributes is not None
    assert got["GET /moved"].attributes["http.response.status_code"] == 302
    assert got["GET /moved"].status.status_code is not StatusCode.ERROR
