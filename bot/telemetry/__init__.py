"""Telemetry: Prometheus ``/metrics``, structured logs, OpenTelemetry traces (docs/observability.md).

All three are engine observers (``engine.observers``): the engine emits typed events after each
commit and never imports a telemetry library.

- ``Metrics`` — the process's Prometheus registry (``signoff_*`` series); gauges are read from
  the database at scrape time. ``add_metrics_route`` mounts ``GET /metrics`` (bearer token
  ``SIGNOFF_METRICS_TOKEN``, else loopback only, as the console).
- ``configure_logging`` — every log record as a JSON line (a readable line on a terminal),
  with the run, node and checkpoint ids, secrets masked; ``EventLog`` writes one line per event.
- ``tracing`` — OpenTelemetry spans (one trace per run, a span per node, a span per HTTP
  request), exported over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; the SDK is the
  optional extra ``signoff[otel]`` and is imported only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.telemetry._events_log import EventLog
from bot.telemetry._logs import Redactor, configure_logging, log_handler
from bot.telemetry._metrics import Metrics
from bot.telemetry._route import METRICS_PATH, add_metrics_route

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from bot.telemetry._tracing import Tracing

__all__ = [
    "METRICS_PATH",
    "EventLog",
    "Metrics",
    "Redactor",
    "add_metrics_route",
    "configure_logging",
    "log_handler",
    "tracing",
]


def tracing(endpoint: str | None = None, *, exporter: SpanExporter | None = None) -> Tracing | None:
    """The process's tracer: spans to ``exporter``, or over OTLP to ``endpoint``; None when
    neither is given (tracing is off by default).

    Raises:
        ConfigError: ``endpoint`` is set but the OpenTelemetry SDK is not installed.
    """
    if exporter is None and endpoint is None:
        return None
    try:
        from bot.telemetry._tracing import Tracing, otlp_exporter
    except ImportError as exc:
        from bot.config import ConfigError

        raise ConfigError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not installed: "
            "pip install 'signoff[otel]'"
        ) from exc
    if exporter is not None:
        return Tracing(exporter, batch=False)  # tests: every span at once
    return Tracing(otlp_exporter(endpoint or ""))
