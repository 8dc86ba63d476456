"""Hostile Slack input (issue 6 §4) against one process (container + Bolt + worker + FakeSlack).

Forged or stale signatures on every endpoint form get 401 and change nothing; generated slash
command texts and interaction payloads never get a 5xx, never show a traceback and never make a
listener fail; a 1 MB context is stored whole and shown within Slack's limits.

The process runs on an event loop in a background thread, so hypothesis drives it synchronously.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.blocks.checkpoint import APPROVE, EDIT, EDIT_SUBMIT, REJECT, REJECT_SUBMIT, RUN_INPUTS_SUBMIT
from bot.blocks.home import HOME_PAGE
from bot.slack.listeners._common import OPEN_FORM
from engine.model import RunStatus
from tests.scenario._harness import MANAGER, REQUESTER, SlackEnv, fixture, slack_env

T = TypeVar("T")
FORM = "application/x-www-form-urlencoded"
ACTION_IDS = [APPROVE, REJECT, EDIT, OPEN_FORM, HOME_PAGE, "checkpoint.option", "checkpoint.show_full"]
CALLBACKS = [
    EDIT_SUBMIT,
    REJECT_SUBMIT,
    RUN_INPUTS_SUBMIT,
    "checkpoint.answer_submit",
    "checkpoint.confirm_submit",
]


class Failures(logging.Handler):
    """Collects error records: a listener that raised after its ack (the user saw nothing)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Background:
    """A SlackEnv on its own loop and thread."""

    def __init__(self, root: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._cm = slack_env(root, f"sqlite:///{root}/s.db")
        self.env: SlackEnv = self.run(self._cm.__aenter__())
        self.failures = Failures()
        logging.getLogger("signoff").addHandler(self.failures)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        logging.getLogger("signoff").removeHandler(self.failures)
        self.run(self._cm.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def post(self, body: str, content_type: str = FORM, **sign: Any) -> tuple[int, str]:
        return self.run(self.env.post(body, content_type, **sign))

    def counts(self) -> tuple[int, ...]:
        async def count() -> tuple[int, ...]:
            store = self.env.container.store
            return (
                len(await store.list_runs()),
                len(await store.list_checkpoints()),
                len(await store.list_decisions()),
                len(await store.list_deliveries()),
                len(await store.audit_events()),
            )

        return self.run(count())

    def quiet(self, seconds: float = 0.3) -> None:
        """Let the listeners that run after their ack finish."""
        time.sleep(seconds)

    def settled(self) -> tuple[int, ...]:
        """The counts once the outbox is idle and nothing changes for half a second."""
        last = self.counts()
        for _ in range(40):
            self.quiet(0.5)
            now = self.counts()
            if now == last:
                return now
            last = now
        return last


@pytest.fixture(scope="module")
def bg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    running = Background(tmp_path_factory.mktemp("hostile"))
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def checkpoint_id(bg: Background) -> str:
    """An open checkpoint the generated payloads can aim at."""
    from tests.scenario._flow import start_waiting

    return bg.run(start_waiting(bg.env)).id


def _interaction(payload: dict[str, Any]) -> str:
    return "payload=" + quote(json.dumps(payload))


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text
    assert 'File "' not in text


# ---------------------------------------------------------------------- signatures


def _bodies(bg: Background, cp_id: str) -> dict[str, tuple[str, str]]:
    env = bg.env
    view = fixture("view_submission_inputs.json")
    view["user"]["id"] = MANAGER
    view["view"].update(
        callback_id=REJECT_SUBMIT,
        private_metadata=json.dumps({"checkpoint_id": cp_id, "version": 1}),
        state={"values": {"reason": {"value": {"type": "plain_text_input", "value": "no"}}}},
    )
    event = fixture("app_home_opened.json")
    return {
        "slash command": (urlencode(env.command("run refund customer=ACME amount=5")), FORM),
        "button click": (_interaction(env.click(APPROVE, cp_id, MANAGER)), FORM),
        "modal submission": (_interaction(view), FORM),
        "event": (json.dumps(event), "application/json"),
        "url verification": (json.dumps(fixture("url_verification.json")), "application/json"),
    }


FORGERIES: dict[str, dict[str, Any]] = {
    "wrong secret": {"secret": "not-the-secret"},
    "stale (5 min 1 s old)": {"ts": int(time.time()) - 301},
    "from the future": {"ts": int(time.time()) + 301},
    "tampered body": {"tamper": True},
    "no signature": {"unsigned": True},
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_forged_or_stale_requests_get_401_and_change_nothing(
    bg: Background, checkpoint_id: str, forgery: str
) -> None:
    before = bg.settled()
    slack_calls = len(bg.env.fake.calls)
    for name, (body, ctype) in _bodies(bg, checkpoint_id).items():
        how = dict(FORGERIES[forgery])
        if how.get("tamper"):
            status, _ = bg.run(_tampered(bg.env, body, ctype))
        elif how.get("unsigned"):
            status, _ = bg.run(_unsigned(bg.env, body, ctype))
        else:
            if "ts" in how:
                how["ts"] = int(time.time()) + (301 if how["ts"] > time.time() else -301)
            status, _ = bg.post(body, ctype, **how)
        assert status == 401, (forgery, name)
    bg.quiet()
    assert bg.counts() == before
    assert len(bg.env.fake.calls) == slack_calls


async def _tampered(env: SlackEnv, body: str, ctype: str) -> tuple[int, str]:
    from tests.fakes.slack import sign_request
    from tests.scenario._harness import SECRET

    headers = {"Content-Type": ctype, **sign_request(SECRET, body.encode())}
    changed = body.replace("ACME", "EVIL").replace(MANAGER, REQUESTER) + " "
    async with env.http.post(env.url, data=changed.encode(), headers=headers) as response:
        return response.status, await response.text()


async def _unsigned(env: SlackEnv, body: str, ctype: str) -> tuple[int, str]:
    async with env.http.post(env.url, data=body.encode(), headers={"Content-Type": ctype}) as response:
        return response.status, await response.text()


# ---------------------------------------------------------------------- generated input

COMMANDS = [
    "run",
    "run refund",
    "run refund amount=",
    "run refund amount=1e999",
    "run refund customer=\x00 amount=-0",
    'run refund customer="unterminated',
    "run refund amount=NaN customer=x",
    "help me",
    "tasks",
    "list extra",
    "run refund " + "a=b " * 200,
    "run ../../etc/passwd",
    "run refund customer={{7*7}} amount=1",
]
texts = st.text(max_size=200) | st.sampled_from(COMMANDS)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, user=st.sampled_from([REQUESTER, MANAGER, "U" + "9" * 20, "", "W0"]))
def test_generated_slash_commands_never_fail(bg: Background, text: str, user: str) -> None:
    body = urlencode(bg.env.command(text, user=user))
    status, answer = bg.post(body)
    assert status < 500, answer
    _no_traceback(answer)


json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=40)
json_tree = st.recursive(
    json_leaf,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
    max_leaves=12,
)


@st.composite
def interactions(draw: st.DrawFn, cp_id: str, hooks: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["click", "submission", "junk"]))
    if kind == "junk":
        junk = draw(st.dictionaries(st.sampled_from(["type", "user", "actions", "view", "team"]), json_tree))
        return dict(junk)
    if kind == "click":
        p = fixture("block_actions_message_button.json")
        action = p["actions"][0]
        action["action_id"] = draw(st.sampled_from(ACTION_IDS) | st.text(max_size=20))
        action["value"] = draw(
            st.sampled_from([cp_id, f"{cp_id}|approve", f"edit:{cp_id}", "cp_nope", "", "0", "-1"])
            | st.text(max_size=60)
        )
        p["user"]["id"] = draw(st.sampled_from([MANAGER, REQUESTER, "UNOBODY"]))
        p["trigger_id"] = draw(st.text(max_size=30))
        p["response_url"] = hooks
        return dict(p)
    p = fixture("view_submission_inputs.json")
    meta = draw(
        st.sampled_from([json.dumps({"checkpoint_id": cp_id, "version": 1}), "{", "null", "[]"])
        | json_tree.map(json.dumps)
    )
    p["view"].update(
        callback_id=draw(st.sampled_from(CALLBACKS) | st.text(max_size=20)),
        private_metadata=meta,
        state={
            "values": draw(
                st.dictionaries(st.text(max_size=10), st.dictionaries(st.text(max_size=8), json_tree))
            )
        },
    )
    p["user"]["id"] = draw(st.sampled_from([MANAGER, REQUESTER, "UNOBODY"]))
    p["response_urls"] = []
    return dict(p)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_interactions_never_fail(bg: Background, checkpoint_id: str, data: st.DataObject) -> None:
    payload = data.draw(interactions(checkpoint_id, bg.env.fake.base_url + "hooks.fuzz"))
    status, answer = bg.post(_interaction(payload))
    assert status < 500, (payload, answer)
    _no_traceback(answer)


