"""Prometheus series (private): counters and histograms from engine events, gauges from the database.

Every series is prefixed ``signoff_`` and lives in the process's own registry, so two processes
in one interpreter (tests) never mix their counts. Counters and histograms count what *this*
process did; Prometheus sums them over replicas. Gauges are read from the database when
``/metrics`` is scraped (three indexed counts), so every replica reports the same, right values.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from engine.observers import (
    CheckpointDecided,
    DeliveryFailed,
    EngineEvent,
    GaugeSource,
    LeaseTakenOver,
    RunFinished,
    RunStarted,
    StepFinished,
    TimerFired,
)

__all__ = ["Metrics"]

_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86400.0
# a node runs from milliseconds (set, notify) to minutes (code, llm)
_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# a person answers within seconds or days
_DECISION_BUCKETS = (
    10, _MINUTE, 5 * _MINUTE, 15 * _MINUTE, 30 * _MINUTE, _HOUR, 2 * _HOUR, 4 * _HOUR,
    8 * _HOUR, _DAY, 2 * _DAY, 3 * _DAY, 7 * _DAY,
)  # fmt: skip
# Slack gives 3 seconds
_ACK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 5)
_LATENESS_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """The process's Prometheus registry; an engine ``Observer``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs_started = Counter("signoff_runs_started", "Runs started", ["workflow"], registry=r)
        self.runs_finished = Counter(
            "signoff_runs_finished", "Runs ended, by final status", ["workflow", "outcome"], registry=r
        )
        self.step_seconds = Histogram(
            "signoff_step_duration_seconds",
            "Node step latency, start to end, by node kind (a human step waits for its decision)",
            ["kind"],
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.steps_failed = Counter("signoff_steps_failed", "Steps that failed", ["kind"], registry=r)
        self.decision_seconds = Histogram(
            "signoff_checkpoint_decision_seconds",
            "Time from a checkpoint opening to its resolution",
            ["workflow", "action", "resolved_by"],
            buckets=_DECISION_BUCKETS,
            registry=r,
        )
        self.open_checkpoints = Gauge("signoff_checkpoints_open", "Open checkpoints", registry=r)
        self.overdue = Gauge(
            "signoff_checkpoints_overdue", "Open checkpoints past their deadline", registry=r
        )
        self.outbox_pending = Gauge(
            "signoff_outbox_pending", "Outbox rows waiting to be sent (first attempt or retry)", registry=r
        )
        self.send_failures = Counter(
            "signoff_outbox_send_failures",
            "Failed outbox send attempts, by API method (or row kind); final: given up",
            ["method", "final"],
            registry=r,
        )
        self.slack_ack = Histogram(
            "signoff_slack_ack_seconds",
            "Time to acknowledge a Slack request (Slack allows 3 s), by mode: http or socket",
            ["mode"],
            buckets=_ACK_BUCKETS,
            registry=r,
        )
        self.timer_lateness = Histogram(
            "signoff_timer_lateness_seconds",
            "How long after its due time a timer fired",
            ["timer"],
            buckets=_LATENESS_BUCKETS,
            registry=r,
        )
        self.lease_takeovers = Counter(
            "signoff_lease_takeovers", "Runs taken over after another process's lease expired", registry=r
        )
        self.tokens = Counter(
            "signoff_llm_tokens",
            "Model tokens, by workflow, node, model and direction (input or output)",
            ["workflow", "node", "model", "direction"],
            registry=r,
        )
        self.cost = Counter(
            "signoff_llm_cost_usd",
            "Model cost in USD, by workflow, node and model",
            ["workflow", "node", "model"],
            registry=r,
        )

    def on_event(self, event: EngineEvent) -> None:
        """Count one engine event."""
        match event:
            case RunStarted():
                self.runs_started.labels(event.workflow).inc()
            case RunFinished():
                self.runs_finished.labels(event.workflow, event.outcome).inc()
            case StepFinished():
                self._step(event)
            case CheckpointDecided():
                waited = (event.at - event.opened_at).total_seconds()
                self.decision_seconds.labels(event.workflow, event.action, event.resolved_by).observe(
                    max(waited, 0.0)
                )
            case DeliveryFailed():
                self.send_failures.labels(event.method, "true" if event.final else "false").inc()
            case TimerFired():
                late = (event.at - event.due_at).total_seconds()
                self.timer_lateness.labels(event.timer).observe(max(late, 0.0))
            case LeaseTakenOver():
                self.lease_takeovers.inc()
            case _:
                pass  # checkpoint.opened: the open gauge counts it from the database

    def _step(self, event: StepFinished) -> None:
        self.step_seconds.labels(event.node_type).observe(
            max((event.at - event.started_at).total_seconds(), 0.0)
        )
        if event.status == "failed":
            self.steps_failed.labels(event.node_type).inc()
        model = event.model or "none"
        labels = (event.workflow, event.node_id, model)
        if event.input_tokens:
            self.tokens.labels(*labels, "input").inc(event.input_tokens)
        if event.output_tokens:
            self.tokens.labels(*labels, "output").inc(event.output_tokens)
        if event.cost_usd:
            self.cost.labels(*labels).inc(event.cost_usd)

    def slack_acked(self, mode: str, seconds: float) -> None:
        """Record how long a Slack request took to acknowledge (``mode``: http or socket)."""
        self.slack_ack.labels(mode).observe(seconds)

    async def scrape(self, store: object, now: datetime, accept: str = "") -> tuple[bytes, str]:
        """The exposition and its content type (Prometheus text, or OpenMetrics when ``accept``
        asks for it), with the gauges read from ``store`` first (when it counts them)."""
        if isinstance(store, GaugeSource):
            gauges = await store.gauges(now)
            self.open_checkpoints.set(gauges.open_checkpoints)
            self.overdue.set(gauges.overdue_checkpoints)
            self.outbox_pending.set(gauges.outbox_pending)
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type
