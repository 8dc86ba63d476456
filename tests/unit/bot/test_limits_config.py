"""The deployment's execution limits, read from SIGNOFF_MAX_* (issue 14)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import ConfigError, Settings
from engine.model import Limits


def test_global_limits_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "SIGNOFF_MAX_STEPS": "100",
            "SIGNOFF_MAX_WALL_TIME": "2h",
            "SIGNOFF_MAX_TOKENS": "50000",
            "SIGNOFF_MAX_COST": "2.5",
        }
    )
    assert settings.limits == Limits(
        max_steps=100, max_wall_time=timedelta(hours=2), max_tokens=50000, max_cost=2.5
    )
    assert Settings.from_env({}).limits == Limits()
    for var, value, message in [
        ("SIGNOFF_MAX_STEPS", "lots", "SIGNOFF_MAX_STEPS must be a whole number, 1 or more, not 'lots'"),
        ("SIGNOFF_MAX_TOKENS", "0", "SIGNOFF_MAX_TOKENS must be a whole number, 1 or more, not '0'"),
        ("SIGNOFF_MAX_WALL_TIME", "forever", "SIGNOFF_MAX_WALL_TIME: bad duration 'forever'"),
        ("SIGNOFF_MAX_COST", "-3", "SIGNOFF_MAX_COST must be a positive amount in USD"),
    ]:
        with pytest.raises(ConfigError, match=message):
            Settings.from_env({var: value})
