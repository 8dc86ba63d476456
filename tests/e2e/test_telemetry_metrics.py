"""``/metrics`` after real runs: a Slack process with a model node, scraped like Prometheus does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.blocks.checkpoint import APPROVE
from engine.model import DeliveryStatus, RunStatus
from tests.fakes.anthropic import FakeAnthropic
from tests.scenario._flow import start_waiting
from tests.scenario._harness import MANAGER, SlackEnv, slack_env

DRAFTED = """\
id: refund
title: Customer refund
inputs:
  type: object
  properties:
    customer: {type: string}
    amount: {type: number}
  required: [customer, amount]
nodes:
  - id: draft
    type: llm
    model: claude-haiku-4-5
    prompt: "Draft a refund note for {{ inputs.customer }} ({{ inputs.amount }} USD)."
  - id: approval
    type: human
    prompt: "Refund {{ inputs.amount }} USD to {{ inputs.customer }}?"
    context: {draft: "{{ nodes.draft.text }}"}
    options: [approve, reject]
    assignee: role:manager
  - id: receipt
    type: set
    data: {total: "{{ inputs.amount }}"}
  - id: tell
    type: notify
    to: requester
    text: "Refund of {{ inputs.amount }} USD sent."
edges:
  - {from: draft, to: approval}
  - {from: approval, to: receipt, when: "response.action == 'approve'"}
  - {from: receipt, to: tell}
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[SlackEnv]:
    async with FakeAnthropic() as llm:
        llm.reply_text("Dear ACME, your refund is on its way.", input_tokens=1000, output_tokens=200)
        async with slack_env(
            tmp_path, f"sqlite:///{tmp_path}/s.db", workflow=DRAFTED, llm_url=llm.base_url
        ) as e:
            yield e


def _base(env: SlackEnv) -> str:
    return env.url.rsplit("/slack/", 1)[0]


async def scrape(http: aiohttp.ClientSession, url: str, **headers: str) -> Samples:
    """Every sample of a Prometheus text exposition, keyed by name and labels."""
    async with http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; a missing series fails the test with what exists."""
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels} not in {sorted(k for k in samples if k[0].startswith(name))}"
    return samples[key]


async def test_series_after_a_run_with_a_model_node_and_a_decision(env: SlackEnv) -> None:
    env.fake.rate_limit("chat.postMessage", retry_after=1)
    cp = await start_waiting(env)
    url = f"{_base(env)}/metrics"
    waiting = await scrape(env.http, url)
    assert value(waiting, "signoff_checkpoints_open") == 1
    assert value(waiting, "signoff_checkpoints_overdue") == 0
    assert value(waiting, "signoff_runs_started_total", workflow="refund") == 1
    assert (
        "signoff_runs_finished_total",
        frozenset({("workflow", "refund"), ("outcome", "succeeded")}),
    ) not in waiting
    status, _ = await env.send("interaction", env.click(APPROVE, cp.id, MANAGER))
    assert status == 200

    async def finished() -> bool:
        return (await env.container.store.get_run(cp.run_id)).status is RunStatus.succeeded

    await env.until(finished)
    await env.until(lambda: env.fake.calls_to("chat.update"))

    async def sent() -> bool:
        rows = await env.container.store.list_deliveries()
        return not [d for d in rows if d.status is DeliveryStatus.pending]

    await env.until(sent)
    assert value(await scrape(env.http, url), "signoff_outbox_pending") == 0

    async def counted() -> Samples | None:
        # the run's end is counted just after the commit that ended it
        samples = await scrape(env.http, url)
        done = ("signoff_runs_finished_total", frozenset({("workflow", "refund"), ("outcome", "succeeded")}))
        return samples if done in samples else None

    after = await env.until(counted)

    assert value(after, "signoff_runs_started_total", workflow="refund") == 1
    assert value(after, "signoff_runs_finished_total", workflow="refund", outcome="succeeded") == 1
    for kind, count in {"llm": 1, "human": 1, "set": 1, "notify": 1}.items():
        assert value(after, "signoff_step_duration_seconds_count", kind=kind) == count, kind
    assert value(after, "signoff_step_duration_seconds_count", kind="llm") == 1
    assert (
        value(
            after,
            "signoff_checkpoint_decision_seconds_count",
            workflow="refund",
            action="approve",
            resolved_by="human",
        )
        == 1
    )
    model = {"workflow": "refund", "node": "draft", "model": "claude-haiku-4-5"}
    assert value(after, "signoff_llm_tokens_total", **model, direction="input") == 1000
    assert value(after, "signoff_llm_tokens_total", **model, direction="output") == 200
    # haiku 4.5: 1 USD per million tokens in, 5 out
    assert value(after, "signoff_llm_cost_usd_total", **model) == pytest.approx(0.002)
    assert value(after, "signoff_checkpoints_open") == 0
    # the first card was refused with 429 and retried: one failure of that method, not final
    assert value(after, "signoff_outbox_send_failures_total", method="chat.postMessage", final="false") == 1
    # one slash command and one click went through /slack/events
    assert value(after, "signoff_slack_ack_seconds_count", mode="http") == 2
    assert 0 < value(after, "signoff_slack_ack_seconds_sum", mode="http") < 3 * 2
    assert value(after, "signoff_lease_takeovers_total") == 0


async def test_a_second_scrape_counts_nothing_twice(env: SlackEnv) -> None:
    await start_waiting(env)
    url = f"{_base(env)}/metrics"
    first, second = await scrape(env.http, url), await scrape(env.http, url)
    assert value(first, "signoff_runs_started_total", workflow="refund") == 1
    assert value(second, "signoff_runs_started_total", workflow="refund") == 1
    assert value(second, "signoff_checkpoints_open") == 1


async def test_socket_mode_acks_are_timed_too(tmp_path: Path) -> None:
    async with slack_env(tmp_path, f"sqlite:///{tmp_path}/s.db", socket=True) as env:
        await start_waiting(env)
        acks = [f for f in env.fake.socket_frames if "envelope_id" in f]
        metrics = env.container.metrics
        assert metrics is not None
        registry = metrics.registry
        counted = await env.until(
            lambda: registry.get_sample_value("signoff_slack_ack_seconds_count", {"mode": "socket"})
        )
        assert counted == len(acks) >= 1
        assert registry.get_sample_value("signoff_slack_ack_seconds_count", {"mode": "http"}) is None
