"""Every Prometheus series from engine events, with its labels; the telemetry settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import ConfigError, Settings
from bot.telemetry import Metrics
from engine.observers import (
    CheckpointDecided,
    CheckpointOpened,
    DeliveryFailed,
    EngineEvent,
    LeaseTakenOver,
    RunFinished,
    RunStarted,
    StepFinished,
    TimerFired,
)
from engine.testing import InMemoryRunStore

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _step(**changes: object) -> StepFinished:
    base = StepFinished(
        at=T0 + timedelta(seconds=1.5),
        run_id="run_1",
        workflow="refund",
        step_id="step_1",
        node_id="draft",
        node_type="llm",
        status="succeeded",
        attempt=1,
        started_at=T0,
        model="claude-haiku-4-5",
        input_tokens=100,
        output_tokens=20,
        cost_usd=0.0002,
    )
    return base.model_copy(update=changes)


async def _samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, content_type = await metrics.scrape(InMemoryRunStore(), T0)
    assert content_type.startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


async def test_each_event_lands_in_its_series() -> None:
    metrics = Metrics()
    events: list[EngineEvent] = [
        RunStarted(at=T0, run_id="run_1", workflow="refund"),
        _step(),
        _step(node_id="draft", status="failed", at=T0 + timedelta(seconds=3), input_tokens=None),
        _step(
            node_id="send", node_type="http", model=None, input_tokens=None, output_tokens=None, cost_usd=None
        ),
        CheckpointOpened(at=T0, run_id="run_1", workflow="refund", checkpoint_id="cp_1", node_id="approval"),
        CheckpointDecided(
            at=T0 + timedelta(hours=2),
            run_id="run_1",
            workflow="refund",
            checkpoint_id="cp_1",
            node_id="approval",
            action="reject",
            resolved_by="timeout",
            opened_at=T0,
        ),
        DeliveryFailed(
            at=T0,
            delivery_id="d1",
            delivery_kind="checkpoint",
            method="chat.update",
            retryable=True,
            final=False,
        ),
        DeliveryFailed(
            at=T0, delivery_id="d2", delivery_kind="webhook", method="webhook", retryable=False, final=True
        ),
        TimerFired(at=T0 + timedelta(seconds=4), checkpoint_id="cp_1", due_at=T0),
        LeaseTakenOver(at=T0, run_id="run_1", previous_owner="host:1:abc"),
        RunFinished(at=T0, run_id="run_1", workflow="refund", outcome="rejected", started_at=T0),
    ]
    for event in events:
        metrics.on_event(event)
    got = await _samples(metrics)
    expected = {
        _key("signoff_runs_started_total", workflow="refund"): 1,
        _key("signoff_runs_finished_total", workflow="refund", outcome="rejected"): 1,
        _key("signoff_step_duration_seconds_count", kind="llm"): 2,
        _key("signoff_step_duration_seconds_sum", kind="llm"): 4.5,
        _key("signoff_step_duration_seconds_bucket", kind="llm", le="2.5"): 1,
        _key("signoff_step_duration_seconds_count", kind="http"): 1,
        _key("signoff_steps_failed_total", kind="llm"): 1,
        _key(
            "signoff_checkpoint_decision_seconds_count",
            workflow="refund",
            action="reject",
            resolved_by="timeout",
        ): 1,
        _key(
            "signoff_checkpoint_decision_seconds_sum",
            workflow="refund",
            action="reject",
            resolved_by="timeout",
        ): 7200,
        _key("signoff_outbox_send_failures_total", method="chat.update", final="false"): 1,
        _key("signoff_outbox_send_failures_total", method="webhook", final="true"): 1,
        _key("signoff_timer_lateness_seconds_sum", timer="deadline"): 4,
        _key("signoff_lease_takeovers_total"): 1,
        _key(
            "signoff_llm_tokens_total",
            workflow="refund",
            node="draft",
            model="claude-haiku-4-5",
            direction="input",
        ): 100,
        _key(
            "signoff_llm_tokens_total",
            workflow="refund",
            node="draft",
            model="claude-haiku-4-5",
            direction="output",
        ): 40,
        _key("signoff_llm_cost_usd_total", workflow="refund", node="draft", model="claude-haiku-4-5"): 0.0004,
        _key("signoff_checkpoints_open"): 0,
        _key("signoff_checkpoints_overdue"): 0,
        _key("signoff_outbox_pending"): 0,
    }
    for key, value in expected.items():
        assert key in got, key
        assert got[key] == pytest.approx(value), key
    assert not [k for k in got if k[0] == "signoff_llm_tokens_total" and ("node", "send") in k[1]]


def test_two_processes_in_one_interpreter_do_not_share_counts() -> None:
    one, two = Metrics(), Metrics()
    one.on_event(RunStarted(at=T0, run_id="run_1", workflow="refund"))
    assert one.registry.get_sample_value("signoff_runs_started_total", {"workflow": "refund"}) == 1
    assert two.registry.get_sample_value("signoff_runs_started_total", {"workflow": "refund"}) is None


def test_telemetry_settings() -> None:
    settings = Settings.from_env(
        {
            "SIGNOFF_METRICS_TOKEN": "m" * 20,
            "SIGNOFF_LOG_FORMAT": "JSON",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        }
    )
    assert settings.metrics_token is not None
    assert settings.metrics_token.get_secret_value() == "m" * 20
    assert "m" * 20 not in repr(settings)
    assert (settings.log_format, settings.otel_endpoint) == ("json", "http://127.0.0.1:4318")
    assert Settings.from_env({}).log_format == "auto"
    assert Settings.from_env({}).otel_endpoint is None
    assert "m" * 20 in settings.secrets()


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"SIGNOFF_METRICS_TOKEN": "short"}, "SIGNOFF_METRICS_TOKEN must be at least 16 characters"),
        ({"SIGNOFF_LOG_FORMAT": "xml"}, "SIGNOFF_LOG_FORMAT must be auto, json or console, not 'xml'"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318"},
            "OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL",
        ),
    ],
)
def test_bad_telemetry_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)


def test_the_log_redactor_masks_credentials_not_counts() -> None:
    from bot.telemetry import Redactor

    redact = Redactor(["my-signing-secret-value"])
    masked = redact(
        None,
        "info",
        {
            "event": "called with my-signing-secret-value",
            "input_tokens": 812,
            "output_tokens": 164,
            "cost_usd": 0.0016,
            "api_token": "tok-123456789",
            "headers": {"Authorization": "Bearer abcdefghijklmnop"},
            "note": "xoxb-1111-2222-abcdefabcdef and sk-ant-api03-abcdefgh",
            "run_id": "run_1",
        },
    )
    assert masked == {
        "event": "called with [redacted]",
        "input_tokens": 812,
        "output_tokens": 164,
        "cost_usd": 0.0016,
        "api_token": "[redacted]",
        "headers": "{'Authorization': 'Bearer [redacted]'}",
        "note": "[redacted] and [redacted]",
        "run_id": "run_1",
    }