def test_no_listener_failed_and_no_reply_showed_a_traceback(bg: Background) -> None:
    """Runs after the generated tests (file order): what the users were sent, and the log."""
    bg.quiet(1.0)
    for call in bg.env.fake.calls:
        _no_traceback(json.dumps(call.params))
    failed = [r.getMessage() for r in bg.failures.records if "listener failed" in r.getMessage()]
    assert failed == []


# ---------------------------------------------------------------------- a 1 MB context


def test_a_1mb_context_is_stored_whole_and_shown_within_slack_limits(bg: Background) -> None:
    env = bg.env
    customer = ("ACME Corp " * 104_858)[:1_048_576]

    async def start() -> str:
        engine = env.container.engine
        run = await engine.start("refund", {"customer": customer, "amount": 5}, requester=REQUESTER)
        await engine.drive(run.id)
        return run.id

    run_id = bg.run(start())
    [cp] = bg.run(env.container.store.list_checkpoints(run_id=run_id))
    assert cp.context["customer"] == customer, "stored whole"

    async def posted() -> list[Any]:
        rows = await env.container.store.list_deliveries(checkpoint_id=cp.id)
        return [d for d in rows if d.kind == "checkpoint" and d.message_ts]

    bg.run(env.until(posted))
    cards = [c for c in env.fake.calls_to("chat.postMessage") if cp.id in json.dumps(c.params.get("blocks"))]
    assert cards
    for card in cards:
        _within_limits(card.params)
    bg.post(_interaction(env.click(APPROVE, cp.id, MANAGER)))

    async def done() -> bool:
        run = await env.container.store.get_run(run_id)
        return run.status is RunStatus.succeeded

    bg.run(env.until(done))
    updates = bg.run(
        env.until(
            lambda: [
                c
                for c in env.fake.calls_to("chat.update")
                if c.params["ts"] in {x.params.get("ts") for x in cards}
                or cp.id in json.dumps(c.params.get("blocks"))
            ]
        )
    )
    for update in updates:
        _within_limits(update.params)


def _within_limits(params: dict[str, Any]) -> None:
    """docs/slack-platform.md §1.8: 50 blocks, 3000 characters a section, 150 a header."""
    raw = params.get("blocks")
    blocks: list[dict[str, Any]] = json.loads(raw) if isinstance(raw, str) else list(raw or [])
    assert len(blocks) <= 50
    assert len(str(params.get("text") or "")) <= 4000
    for block in blocks:
        text = (block.get("text") or {}).get("text", "") if isinstance(block.get("text"), dict) else ""
        assert len(text) <= (150 if block["type"] == "header" else 3000), block["type"]
        for field in block.get("fields") or []:
            assert len(field.get("text", "")) <= 2000
    assert len(json.dumps(blocks)) < 100_000
