"""Sandbox backends for ``code`` and ``skill`` nodes (the engine's ``Sandbox`` port).

``choose_sandbox`` turns the ``SIGNOFF_SANDBOX`` setting into a backend at start-up.
"""

from __future__ import annotations

import functools
import os

from engine.errors import EngineError
from engine.ports import Sandbox
from skills.sandbox._bwrap import BwrapSandbox
from skills.sandbox._docker import DockerSandbox
from skills.sandbox._subprocess import SubprocessSandbox

__all__ = ["BwrapSandbox", "DockerSandbox", "SubprocessSandbox", "choose_sandbox"]

_SETTINGS = ("auto", "bwrap", "docker", "subprocess")
_INSTALL_HINT = (
    "install bubblewrap (apt-get install bubblewrap; it needs unprivileged user namespaces "
    "or root), or set DOCKER_HOST to a Docker-compatible engine and give a docker image"
)


@functools.cache
def _bwrap_problem(seccomp: bool) -> str | None:
    # Probed once per process: the answer does not change while the service runs.
    try:
        return BwrapSandbox(seccomp=seccomp).probe()
    except EngineError as e:
        return str(e)


def _seccomp_setting() -> bool:
    value = os.environ.get("SIGNOFF_SANDBOX_SECCOMP", "on").strip().lower()
    if value not in ("on", "off"):
        raise EngineError(f"SIGNOFF_SANDBOX_SECCOMP={value!r} must be on (the default) or off")
    return value == "on"


def _docker(image: str | None) -> DockerSandbox:
    if not image:
        raise EngineError("SIGNOFF_SANDBOX=docker needs a docker image to run commands in")
    backend = DockerSandbox(image)
    problem = backend.ping()
    if problem is not None:
        raise EngineError(f"SIGNOFF_SANDBOX=docker: the engine at DOCKER_HOST does not answer: {problem}")
    return backend


def choose_sandbox(setting: str, *, docker_image: str | None = None) -> Sandbox:
    """Build the sandbox backend named by ``setting`` (the ``SIGNOFF_SANDBOX`` value).

    Blocking (it probes bubblewrap and pings the engine), so call it at start-up.

    Args:
        setting: ``auto`` (bwrap when it works here, else docker when an engine answers),
            ``bwrap``, ``docker`` or ``subprocess`` (no isolation; only accepted when the
            environment says ``SIGNOFF_SANDBOX=subprocess`` explicitly).
        docker_image: the image the docker backend runs commands in.

    ``SIGNOFF_SANDBOX_SECCOMP`` (``on`` by default, or ``off``) says whether bwrap installs its
    seccomp filter; when it is on and the filter cannot be built or loaded, bwrap counts as not
    working here (fail closed).

    Raises:
        EngineError: an unknown setting, a backend that does not work on this machine, or
            ``subprocess`` without the explicit environment opt-in. The message says what to do.
    """
    if setting not in _SETTINGS:
        raise EngineError(f"SIGNOFF_SANDBOX={setting!r} is not one of {', '.join(_SETTINGS)}")
    if setting == "subprocess":
        if os.environ.get("SIGNOFF_SANDBOX") != "subprocess":
            raise EngineError(
                "the subprocess sandbox does not isolate anything (network, files, environment); "
                "it is only used when SIGNOFF_SANDBOX=subprocess is set explicitly in the environment"
            )
        return SubprocessSandbox()
    if setting == "docker":
        return _docker(docker_image)
    seccomp = _seccomp_setting()
    problem = _bwrap_problem(seccomp)
    if setting == "bwrap":
        if problem is not None:
            raise EngineError(f"SIGNOFF_SANDBOX=bwrap: bubblewrap does not work here: {problem}")
        return BwrapSandbox(seccomp=seccomp)
    if problem is None:
        return BwrapSandbox(seccomp=seccomp)
    if docker_image:
        try:
            return _docker(docker_image)
        except EngineError as e:
            raise EngineError(
                f"no sandbox works here (bwrap: {problem}; docker: {e}); {_INSTALL_HINT}"
            ) from e
    raise EngineError(f"no sandbox works here (bwrap: {problem}); {_INSTALL_HINT}")
