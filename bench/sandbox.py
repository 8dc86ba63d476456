"""Start-up overhead of one sandboxed ``code`` step: run ``true`` N times per backend.

Usage: ``python bench/sandbox.py --json [-n 50]``. Docker is measured when DOCKER_HOST is set
(``.ci/sandbox-setup.sh`` prints it) and the engine has SIGNOFF_TEST_DOCKER_IMAGE. bwrap is
measured with its seccomp filter (the default) and without it (``bwrap_no_seccomp``), in
alternating rounds so that a busy host weighs on both alike.
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


async def _sample(backend: Sandbox, n: int) -> list[float]:
    samples = []
    with tempfile.TemporaryDirectory(prefix="signoff-bench-") as tmp:
        for i in range(n + 1):
            start = time.perf_counter()
            res = await backend.run(SandboxRequest(command=["true"]), Path(tmp) / f"ws{i}")
            if res.exit_code != 0:
                raise SystemExit(f"{backend.name}: `true` failed: {res.stderr}")
            if i:  # the first run warms caches (page cache, image layers)
                samples.append((time.perf_counter() - start) * 1000)
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    n = len(samples)
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
    backends: dict[str, Sandbox] = {
        "bwrap": BwrapSandbox(),
        "bwrap_no_seccomp": BwrapSandbox(seccomp=False),
        "subprocess": SubprocessSandbox(),
    }
    if os.environ.get("DOCKER_HOST"):
        backends["docker"] = DockerSandbox(IMAGE)
    out: dict[str, object] = {"benchmark": "sandbox start-up overhead per code step (`true`)"}
    samples: dict[str, list[float]] = {name: [] for name in backends}
    rounds = 5
    for _ in range(rounds):
        for name, backend in backends.items():
            samples[name] += await _sample(backend, max(1, args.n // rounds))
    for name, values in samples.items():
        out[name] = _summary(values)
    if "docker" not in out:
        out["docker"] = "skipped: DOCKER_HOST not set"
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    asyncio.run(main())
