"""CLI start-up benchmark: wall time of ``signoff --help`` and ``signoff tasks``, as a person runs them.

    python bench/cli.py               # 7 runs of each; --runs N to change

Each command runs as a fresh ``signoff`` process (the console script next to this Python) in a
temporary folder with a SQLite database holding one waiting run (refund, 250 USD), so ``tasks``
prints a table and a full proposal. Prints one JSON object: for each command the median, min and
max in milliseconds, and for reference the start of a bare ``python -c pass``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SIGNOFF = str(Path(sys.executable).parent / "signoff")


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "SIGNOFF_"))}
    env.update(
        SIGNOFF_DATABASE_URL=f"sqlite:///{workdir / 'signoff.db'}",
        SIGNOFF_WORKFLOWS_DIR=str(workdir / "workflows"),
        SIGNOFF_ROLES_FILE=str(workdir / "roles.yml"),
        SIGNOFF_SKILLS_DIR=str(workdir / "no-skills"),
        COLUMNS="100",
    )
    return env


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - start) * 1000


def _summary(samples: list[float]) -> dict[str, Any]:
    return {
        "median_ms": round(statistics.median(samples), 1),
        "min_ms": round(min(samples), 1),
        "max_ms": round(max(samples), 1),
        "runs": len(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        shutil.copytree(REPO / "workflows", workdir / "workflows")
        shutil.copy(REPO / "roles.yml", workdir / "roles.yml")
        env = _env(workdir)
        subprocess.run(
            [SIGNOFF, "run", "refund", "-i", "customer=ACME", "-i", "amount=250", "--as", "alice"],
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        commands = {
            "python": [sys.executable, "-c", "pass"],
            "help": [SIGNOFF, "--help"],
            "tasks": [SIGNOFF, "tasks"],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        _timed(commands["tasks"], env, workdir)  # warm: byte-code compiled, page cache filled
        for _ in range(args.runs):  # interleaved, so a busy moment weighs on every command alike
            for name, argv in commands.items():
                samples[name].append(_timed(argv, env, workdir))
    print(json.dumps({name: _summary(found) for name, found in samples.items()}, indent=2))


if __name__ == "__main__":
    main()
