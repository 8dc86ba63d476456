"""OpenTelemetry traces (private): one trace per run, a span per node, and the HTTP request.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (then spans are exported over OTLP/HTTP in
a background thread). A run can pause for days and be continued by another replica, so spans
are not held open: each is recorded when the engine reports the step or the run as ended, with
its real start and end times. The trace id and the run span's id are derived from the run id,
so every replica puts its node spans into the same trace, under the same run span, without
sharing anything but the run id.

Every HTTP request (console, API, ``/slack/events``) gets a server span, continuing a caller's
``traceparent``; the node spans a request caused (a run it started, a decision it made) link to
it, and the request span names the run (``signoff.run_id``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from engine.observers import CheckpointDecided, EngineEvent, RunFinished, RunStarted, StepFinished

__all__ = ["Tracing", "otlp_exporter", "run_span_context"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_UNTRACED = frozenset({"metrics", "web.healthz", "web.readyz", "web.static", "healthz", "readyz"})
_PROPAGATOR = TraceContextTextMapPropagator()


def _derived(label: str, run_id: str, size: int) -> int:
    value = int.from_bytes(hashlib.sha256(f"{label}:{run_id}".encode()).digest()[:size], "big")
    return value or 1


def run_span_context(run_id: str) -> SpanContext:
    """The trace and span ids of a run's span, the same in every process."""
    return SpanContext(
        trace_id=_derived("trace", run_id, 16),
        span_id=_derived("run", run_id, 8),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


class _Ids(RandomIdGenerator):
    """Random ids, except for a run's span, whose ids are derived from the run id."""

    def __init__(self) -> None:
        self.fixed: ContextVar[SpanContext | None] = ContextVar("signoff_fixed_span", default=None)

    def generate_trace_id(self) -> int:
        fixed = self.fixed.get()
        return fixed.trace_id if fixed is not None else super().generate_trace_id()

    def generate_span_id(self) -> int:
        fixed = self.fixed.get()
        return fixed.span_id if fixed is not None else super().generate_span_id()


def _ns(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000_000)


def _resource() -> Resource:
    """The SDK's resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), named ``signoff``
    unless those name the service."""
    detected = Resource.create()
    if str(detected.attributes.get("service.name", "")).startswith("unknown_service"):
        return detected.merge(Resource({"service.name": "signoff"}))
    return detected


def otlp_exporter(endpoint: str) -> SpanExporter:
    """The OTLP/HTTP exporter for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (traces go to ``/v1/traces``)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")


class Tracing:
    """The process's tracer: an engine ``Observer`` and an aiohttp middleware."""

    def __init__(self, exporter: SpanExporter, *, batch: bool = True) -> None:
        self._ids = _Ids()
        self.provider = TracerProvider(resource=_resource(), id_generator=self._ids)
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("signoff")

    def shutdown(self) -> None:
        """Export what is buffered and stop."""
        self.provider.shutdown()

    # ------------------------------------------------------------------ engine events

    def on_event(self, event: EngineEvent) -> None:
        """Record the span of a step or a run that ended; name the run on the request's span."""
        match event:
            case StepFinished():
                self._node(event)
            case RunFinished():
                self._run(event)
            case RunStarted() | CheckpointDecided():
                current = trace.get_current_span()
                if current.is_recording():
                    current.set_attribute("signoff.run_id", event.run_id)
            case _:
                pass

    def _caused_by(self) -> list[Link]:
        current = trace.get_current_span().get_span_context()
        return [Link(current)] if current.is_valid else []

    def _node(self, event: StepFinished) -> None:
        parent = trace.set_span_in_context(NonRecordingSpan(run_span_context(event.run_id)))
        attributes: dict[str, str | int | float] = {
            "signoff.run_id": event.run_id,
            "signoff.workflow": event.workflow,
            "signoff.node_id": event.node_id,
            "signoff.node_type": event.node_type,
            "signoff.step_id": event.step_id,
            "signoff.status": event.status,
            "signoff.attempt": event.attempt,
        }
        usage = {
            "gen_ai.request.model": event.model,
            "gen_ai.usage.input_tokens": event.input_tokens,
            "gen_ai.usage.output_tokens": event.output_tokens,
            "signoff.cost_usd": event.cost_usd,
        }
        attributes.update({k: v for k, v in usage.items() if v is not None})
        span = self.tracer.start_span(
            f"node {event.node_id}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=self._caused_by(),
            start_time=_ns(event.started_at),
        )
        if event.status == "failed":
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end(end_time=_ns(event.at))

    def _run(self, event: RunFinished) -> None:
        with self._fixed(run_span_context(event.run_id)):
            span = self.tracer.start_span(
                f"run {event.workflow}",
                context=otel_context.Context(),  # the root of its trace, whatever is current
                kind=SpanKind.INTERNAL,
                attributes={
                    "signoff.run_id": event.run_id,
                    "signoff.workflow": event.workflow,
                    "signoff.outcome": event.outcome,
                },
                start_time=_ns(event.started_at),
            )
        if event.outcome == "failed":
            span.set_status(Status(StatusCode.ERROR, "run failed"))
        span.end(end_time=_ns(event.at))

    @contextmanager
    def _fixed(self, ids: SpanContext) -> Iterator[None]:
        token = self._ids.fixed.set(ids)
        try:
            yield
        finally:
            self._ids.fixed.reset(token)

    # ------------------------------------------------------------------ HTTP requests

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """A server span around every request but health checks, ``/metrics`` and static files."""
        route: web.AbstractRoute | None = request.match_info.route  # None: a mounted ASGI app (/mcp)
        if route is not None and (route.name or "") in _UNTRACED:
            return await handler(request)
        resource = route.resource if route is not None else None
        # the route's template (``/runs/{run_id}``), never the path: paths may carry login tokens
        template = resource.canonical if resource is not None else _mounted(request.path, route)
        parent = _PROPAGATOR.extract(dict(request.headers))
        with self.tracer.start_as_current_span(
            f"{request.method} {template}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "http.route": template},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # redirects and aiohttp's own answers
                _answered(span, exc.status)
                raise
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            _answered(span, response.status)
            return response


def _mounted(path: str, route: web.AbstractRoute | None) -> str:
    """A mounted application's prefix (``/mcp``), never the rest of the path; ``(unmatched)``
    for a path nothing serves (its segments are the caller's, not a bounded set of names)."""
    return "/" + path.lstrip("/").split("/", 1)[0] if route is None else "(unmatched)"


def _answered(span: trace.Span, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
