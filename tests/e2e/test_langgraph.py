"""LangGraph with its SQLite checkpointer, driven through Signoff: the agent process is killed
while it waits and started again; the same checkpoint, no second Slack card, and the graph
finishes once, when the manager approves in Slack."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from bot.blocks.checkpoint import APPROVE
from engine.commands import Decide
from signoff_client import AsyncSignoff, Signoff
from signoff_client.langgraph import checkpoint, checkpoint_sync, drive
from tests.e2e.api_harness import ApiEnv, api_env
from tests.scenario._flow import has_buttons
from tests.scenario._harness import MANAGER

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path, database_url) as running:
        yield running


class Agent:
    """``tests.e2e._langgraph_agent`` in its own process, its stdout read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, env: ApiEnv, token: str, folder: Path) -> Agent:
        args = [env.base, token, str(folder / "graph.db"), "thread-1", str(folder / "sent.txt")]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.e2e._langgraph_agent",
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        return cls(proc)

    async def line(self, prefix: str, timeout: float = 60) -> str:
        """The next stdout line that starts with ``prefix`` (without it)."""
        assert self.proc.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not raw:
                raise AssertionError(f"the agent exited ({await self.proc.wait()}) before {prefix!r}")
            text = raw.decode().strip()
            if text.startswith(prefix + " "):
                return text[len(prefix) + 1 :]

    async def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()


def _cards(env: ApiEnv, cp_id: str) -> list[Any]:
    calls = env.slack.fake.calls_to("chat.postMessage")
    return [c for c in calls if has_buttons(c) and cp_id in str(c.params.get("blocks"))]


async def test_kill_the_agent_while_it_waits_then_restart_it(env: ApiEnv, tmp_path: Path) -> None:
    token, _ = await env.key("checkpoints:create,checkpoints:read")
    first = await Agent.start(env, token, tmp_path)
    try:
        cp_id = await first.line("waiting")
        # one card per manager (the user and the group member)
        cards = await env.until(lambda: (found := _cards(env, cp_id)) and len(found) == 2 and found)
        await env.until(lambda: env.api.waiters.waiting)
    finally:
        await first.kill()
    second = await Agent.start(env, token, tmp_path)
    try:
        assert await second.line("waiting") == cp_id, "the restarted agent waits for the same checkpoint"
        await asyncio.sleep(0.5)  # a second card, if one were queued, would be posted by now
        assert len(await env.container.store.list_checkpoints()) == 1
        assert len(_cards(env, cp_id)) == len(cards), "no second Slack card"
        status, _ = await env.slack.send("interaction", env.slack.click(APPROVE, cp_id, MANAGER))
        assert status == 200
        done = json.loads(await second.line("done"))
        assert await asyncio.wait_for(second.proc.wait(), 30) == 0
    finally:
        if second.proc.returncode is None:
            await second.kill()
    assert (done["outcome"], done["sent"]) == ("approved", "We refunded ACME.")
    assert (tmp_path / "sent.txt").read_text().splitlines() == ["We refunded ACME."], (
        "the graph finished once"
    )
    assert len(await env.container.store.list_checkpoints()) == 1
    assert len(_cards(env, cp_id)) == len(cards)


class Replies(TypedDict, total=False):
    outcomes: list[str]
    name: str


async def test_two_checkpoints_in_one_node_and_a_foreign_interrupt_passes_through(env: ApiEnv) -> None:
    token, _ = await env.key("checkpoints:create,checkpoints:read")

    async def both(state: Replies) -> Replies:
        first = await checkpoint(sg, "First?", assignee="role:manager")
        second = await checkpoint(sg, "Second?", assignee="role:manager")
        return {"outcomes": [first.outcome, second.outcome]}

    def ask_name(state: Replies) -> Replies:
        return {"name": interrupt({"question": "Your name?"})}

    graph_def = StateGraph(Replies)
    graph_def.add_node("both", both)
    graph_def.add_node("ask_name", ask_name)
    graph_def.add_edge(START, "both")
    graph_def.add_edge("both", "ask_name")
    graph_def.add_edge("ask_name", END)
    graph = graph_def.compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t-2"}}
    waited: list[list[str]] = []
    async with AsyncSignoff(env.base, token) as sg:
        driving = asyncio.create_task(drive(graph, {}, config, sg, on_waiting=waited.append))
        for action in ("approve", "reject"):
            cp = await env.until(lambda: _open(env))
            await env.container.engine.decide(
                Decide(checkpoint_id=cp.id, action=action, actor=MANAGER, channel="cli")
            )
        driven = await asyncio.wait_for(driving, 30)
    assert not driven.finished
    assert [i.value for i in driven.interrupts] == [{"question": "Your name?"}], (
        "a foreign interrupt passes through"
    )
    assert [len(w) for w in waited] == [1, 1]
    assert waited[0] != waited[1], "each call in the node is its own checkpoint"
    assert [d.outcome for d in driven.decisions.values()] == ["approved", "rejected"]
    cps = await env.container.store.list_checkpoints()
    assert len(cps) == 2, "re-running the node on resume asked nothing twice"
    keys = [(await env.container.store.get_run(cp.run_id)).origin["idempotency_key"] for cp in cps]
    assert sorted(k.rsplit(":", 1)[1] for k in keys) == ["0", "1"]
    assert all(k.startswith("langgraph:t-2:both:") for k in keys), keys
    final = await graph.ainvoke(Command(resume="Mia"), config)
    assert final == {"outcomes": ["approved", "rejected"], "name": "Mia"}


