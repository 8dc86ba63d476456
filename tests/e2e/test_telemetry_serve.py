"""``signoff serve`` as a real process: JSON log lines with the ids, and ``/metrics`` whose gauges
follow the database, whichever process changed it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e._process import SIGNOFF, cli, cli_json, env_for, free_port, kill, wait_healthy
from tests.e2e.test_api_serve_cli import ROLES, _http


def _metrics(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_serve_logs_json_lines_and_counts_what_the_database_holds(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "roles.yml").write_text(ROLES, encoding="utf-8")
    port = free_port()
    env = env_for(database_url, tmp_path, port)
    token = cli_json(env, tmp_path, "keys", "create", "--name", "bot", "--scopes", "checkpoints:create")[
        "key"
    ]
    log = tmp_path / "server.log"
    with log.open("wb") as out:  # not a terminal: JSON lines
        server = subprocess.Popen(
            [SIGNOFF, "serve"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(port, server)
        ask = {"key": "deploy-7", "prompt": "Deploy 7?", "assignee": "role:approvers"}
        status, cp = _http("POST", f"http://127.0.0.1:{port}/api/v1/checkpoints", token, ask)
        assert status == 201, cp
        opened: tuple[str, frozenset[tuple[str, str]]] = ("signoff_checkpoints_open", frozenset())
        counted = _until(lambda: (m := _metrics(port)).get(opened) == 1 and m)
        assert counted[("signoff_runs_started_total", frozenset({("workflow", "api-ask")}))] == 1
        # another process decides: the gauges, read from the database, see it at once
        cli(env, tmp_path, "respond", cp["id"], "approve", "--as", "mia")
        assert _metrics(port)[opened] == 0
    finally:
        kill(server, signal.SIGTERM)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"timestamp", "level", "logger", "event"} <= set(lines[0])
    events = {line["event"]: line for line in lines if line["logger"] == "signoff.engine.events"}
    run_id = events["run started"]["run_id"]
    assert events["run started"]["workflow"] == "api-ask"
    assert events["checkpoint opened"]["run_id"] == run_id
    assert events["checkpoint opened"]["checkpoint_id"] == cp["id"]
    assert any("listening on" in line["event"] for line in lines)
    assert token not in log.read_text()
