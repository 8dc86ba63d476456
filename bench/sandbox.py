"""Start-up overhead of one sandboxed ``code`` step: run ``true`` N times per backend.

Usage: ``python bench/sandbox.py --json [-n 50]``. Docker is measured when DOCKER_HOST is set
(``.ci/sandbox-setup.sh`` prints it) and the engine has SIGNOFF_TEST_DOCKER_IMAGE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.ports import Sandbox, SandboxRequest
from skills.sandbox import BwrapSandbox, DockerSandbox, SubprocessSandbox

IMAGE = os.environ.get("SIGNOFF_TEST_DOCKER_IMAGE", "localhost/signoff-busybox:1")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _measure(backend: Sandbox, n: int) -> dict[str, float]:
    samples = []
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        for i in range(n + 1):
            start = time.perf_counter()
            res = await backend.run(SandboxRequest(command=["true"]), Path(tmp) / f"ws{i}")
            if res.exit_code != 0:
                raise SystemExit(f"{backend.name}: `true` failed: {res.stderr}")
            if i:  # the first run warms caches (page cache, image layers)
                samples.append((time.perf_counter() - start) * 1000)
    return {
        "n": n,
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(_percentile(samples, 0.99), 2),
        "mean_ms": round(statistics.fmean(samples), 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-n", type=int, default=50)
    args = parser.parse_args()
    backends: list[Sandbox] = [BwrapSandbox(), SubprocessSandbox()]
    if os.environ.get("DOCKER_HOST"):
        backends.append(DockerSandbox(IMAGE))
    out: dict[str, object] = {"benchmark": "sandbox start-up overhead per code step (`true`)"}
    for backend in backends:
        out[backend.name] = await _measure(backend, args.n)
    if "docker" not in out:
        out["docker"] = "skipped: DOCKER_HOST not set"
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    asyncio.run(main())
