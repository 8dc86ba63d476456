"""The MCP server, driven by the ``mcp`` package's own client: over streamable HTTP at ``/mcp``
on the real server, and over stdio as ``signoff mcp`` in its own process."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from bot.blocks.checkpoint import APPROVE
from engine.commands import Decide
from tests.e2e.api_harness import ApiEnv, api_env
from tests.scenario._harness import MANAGER

ASK = "checkpoints:create,checkpoints:read"
SIGNOFF = str(Path(sys.executable).parent / "signoff")


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path, database_url, mcp_wait_s=1.0) as running:
        yield running


def _http_client(env: ApiEnv, token: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return Client(streamable_http_client(env.base + "/mcp", http_client=http))


def _result(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def _decide_when_open(env: ApiEnv, action: str = "approve") -> str:
    cps = await env.until(lambda: env.container.store.list_checkpoints())
    await env.slack.send("interaction", env.slack.click(APPROVE, cps[0].id, MANAGER))
    return str(cps[0].id)


async def test_http_ask_human_returns_the_decision_when_it_comes_in_time(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    async with _http_client(env, token) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"ask_human", "get_decision"}
        assert {"prompt", "key", "show", "response_schema", "assignee", "timeout"} <= set(
            tools["ask_human"].input_schema["properties"]
        )
        args = {"prompt": "Deploy 42?", "key": "deploy-42", "assignee": "role:manager", "show": {"build": 42}}
        calling = asyncio.create_task(client.call_tool("ask_human", args))
        await env.until(lambda: env.api.waiters.waiting)
        cp_id = await _decide_when_open(env)
        got = _result(await asyncio.wait_for(calling, 30))
    assert (got["status"], got["checkpoint_id"], got["outcome"]) == ("decided", cp_id, "approved")
    assert (got["actor"]["id"], got["resolved_by"], got["channel"]) == (MANAGER, "human", "slack")


async def test_http_pending_then_get_decision_and_the_same_key_is_the_same_checkpoint(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    async with _http_client(env, token) as client:
        args = {
            "prompt": "Refund?",
            "key": "refund-7",
            "assignee": "role:manager",
            "response_schema": {
                "type": "object",
                "properties": {"amount": {"type": "number"}},
                "required": ["amount"],
            },
        }
        pending = _result(await client.call_tool("ask_human", args))
        assert pending["status"] == "pending"
        again = _result(await client.call_tool("ask_human", args))
        assert again["checkpoint_id"] == pending["checkpoint_id"], "same key, same checkpoint"
        assert len(await env.container.store.list_checkpoints()) == 1
        edit = Decide(
            checkpoint_id=pending["checkpoint_id"],
            action="edit",
            actor=MANAGER,
            channel="cli",
            data={"amount": 30},
        )
        await env.container.engine.decide(edit)
        got = _result(
            await client.call_tool("get_decision", {"checkpoint_id": pending["checkpoint_id"], "wait": 0})
        )
    assert (got["status"], got["outcome"], got["data"]) == ("decided", "edited", {"amount": 30})


async def test_http_errors_are_tool_errors_and_the_endpoint_needs_a_key(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    async with _http_client(env, token) as client:
        refused = await client.call_tool("ask_human", {"prompt": "x", "key": "k", "assignee": "role:nobody"})
        assert refused.is_error
        assert "validation_failed" in json.dumps([c.model_dump() for c in refused.content])
        missing = await client.call_tool("get_decision", {"checkpoint_id": "cp_nope", "wait": 0})
        assert missing.is_error
        assert "not_found" in json.dumps([c.model_dump() for c in missing.content])
    async with env.http.post(
        env.base + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    ) as r:
        assert r.status == 401
        assert (await r.json())["code"] == "unauthenticated"
    headers = {"Authorization": "Bearer so_key_x.y"}
    async with env.http.post(env.base + "/mcp/", json={}, headers=headers) as r:
        assert r.status == 401


async def test_http_an_agents_key_cannot_decide_through_mcp(env: ApiEnv) -> None:
    """The tools have the rights of the caller's key: reading is all a read-only key can do."""
    reader, _ = await env.key("checkpoints:read")
    async with _http_client(env, reader) as client:
        refused = await client.call_tool("ask_human", {"prompt": "x", "key": "k", "assignee": "role:manager"})
    assert refused.is_error
    assert "insufficient_scope" in json.dumps([c.model_dump() for c in refused.content])
    assert await env.container.store.list_checkpoints() == []


async def test_stdio_signoff_mcp_asks_and_waits(env: ApiEnv) -> None:
    token, _ = await env.key(ASK)
    params = StdioServerParameters(
        command=SIGNOFF,
        args=["mcp"],
        env={
            "SIGNOFF_URL": env.base,
            "SIGNOFF_API_KEY": token,
            "SIGNOFF_MCP_WAIT": "1",
            "SIGNOFF_MCP_ASSIGNEE": "role:manager",
        },
    )
    async with Client(params) as client:
        pending = _result(await client.call_tool("ask_human", {"prompt": "Merge PR 12?", "key": "pr-12"}))
        assert pending["status"] == "pending"
        cp_id = await _decide_when_open(env)
        assert pending["checkpoint_id"] == cp_id
        got = _result(await client.call_tool("get_decision", {"checkpoint_id": cp_id, "wait": 1}))
    assert (got["status"], got["outcome"], got["actor"]["id"]) == ("decided", "approved", MANAGER)
    cp = await env.container.store.get_checkpoint(cp_id)
    assert cp.assignees == ["role:manager"]
