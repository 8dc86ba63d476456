"""Operator controls over the HTTP API (issue 14): pause, resume and rerun a run with a key bound
to its requester; a paused run takes the manager's decision and waits for resume."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.blocks.checkpoint import APPROVE
from tests.e2e.api_harness import ApiEnv, api_env
from tests.scenario._harness import MANAGER, REQUESTER


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path, f"sqlite:///{tmp_path}/s.db") as running:
        yield running


async def test_pause_resume_and_rerun_over_http(env: ApiEnv) -> None:
    token, _ = await env.key("runs:write,runs:read", as_user=REQUESTER, name="req")
    start = {"workflow": "refund", "inputs": {"customer": "ACME", "amount": 120}, "key": "k1"}
    status, run, _ = await env.call("POST", "/api/v1/runs", token, start)
    assert status == 201, run
    run_path = f"/api/v1/runs/{run['id']}"

    async def waiting() -> list[str]:
        _, current, _ = await env.call("GET", run_path, token)
        return list(current["open_checkpoints"])

    [cp_id] = await env.until(waiting)
    other, _ = await env.key("runs:write,runs:read", name="other")
    status, problem, _ = await env.call("POST", f"{run_path}/pause", other)
    assert (status, problem["code"]) == (403, "not_allowed")
    status, paused, _ = await env.call("POST", f"{run_path}/pause", token, {"reason": "checking"})
    assert (status, paused["paused_by"]) == (200, REQUESTER)
    status, problem, _ = await env.call("POST", f"{run_path}/pause", token)
    assert status == 409

    await env.slack.send("interaction", env.slack.click(APPROVE, cp_id, MANAGER))

    async def decided() -> bool:
        cp = await env.container.store.get_checkpoint(cp_id)
        return cp.status.value == "resolved"

    await env.until(decided)
    _, held, _ = await env.call("GET", run_path, token)
    assert held["status"] not in {"succeeded", "failed"}
    assert held["paused_by"] == REQUESTER

    status, resumed, _ = await env.call("POST", f"{run_path}/resume", token)
    assert (status, resumed["paused_by"]) == (200, None)
    status, result, _ = await env.call("GET", f"{run_path}/result?wait=25", token)
    assert (status, result["run"]["status"]) == (200, "succeeded")

    status, problem, _ = await env.call("POST", f"{run_path}/rerun", token, {"from": "nope"})
    assert (status, problem["code"]) == (400, "validation_failed")
    # the run succeeded: the manager's approval was carried out; reusing it would do it again
    status, problem, _ = await env.call("POST", f"{run_path}/rerun", token, {"from": "send"})
    assert status == 409, problem
    assert "--reask" in problem["detail"]
    status, rerun, _ = await env.call("POST", f"{run_path}/rerun", token, {"from": "send", "reask": True})
    assert status == 201, rerun
    assert rerun["rerun_of"] == run["id"]

    async def asked_again() -> list[str]:
        _, current, _ = await env.call("GET", f"/api/v1/runs/{rerun['id']}", token)
        return list(current["open_checkpoints"])

    assert await env.until(asked_again), "the manager is asked again"
