"""The API's contract: every route in the OpenAPI document, problems for every error, auth and
scopes, body limits, runs over HTTP with keyset pagination."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.api._openapi import OPENAPI_PATH
from bot.blocks.checkpoint import APPROVE
from tests.e2e.api_harness import ApiEnv, api_env, ask_body
from tests.scenario._harness import MANAGER, REQUESTER


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path, f"sqlite:///{tmp_path}/s.db") as running:
        yield running


async def test_every_api_route_is_in_the_openapi_document(env: ApiEnv) -> None:
    async with env.http.get(env.base + OPENAPI_PATH) as response:
        assert response.status == 200
        doc = await response.json()
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = {
        (route.method, route.resource.canonical)
        for route in env.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1/")
        and route.method != "HEAD"
        and route.name != "api.unknown"
    }
    assert len(served) > 15
    missing = served - documented
    assert not missing, f"routes missing from the OpenAPI document: {sorted(missing)}"
    assert documented - served == set(), "documented routes that are not served"
    create = doc["paths"]["/api/v1/checkpoints"]["post"]
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = doc["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert body_schema["additionalProperties"] is False, "unknown fields are refused, as documented"


async def test_auth_scopes_and_problems(env: ApiEnv) -> None:
    status, problem, headers = await env.call("GET", "/api/v1/checkpoints", None)
    assert (status, problem["code"]) == (401, "unauthenticated")
    assert headers["Content-Type"].startswith("application/problem+json")
    assert headers["WWW-Authenticate"].startswith("Bearer")
    token, _ = await env.key("checkpoints:read")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert (await env.call("GET", "/api/v1/checkpoints", forged))[0] == 401
    assert (await env.call("GET", "/api/v1/checkpoints", "so_key_nope.secret"))[0] == 401
    status, problem, _ = await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="x"))
    assert (status, problem["code"], problem["rule"]) == (403, "insufficient_scope", "checkpoints:create")
    status, problem, _ = await env.call("GET", "/api/v1/checkpoints/cp_missing", token)
    assert (status, problem["code"]) == (404, "not_found")
    status, problem, _ = await env.call("GET", "/api/v1/nothing/here", token)
    assert (status, problem["code"]) == (404, "not_found")
    status, problem, headers = await env.call("DELETE", "/api/v1/checkpoints", token)
    assert (status, problem["code"]) == (405, "method_not_allowed")
    assert "GET" in headers["Allow"]
    status, problem, _ = await env.call("GET", "/api/v1/checkpoints?status=closed&bogus=1", token)
    assert (status, problem["code"]) == (400, "validation_failed")
    assert {e["field"] for e in problem["errors"]} == {"status", "bogus"}
    c = env.container
    assert c.clients is not None
    [key] = await c.clients.list_api_keys()
    await c.clients.revoke_api_key(key.id, c.clock.now(), [])
    status, problem, _ = await env.call("GET", "/api/v1/checkpoints", token)
    assert (status, problem["detail"]) == (401, "this API key was revoked")


async def test_bodies_too_large_malformed_or_not_json(env: ApiEnv) -> None:
    token, _ = await env.key("checkpoints:create")
    url = env.base + "/api/v1/checkpoints"
    auth = {"Authorization": f"Bearer {token}", "Idempotency-Key": "big"}
    huge = json.dumps(ask_body(show={"blob": "x" * (1024 * 1024)}))
    async with env.http.post(url, data=huge, headers={**auth, "Content-Type": "application/json"}) as r:
        assert r.status == 413
        assert (await r.json())["code"] == "payload_too_large"
    for raw, ctype, code in [
        ("{not json", "application/json", "invalid_json"),
        ("[1, 2]", "application/json", "invalid_json"),
        ('{"prompt": NaN}', "application/json", "invalid_json"),
        ('{"prompt": "a\\u0000b", "assignee": "user:U1"}', "application/json", "invalid_json"),
        ("prompt=x", "application/x-www-form-urlencoded", "unsupported_media_type"),
    ]:
        async with env.http.post(url, data=raw, headers={**auth, "Content-Type": ctype}) as r:
            body = await r.json(content_type=None)
            assert (r.status in {400, 415}, body["code"]) == (True, code), raw
    assert await env.container.store.list_checkpoints() == []


async def test_runs_over_http_idempotent_waited_for_and_paged(env: ApiEnv) -> None:
    token, _ = await env.key("runs:write,runs:read", as_user=REQUESTER, name="req")
    start = {"workflow": "refund", "inputs": {"customer": "ACME", "amount": 120}}
    status, run, _ = await env.call("POST", "/api/v1/runs", token, start, {"Idempotency-Key": "r1"})
    assert status == 201, run
    assert run["requester"] == REQUESTER
    again = await env.call("POST", "/api/v1/runs", token, start, {"Idempotency-Key": "r1"})
    assert (again[0], again[1]["id"], again[2]["Idempotent-Replayed"]) == (200, run["id"], "true")
    bad = {"workflow": "refund", "inputs": {"customer": "ACME", "amount": -5}}
    status, problem, _ = await env.call("POST", "/api/v1/runs", token, bad, {"Idempotency-Key": "r2"})
    assert (status, [e["field"] for e in problem["errors"]]) == (400, ["inputs.amount"])
    status, problem, _ = await env.call(
        "POST", "/api/v1/runs", token, {"workflow": "refnd"}, {"Idempotency-Key": "r3"}
    )
    assert (status, problem["errors"][0]["field"]) == (400, "workflow")
    status, pending, _ = await env.call("GET", f"/api/v1/runs/{run['id']}/result?wait=1", token)
    assert (status, pending["id"]) == (202, run["id"])

    async def waiting() -> list[str]:
        _, current, _ = await env.call("GET", f"/api/v1/runs/{run['id']}", token)
        return list(current["open_checkpoints"])

    [cp_id] = await env.until(waiting)
    await env.slack.send("interaction", env.slack.click(APPROVE, cp_id, MANAGER))
    status, result, _ = await env.call("GET", f"/api/v1/runs/{run['id']}/result?wait=25", token)
    assert status == 200, result
    assert result["run"]["status"] == "succeeded"
    assert result["decisions"][0]["outcome"] == "approved"
    assert "send" in result["outputs"]
    for n in range(3):
        await env.call("POST", "/api/v1/runs", token, {**start, "key": f"more{n}"})
    seen: list[str] = []
    cursor = None
    while True:
        path = "/api/v1/runs?limit=2&workflow=refund" + (f"&cursor={cursor}" if cursor else "")
        status, page, _ = await env.call("GET", path, token)
        assert status == 200
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 4
    assert seen[-1] == run["id"], "newest first"
    status, problem, _ = await env.call("GET", "/api/v1/runs?cursor=bm9wZQ", token)
    assert (status, problem["errors"][0]["field"]) == (400, "cursor")
    other, _ = await env.key("runs:write,runs:read", name="other")
    status, problem, _ = await env.call("POST", f"/api/v1/runs/{seen[0]}/cancel", other)
    assert (status, problem["code"]) == (403, "not_allowed")
    status, cancelled, _ = await env.call("POST", f"/api/v1/runs/{seen[0]}/cancel", token, {"reason": "dup"})
    assert (status, cancelled["status"], cancelled["reason"]) == (200, "cancelled", "dup")


async def test_checkpoints_listing_by_assignee(env: ApiEnv) -> None:
    token, _ = await env.key("checkpoints:create,checkpoints:read")
    await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="a"))
    await env.call("POST", "/api/v1/checkpoints", token, ask_body(key="b", assignee=f"user:{MANAGER}"))
    status, page, _ = await env.call("GET", f"/api/v1/checkpoints?assignee={MANAGER}", token)
    assert status == 200
    assert [cp["assignees"] for cp in page["items"]] == [[f"user:{MANAGER}"]]
    status, page, _ = await env.call("GET", "/api/v1/checkpoints?assignee=role:manager&status=all", token)
    assert len(page["items"]) == 1


async def test_the_console_middlewares_do_not_touch_the_api(env: ApiEnv) -> None:
    token, _ = await env.key("checkpoints:create")
    headers = {
        "Authorization": f"Bearer {token}",
        "Origin": "https://elsewhere.example",
        "Idempotency-Key": "o",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(env.base + "/api/v1/checkpoints", json=ask_body(), headers=headers) as response,
    ):
        assert response.status == 201, "keys authenticate the API, not cookies: no Origin check"


ASKS_REQUESTER = """\
id: address
inputs: {type: object, properties: {}}
nodes:
  - id: where
    type: human
    kind: input
    prompt: "Where should we ship it?"
    response_schema: {type: object, properties: {street: {type: string}}, required: [street]}