async def _open(env: ApiEnv) -> Any:
    found = [cp for cp in await env.container.store.list_checkpoints() if cp.status.value == "open"]
    return found[0] if found else None


async def test_a_sync_node_with_the_sync_client(env: ApiEnv) -> None:
    token, _ = await env.key("checkpoints:create,checkpoints:read")
    sync_client = await asyncio.to_thread(Signoff, env.base, token)

    def approve(state: Replies) -> Replies:
        decision = checkpoint_sync(sync_client, "Sync node?", assignee="role:manager")
        return {"outcomes": [decision.outcome]}

    graph_def = StateGraph(Replies)
    graph_def.add_node("approve", approve)
    graph_def.add_edge(START, "approve")
    graph_def.add_edge("approve", END)
    graph = graph_def.compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t-sync"}}
    try:
        async with AsyncSignoff(env.base, token) as sg:
            driving = asyncio.create_task(drive(graph, {}, config, sg))
            cp = await env.until(lambda: _open(env))
            await env.container.engine.decide(
                Decide(checkpoint_id=cp.id, action="approve", actor=MANAGER, channel="cli")
            )
            driven = await asyncio.wait_for(driving, 30)
    finally:
        await asyncio.to_thread(sync_client.close)
    assert driven.finished
    assert driven.values == {"outcomes": ["approved"]}
    assert len(await env.container.store.list_checkpoints()) == 1


class Hitl(TypedDict, total=False):
    answer: Any


def _hitl_graph(request: Any) -> Any:
    def review(state: Hitl) -> Hitl:
        return {"answer": interrupt(request)}

    graph_def = StateGraph(Hitl)
    graph_def.add_node("review", review)
    graph_def.add_edge(START, "review")
    graph_def.add_edge("review", END)
    return graph_def.compile(checkpointer=InMemorySaver())


async def _decide_each(env: ApiEnv, commands: list[Decide]) -> None:
    for command in commands:
        cp = await env.until(lambda: _open(env))
        await env.container.engine.decide(command.model_copy(update={"checkpoint_id": cp.id}))


async def test_langchain_human_interrupts_are_asked_in_slack_and_answered_in_their_shape(env: ApiEnv) -> None:
    token, _ = await env.key("checkpoints:create,checkpoints:read")
    request = [
        {
            "action_request": {"action": "run_command", "args": {"command": "rm -rf build"}},
            "config": {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": True},
            "description": "Run this command?",
        }
    ]
    graph = _hitl_graph(request)
    async with AsyncSignoff(env.base, token) as sg:
        alone = await drive(graph, {}, {"configurable": {"thread_id": "h-0"}}, sg)
        assert [i.value for i in alone.interrupts] == [request], "without hitl_assignee it passes through"
        assert await env.container.store.list_checkpoints() == []
        config: Any = {"configurable": {"thread_id": "h-1"}}
        driving = asyncio.create_task(drive(graph, {}, config, sg, hitl_assignee="role:manager"))
        edit = Decide(
            checkpoint_id="",
            action="edit",
            actor=MANAGER,
            channel="cli",
            data={"command": "rm -rf build/tmp"},
        )
        await _decide_each(env, [edit])
        driven = await asyncio.wait_for(driving, 30)
    assert driven.finished
    assert driven.values["answer"] == [
        {"type": "edit", "args": {"action": "run_command", "args": {"command": "rm -rf build/tmp"}}}
    ]
    [cp] = await env.container.store.list_checkpoints()
    assert (cp.prompt, cp.options) == ("Run this command?", ["approve", "reject", "edit"])


async def test_langchain_middleware_requests_get_decisions_back(env: ApiEnv) -> None:
    token, _ = await env.key("checkpoints:create,checkpoints:read")
    request = {
        "action_requests": [
            {"name": "send_email", "args": {"to": "ceo@example.com"}, "description": "Send the email?"},
            {"name": "delete_file", "args": {"path": "/tmp/x"}, "description": "Delete the file?"},
        ],
        "review_configs": [
            {"action_name": "send_email", "allowed_decisions": ["approve", "reject"]},
            {"action_name": "delete_file", "allowed_decisions": ["approve", "edit", "reject"]},
        ],
    }
    config: Any = {"configurable": {"thread_id": "h-2"}}
    async with AsyncSignoff(env.base, token) as sg:
        driving = asyncio.create_task(
            drive(_hitl_graph(request), {}, config, sg, hitl_assignee="role:manager")
        )
        cps = await env.until(lambda: _all_open(env, 2))
        by_prompt = {cp.prompt: cp.id for cp in cps}
        await env.container.engine.decide(
            Decide(checkpoint_id=by_prompt["Send the email?"], action="approve", actor=MANAGER, channel="cli")
        )
        assert not driving.done(), "the interrupt is resumed once every action is decided"
        await env.container.engine.decide(
            Decide(
                checkpoint_id=by_prompt["Delete the file?"],
                action="reject",
                actor=MANAGER,
                channel="cli",
                comment="keep it",
            )
        )
        driven = await asyncio.wait_for(driving, 30)
    assert driven.values["answer"] == {
        "decisions": [{"type": "approve"}, {"type": "reject", "message": "keep it"}]
    }
    options = {cp.prompt: cp.options for cp in cps}
    assert options == {
        "Send the email?": ["approve", "reject"],
        "Delete the file?": ["approve", "reject", "edit"],
    }


async def _all_open(env: ApiEnv, count: int) -> Any:
    found = [cp for cp in await env.container.store.list_checkpoints() if cp.status.value == "open"]
    return found if len(found) == count else None
