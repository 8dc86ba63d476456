"""``signoff serve`` with the API, keys made with ``signoff keys``, a decision made by
``signoff respond`` in another process: the agent's long poll gets it."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e._process import cli, cli_json, env_for, free_port, kill, start_server, wait_healthy

ROLES = "approvers:\n  members: [user:mia]\n"


def _http(method: str, url: str, token: str, body: Any = None, timeout: float = 40) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback only
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_keys_serve_ask_respond_and_wait(tmp_path: Path, database_url: str) -> None:
    """Three OS processes: the server, the CLI that decides, the agent that waits (on PostgreSQL
    the server hears of the CLI's decision through LISTEN/NOTIFY)."""
    (tmp_path / "workflows").mkdir()
    (tmp_path / "roles.yml").write_text(ROLES, encoding="utf-8")
    port = free_port()
    env = env_for(database_url, tmp_path, port)
    made = cli_json(
        env,
        tmp_path,
        "keys",
        "create",
        "--name",
        "deploy-bot",
        "--scopes",
        "checkpoints:create,checkpoints:read",
    )
    token = made["key"]
    assert token.startswith("so_key_")
    assert made["webhook_secret"].startswith("whsec_")
    listed = cli(env, tmp_path, "keys", "list", "--json").stdout
    assert token not in listed, "a key is shown once, never listed"
    assert token.split(".")[1] not in listed
    refused = cli(env, tmp_path, "keys", "create", "--name", "x", "--scopes", "checkpoints:decide", check=2)
    assert "--as-user" in refused.stderr
    assert (
        "unknown scope"
        in cli(env, tmp_path, "keys", "create", "--name", "x", "--scopes", "all", check=2).stderr
    )
    server = start_server(env, tmp_path)
    try:
        wait_healthy(port, server)
        base = f"http://127.0.0.1:{port}/api/v1"
        ask = {
            "key": "deploy-42",
            "prompt": "Deploy 42?",
            "assignee": "role:approvers",
            "show": {"build": 42},
        }
        status, cp = _http("POST", f"{base}/checkpoints", token, ask)
        assert status == 201, cp
        waiter = subprocess.Popen(  # the agent waits in its own process
            [
                "python3",
                "-c",
                "import sys, urllib.request; r = urllib.request.Request(sys.argv[1]);"
                "r.add_header('Authorization', 'Bearer ' + sys.argv[2]);"
                "print(urllib.request.urlopen(r, timeout=60).read().decode())",
                f"{base}/checkpoints/{cp['id']}/decision?wait=25",
                token,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        cli(env, tmp_path, "respond", cp["id"], "approve", "--as", "mia", "--comment", "ship it")
        out, _ = waiter.communicate(timeout=60)
        decision = json.loads(out)
        assert (decision["outcome"], decision["actor"]["id"], decision["channel"]) == (
            "approved",
            "mia",
            "cli",
        )
        assert decision["comment"] == "ship it"
        [key] = cli_json(env, tmp_path, "keys", "list")
        cli(env, tmp_path, "keys", "revoke", key["id"])
        status, problem = _http("GET", f"{base}/checkpoints/{cp['id']}", token)
        assert (status, problem["code"]) == (401, "unauthenticated")
    finally:
        kill(server)
