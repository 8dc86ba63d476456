"""SIGNOFF_DELEGATION_MAX_DAYS: the longest delegation anyone may record."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, Settings


def test_default_is_thirty_days() -> None:
    assert Settings.from_env({}).delegation_max_days == 30


def test_the_setting_is_read() -> None:
    assert Settings.from_env({"SIGNOFF_DELEGATION_MAX_DAYS": "7"}).delegation_max_days == 7


@pytest.mark.parametrize("value", ["soon", "0", "-3"])
def test_a_bad_value_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="SIGNOFF_DELEGATION_MAX_DAYS"):
        Settings.from_env({"SIGNOFF_DELEGATION_MAX_DAYS": value})
