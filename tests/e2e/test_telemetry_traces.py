"""Traces of a real Slack process, read from the SDK's in-memory exporter: one trace per run,
a span per node under the run's span, and the Slack requests that caused them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from bot.blocks.checkpoint import APPROVE
from bot.telemetry import tracing
from bot.telemetry._tracing import run_span_context
from engine.model import RunStatus
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


async def test_one_trace_per_run_with_a_span_per_node(env: SlackEnv, exporter: InMemorySpanExporter) -> None:
    await full_scenario(env)
    first = (await env.container.store.list_runs())[0]
    assert first.status is RunStatus.succeeded
    second = await _second_run(env)
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
