"""The console's live script (bot/web/static/live.js), run by Node against fakes of the browser
objects it uses: which stream it opens, which events make it fetch the page again, and that it
replaces ``<main>`` (a stale form) and reloads the graph image."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
LIVE_JS = REPO / "bot" / "web" / "static" / "live.js"
HARNESS = Path(__file__).parent / "js" / "live_harness.js"
NEW_PAGE = '<main id="main">decided by mia</main>'


def _run(main: dict[str, str], events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "Node.js runs the console script's tests (make sysdeps installs it)"
    scenario = {"main": main, "events": events, "page": NEW_PAGE}
    done = subprocess.run(
        [node, str(HARNESS), str(LIVE_JS), json.dumps(scenario)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def test_the_run_page_follows_its_run_and_reloads_main_and_graph() -> None:
    main = {"data-live-run": "run_1", "data-live-after": "7", "data-live-page": "/runs/run_1"}
    out = _run(main, [("node.succeeded", {"run_id": "run_1", "node": "draft"})])
    assert out["sources"] == ["/events?run=run_1&after=7"]
    assert out["fetched"] == ["/runs/run_1"]
    assert out["children"] == [NEW_PAGE]
    assert out["graph"].startswith("/runs/run_1/graph.svg?t=")


def test_the_checkpoint_page_replaces_its_form_only_for_its_own_changes() -> None:
    main = {
        "data-live-run": "run_1",
        "data-live-checkpoint": "cp_1",
        "data-live-after": "3",
        "data-live-page": "/checkpoints/cp_1",
    }
    out = _run(
        main,
        [
            ("checkpoint.decided", {"run_id": "run_1", "checkpoint_id": "cp_2"}),
            ("node.succeeded", {"run_id": "run_1", "node": "draft"}),
            ("checkpoint.decided", {"run_id": "run_1", "checkpoint_id": "cp_1"}),
            ("run.finished", {"run_id": "run_1", "status": "succeeded"}),
        ],
    )
    assert out["fetchesAfter"] == [0, 0, 1, 2]
    assert out["fetched"] == ["/checkpoints/cp_1", "/checkpoints/cp_1"]
    assert out["children"] == [NEW_PAGE]  # the stale form is gone


def test_the_inbox_follows_every_runs_checkpoints() -> None:
    main = {"data-live-all": "", "data-live-after": "12", "data-live-page": "/inbox"}
    out = _run(
        main,
        [
            ("node.succeeded", {"run_id": "run_9", "node": "draft"}),
            ("checkpoint.opened", {"run_id": "run_9", "checkpoint_id": "cp_9"}),
        ],
    )
    assert out["sources"] == ["/events?after=12"]
    assert out["fetchesAfter"] == [0, 1]


def test_other_pages_open_no_stream() -> None:
    out = _run({}, [("checkpoint.opened", {"run_id": "run_1"})])
    assert out["sources"] == []
    assert out["fetched"] == []
    assert out["children"] == ["the page as it was"]
