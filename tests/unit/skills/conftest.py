"""Sandbox fixtures: real bubblewrap, and Podman's Docker-compatible API with a busybox image.

The docker backend is tested against ``DOCKER_HOST`` when it is set (``.ci/sandbox-setup.sh``
prints it); otherwise this module starts ``podman system service`` on a temporary socket for
the session and stops it at the end. A missing podman fails the docker tests, never skips them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from engine.ports import Sandbox
from skills.sandbox import BwrapSandbox, DockerSandbox

IMAGE = os.environ.get("SIGNOFF_TEST_DOCKER_IMAGE", "localhost/signoff-busybox:1")
INSTALL = (
    "run `.ci/sandbox-setup.sh` (or: apt-get install -y bubblewrap podman runc busybox-static) "
    "and export the DOCKER_HOST it prints"
)
_PODMAN = ["podman", "--runtime=runc", "--storage-driver=vfs", "--cgroup-manager=cgroupfs"]


@dataclass(frozen=True)
class Engine:
    """A Docker-compatible engine the tests may use."""

    url: str
    image: str


def _podman(conf: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    return subprocess.run([*_PODMAN, *args], env=env, capture_output=True, check=check, timeout=120)


def _import_busybox(conf: Path, tmp: Path) -> None:
    if _podman(conf, "image", "exists", IMAGE, check=False).returncode == 0:
        return
    busybox = shutil.which("busybox", path="/bin:/usr/bin")
    if busybox is None:
        pytest.fail(f"busybox is not installed; {INSTALL}")
    bindir = tmp / "rootfs" / "bin"
    bindir.mkdir(parents=True)
    shutil.copy(busybox, bindir / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (bindir / applet).symlink_to("busybox")
    for folder in ("tmp", "workspace", "skill"):
        (tmp / "rootfs" / folder).mkdir()
    # podman's API drops a tmpfs `mode=`, but copies the mode of the image's own /tmp
    (tmp / "rootfs" / "tmp").chmod(0o1777)
    subprocess.run(["tar", "-C", str(tmp / "rootfs"), "-cf", str(tmp / "busybox.tar"), "."], check=True)
    _podman(conf, "import", str(tmp / "busybox.tar"), IMAGE)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    """The engine at DOCKER_HOST, or a podman service started (and stopped) here."""
    if os.environ.get("DOCKER_HOST"):
        yield Engine(os.environ["DOCKER_HOST"], IMAGE)
        return
    if shutil.which("podman") is None:
        pytest.fail(f"podman is not installed, so the docker sandbox cannot be tested; {INSTALL}")
    with tempfile.TemporaryDirectory(prefix="signoff-podman-") as tmpdir:
        tmp = Path(tmpdir)
        conf = tmp / "containers.conf"
        # podman's default ulimits are refused in unprivileged containers (RLIMIT_NPROC: EPERM)
        conf.write_text("[containers]\ndefault_ulimits = []\n")
        _import_busybox(conf, tmp)
        sock = tmp / "podman.sock"
        service = subprocess.Popen(
            [*_PODMAN, "system", "service", "--time=0", f"unix://{sock}"],
            env={**os.environ, "CONTAINERS_CONF": str(conf)},
            cwd=tmp,  # conmon drops files such as `oom` into the service's working directory
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while not sock.exists() and time.monotonic() < deadline and service.poll() is None:
                time.sleep(0.05)
            if not sock.exists():
                pytest.fail(f"podman system service did not start (exit {service.poll()}); {INSTALL}")
            yield Engine(f"unix://{sock}", IMAGE)
        finally:
            service.terminate()
            try:
                service.wait(timeout=10)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()


@pytest.fixture(scope="session")
def docker_sandbox(docker_engine: Engine) -> Iterator[DockerSandbox]:
    """A DockerSandbox talking to the test engine."""
    client = docker.DockerClient(base_url=docker_engine.url, timeout=60)
    try:
        backend = DockerSandbox(docker_engine.image, client=client)
        problem = backend.ping()
        if problem is not None:
            pytest.fail(
                f"the engine at {docker_engine.url} cannot run {docker_engine.image}: {problem}; {INSTALL}"
            )
        yield backend
    finally:
        client.close()


@pytest.fixture(scope="session")
def bwrap_sandbox() -> BwrapSandbox:
    """A BwrapSandbox that has been checked to work on this machine."""
    if shutil.which("bwrap") is None:
        pytest.fail(f"bubblewrap is not installed; {INSTALL}")
    backend = BwrapSandbox()
    problem = backend.probe()
    if problem is not None:
        pytest.fail(f"bubblewrap does not work here: {problem}")
    return backend


@pytest.fixture(params=["bwrap", "docker"])
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """Each isolating backend in turn."""
    backend: Sandbox = request.getfixturevalue(f"{request.param}_sandbox")
    return backend


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    """A parent folder holding the workspaces of several runs, as the service lays them out."""
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def workspace(runs_dir: Path) -> Path:
    """The per-step workspace of one run (not created yet: the sandbox creates it)."""
    return runs_dir / "run_1" / "step_1"
