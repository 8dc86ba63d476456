"""Structured logs of a real process: a JSON line per step with its ids, and no secret anywhere."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.local import LocalSender
from bot.server import create_app
from bot.telemetry import configure_logging, log_handler
from bot.wiring import Container
from engine.commands import Decide
from engine.model import RunStatus

CARD = "4111-1111-1111-1111"
BOT_TOKEN = "xoxb-12345-67890-SeCrEtSeCrEt"

PAY = """\
id: pay
inputs:
  type: object
  properties:
    customer: {type: string}
    card: {type: string, x-signoff-sensitive: true}
  required: [customer, card]
nodes:
  - id: prepare
    type: set
    data: {customer: "{{ inputs.customer }}", card: "{{ inputs.card }}"}
  - id: approval
    type: human
    prompt: "Charge {{ inputs.customer }}?"
    assignee: user:mia
    options: [approve, reject]
  - id: tell
    type: notify
    to: requester
    text: "Charged card {{ inputs.card }} for {{ inputs.customer }}."
edges:
  - {from: prepare, to: approval}
  - {from: approval, to: tell, when: "response.action == 'approve'"}
"""


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "pay.yml").write_text(PAY)
    return folder


@pytest.fixture
def sender() -> LocalSender:
    """Local mode: messages go to the log, where a sensitive value must not."""
    return LocalSender()


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every log record of the process as JSON lines, as ``signoff serve`` writes them."""
    stream = io.StringIO()
    handler = log_handler("json", stream, secrets=[BOT_TOKEN])
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def _run_to_the_end(container: Container) -> str:
    await create_app(container)  # the server's observers: metrics and the event log
    engine = container.engine
    run = await engine.start("pay", {"customer": "ACME", "card": CARD}, requester="alice")
    await engine.drive(run.id)
    [cp] = await container.store.list_checkpoints(run_id=run.id, open_only=True)
    await engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia", channel="cli"))
    assert container.outbox is not None
    await container.outbox.drain()
    assert (await container.store.get_run(run.id)).status is RunStatus.succeeded
    return run.id


async def test_a_json_line_per_step_with_its_ids(container: Container, captured: io.StringIO) -> None:
    run_id = await _run_to_the_end(container)
    lines = _lines(captured)
    steps = [line for line in lines if line.get("logger") == "signoff.engine.events" and "node_type" in line]
    assert [(s["node_id"], s["node_type"], s["event"]) for s in steps] == [
        ("prepare", "set", "step succeeded"),
        ("approval", "human", "step succeeded"),
        ("tell", "notify", "step succeeded"),
    ]
    [cp] = await container.store.list_checkpoints(run_id=run_id)
    for step in steps:
        assert step["run_id"] == run_id
        assert step["level"] == "info"
        assert step["timestamp"].endswith("Z")
        assert step["duration_s"] >= 0
        assert step["step_id"].startswith("step_")
    assert steps[1]["checkpoint_id"] == cp.id, "the human step ends with its decision"
    assert "checkpoint_id" not in steps[2], "no stale checkpoint id on a later node"
    events = [line["event"] for line in lines if line.get("logger") == "signoff.engine.events"]
    assert events[0] == "run started"
    assert events[-1] == "run succeeded"
    assert "checkpoint opened" in events
    assert "checkpoint decided" in events
    # a line written outside the engine's events carries the ids bound while it was written
    told = [line for line in lines if line.get("logger") == "signoff.local" and "Charged" in line["event"]]
    assert len(told) == 1
    assert told[0]["run_id"] == run_id


async def test_no_secret_input_or_token_reaches_the_log(container: Container, captured: io.StringIO) -> None:
    await _run_to_the_end(container)
    log = logging.getLogger("signoff.test")
    log.warning("Slack refused token %s", BOT_TOKEN)
    log.info(
        "calling the API", extra={"api_key": "some-api-key-value", "authorization": "Bearer abcdefghijk"}
    )
    failure = RuntimeError(f"auth failed for xoxb-999-888-other-token and {BOT_TOKEN}")
    log.error("send failed", exc_info=failure)
    text = captured.getvalue()
    assert "Charged card" in text or "message to" in text, "the notify message was logged"
    assert CARD not in text
    assert BOT_TOKEN not in text
    assert "xoxb-999-888-other-token" not in text
    assert "some-api-key-value" not in text
    assert "abcdefghijk" not in text
    assert text.count("[redacted]") >= 4


def test_a_terminal_gets_readable_lines(capsys: pytest.CaptureFixture[str]) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Terminal(), io.StringIO()
    for stream in (tty, pipe):
        handler = configure_logging("auto", stream=stream)
        logging.getLogger("signoff.test").info("hello %s", "there", extra={"run_id": "run_1"})
        logging.getLogger().removeHandler(handler)
    assert "hello there" in tty.getvalue()
    assert "run_id=run_1" in tty.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(tty.getvalue())
    assert json.loads(pipe.getvalue()) | {"timestamp": "t"} == {
        "event": "hello there",
        "run_id": "run_1",
        "logger": "signoff.test",
        "level": "info",
        "timestamp": "t",
    }
