"""``engine.faults``: unarmed points do nothing; an armed point kills the process at its n-th hit."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from engine import faults


def test_unarmed_points_do_nothing() -> None:
    faults.configure(None)
    for point in faults.POINTS:
        faults.fault(point)


def test_parse_counts_and_refuses_unknown_points() -> None:
    assert faults.parse("after_step_commit:3, during_deadline") == {
        "after_step_commit": 3,
        "during_deadline": 1,
    }
    assert faults.parse("") == {}
    with pytest.raises(ValueError, match="unknown fault point 'nope'"):
        faults.parse("nope")
    with pytest.raises(ValueError, match="1 or more"):
        faults.parse("after_step_commit:0")


def test_armed_point_sends_sigkill_at_its_nth_hit() -> None:
    code = (
        "from engine import faults\n"
        "faults.configure('after_step_commit:3')\n"
        "for i in range(5):\n"
        "    print(i, flush=True)\n"
        "    faults.fault('during_deadline')\n"
        "    faults.fault('after_step_commit')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["0", "1", "2"]
