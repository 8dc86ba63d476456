"""deploy/compose.yml read as data, and a service of it turned into ``podman run`` options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["COMPOSE", "REPO", "compose", "run_options", "service"]

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose.yml"
# Docker's name for "do not mask /proc paths" and Podman's
_PODMAN_SECURITY = {"systempaths=unconfined": "unmask=ALL"}


def compose() -> dict[str, Any]:
    """The compose file (YAML anchors and merge keys resolved)."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def service(name: str) -> dict[str, Any]:
    """One service of the compose file."""
    found: dict[str, Any] = compose()["services"][name]
    return found


def _environment(spec: dict[str, Any]) -> dict[str, str]:
    raw = spec.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {str(k): str(v) for k, v in raw.items()}


def run_options(name: str, env: dict[str, str]) -> tuple[list[str], list[str]]:
    """The options and command of ``podman run`` for service ``name``.

    Environment and security options come from the compose file; ``env`` stands in for its
    env file (the secrets). Networking is the caller's: compose gives each service a DNS name on
    a bridge network, the tests run the containers on the host's network instead.
    """
    spec = service(name)
    options: list[str] = []
    for key, value in {**_environment(spec), **env}.items():
        options += ["--env", f"{key}={value}"]
    for opt in spec.get("security_opt") or []:
        options += ["--security-opt", _PODMAN_SECURITY.get(opt, opt)]
    return options, [str(part) for part in spec.get("command") or []]
