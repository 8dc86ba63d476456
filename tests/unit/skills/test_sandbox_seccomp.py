"""bwrap's seccomp filter: the denied system calls fail with EPERM inside, the rest works.

The probe calls each system call through libc ``syscall()`` with arguments the kernel itself
would refuse with some other error (or accept): only the filter answers EPERM.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyseccomp
import pytest

import skills.sandbox
from engine.errors import EngineError
from engine.ports import SandboxRequest
from skills.sandbox import BwrapSandbox, choose_sandbox

REQUIRED = ("ptrace", "mount", "keyctl", "bpf", "userfaultfd", "perf_event_open")

PROBE = """
import ctypes, errno, json, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
args = {
    "ptrace": (0, 0, 0, 0),             # PTRACE_TRACEME: allowed for anyone
    "mount": (1, 1, 1, 0, 0),           # bad pointers: EFAULT before any permission check
    "keyctl": (9999, 0, 0, 0, 0),       # unknown operation: EOPNOTSUPP
    "bpf": (9999, 0, 0),                # unknown command: EINVAL
    "userfaultfd": (0xFFFF,),           # unknown flags: EINVAL
    "perf_event_open": (0, 0, -1, -1, 0),  # NULL attr: EFAULT
    "unshare": (0x10000000,),           # CLONE_NEWUSER
}
out = {}
for name, nr in json.loads(sys.argv[1]).items():
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args[name]])
    out[name] = "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
status = [line.split()[1] for line in open("/proc/self/status") if line.startswith("Seccomp:")]
out["Seccomp"] = status[0]
print(json.dumps(out))
"""


def _numbers() -> str:
    names = (*REQUIRED, "unshare")
    return json.dumps({n: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, n) for n in names})


async def _probe(backend: BwrapSandbox, workspace: Path) -> dict[str, str]:
    request = SandboxRequest(command=["/usr/bin/python3", "-c", PROBE, _numbers()])
    res = await backend.run(request, workspace)
    assert res.exit_code == 0, res.stderr
    result: dict[str, str] = json.loads(res.stdout)
    return result


async def test_each_denied_call_fails_with_eperm(bwrap_sandbox: BwrapSandbox, workspace: Path) -> None:
    seen = await _probe(bwrap_sandbox, workspace)
    assert seen == {**dict.fromkeys(REQUIRED, "EPERM"), "unshare": "EPERM", "Seccomp": "2"}


async def test_without_the_filter_the_same_calls_reach_the_kernel(workspace: Path) -> None:
    # the control: with SIGNOFF_SANDBOX_SECCOMP=off no call is refused by a filter
    seen = await _probe(BwrapSandbox(seccomp=False), workspace)
    assert seen["Seccomp"] == "0"
    assert seen["ptrace"] == "ok"
    assert seen["mount"] == "EFAULT"
    assert seen["perf_event_open"] == "EFAULT"


async def test_ordinary_commands_still_work(bwrap_sandbox: BwrapSandbox, workspace: Path) -> None:
    script = (
        "import subprocess, threading, json\n"
        "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"  # clone3 -> clone fallback
        "out = subprocess.run(['sh', '-c', 'echo a | tr a b'], capture_output=True, text=True).stdout\n"
        "print(json.dumps({'sub': out.strip()}))\n"
    )
    cmd = f'python3 -c "{script}" && mkdir -p d && tar -cf x.tar d && ls -la / >/dev/null && echo done'
    res = await bwrap_sandbox.run(SandboxRequest(command=cmd), workspace)
    assert res.exit_code == 0, res.stderr
    assert res.stdout.splitlines() == ['{"sub": "b"}', "done"]


def test_a_missing_libseccomp_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # as on a machine without it
    with pytest.raises(EngineError, match=r"cannot build the seccomp filter.*SIGNOFF_SANDBOX_SECCOMP=off"):
        BwrapSandbox()
    skills.sandbox._bwrap_problem.cache_clear()
    try:
        with pytest.raises(EngineError, match="bubblewrap does not work here: cannot build the seccomp"):
            choose_sandbox("bwrap")
        monkeypatch.setenv("SIGNOFF_SANDBOX_SECCOMP", "off")
        assert isinstance(choose_sandbox("bwrap"), BwrapSandbox)
    finally:
        skills.sandbox._bwrap_problem.cache_clear()


def test_the_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_SANDBOX_SECCOMP", "maybe")
    with pytest.raises(EngineError, match="SIGNOFF_SANDBOX_SECCOMP='maybe' must be on"):
        choose_sandbox("auto")
