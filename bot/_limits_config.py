"""The deployment's execution limits: ``SIGNOFF_MAX_STEPS``, ``SIGNOFF_MAX_WALL_TIME``,
``SIGNOFF_MAX_TOKENS``, ``SIGNOFF_MAX_COST`` (private; see docs/workflows.md, Limits)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.model import Limits, parse_duration

__all__ = ["LIMIT_VARIABLES", "read_limits"]

LIMIT_VARIABLES = ("SIGNOFF_MAX_STEPS", "SIGNOFF_MAX_WALL_TIME", "SIGNOFF_MAX_TOKENS", "SIGNOFF_MAX_COST")


def read_limits(get: Callable[[str], str | None]) -> Limits:
    """Every run's limits (a workflow's ``limits:`` may tighten them). Unset or empty: none.

    Raises:
        ValueError: naming the variable and what it takes.
    """
    values: dict[str, Any] = {}
    for var in LIMIT_VARIABLES:
        raw = (get(var) or "").strip()
        if raw:
            key = var.removeprefix("SIGNOFF_").lower()
            values[key] = _parse(var, raw)
    return Limits(**values)


def _parse(var: str, raw: str) -> Any:
    if var == "SIGNOFF_MAX_WALL_TIME":
        try:
            return parse_duration(raw)
        except ValueError as exc:
            raise ValueError(f"{var}: {exc}") from None
    if var == "SIGNOFF_MAX_COST":
        try:
            cost = float(raw)
        except ValueError:
            cost = 0.0
        if not cost > 0:
            raise ValueError(f"{var} must be a positive amount in USD, like 5 or 0.50, not {raw!r}")
        return cost
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{var} must be a whole number, 1 or more, not {raw!r}")
    return int(raw)