"""


async def test_an_agent_cannot_start_a_workflow_that_asks_its_requester(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "address.yml").write_text(ASKS_REQUESTER, encoding="utf-8")
    async with api_env(tmp_path, f"sqlite:///{tmp_path}/s.db") as env:
        agent, _ = await env.key("runs:write,runs:read")
        status, problem, _ = await env.call(
            "POST", "/api/v1/runs", agent, {"workflow": "address", "key": "a"}
        )
        assert (status, problem["errors"][0]["field"]) == (400, "workflow")
        assert "--as-user" in problem["detail"]
        person, _ = await env.key("runs:write,runs:read", as_user=REQUESTER, name="person")
        status, run, _ = await env.call("POST", "/api/v1/runs", person, {"workflow": "address", "key": "a"})
        assert status == 201, run


async def test_an_endpoint_gets_only_what_its_key_may_read(env: ApiEnv) -> None:
    manage_only, _ = await env.key("webhooks:manage")
    body = {"url": env.receiver.at("x"), "events": ["checkpoint.decided"]}
    status, problem, _ = await env.call("POST", "/api/v1/webhook-endpoints", manage_only, body)
    assert (status, problem["code"], problem["rule"]) == (403, "insufficient_scope", "checkpoints:read")
    runs_too = {"url": env.receiver.at("x"), "events": ["run.finished"]}
    status, problem, _ = await env.call("POST", "/api/v1/webhook-endpoints", manage_only, runs_too)
    assert (status, problem["rule"]) == (403, "runs:read")
