"""The CLI's light read path (storage/light.py) names the store's columns and column kinds: rows
it reads validate into the same engine models as the full store's (storage/mapping.py)."""

from __future__ import annotations

from typing import Any

import pytest

from storage import light, mapping
from storage._sql import Rows


@pytest.mark.parametrize(
    ("lite", "full"),
    [
        (light.CHECKPOINTS, mapping.CHECKPOINTS),
        (light.RUNS, mapping.RUNS),
        (light.WORKFLOWS, mapping.WORKFLOWS),
        (light.DECISIONS, mapping.DECISIONS),
        (light.AUDIT, mapping.AUDIT),
    ],
)
def test_the_light_shapes_are_the_stores(lite: Rows[Any], full: mapping.Shape[Any]) -> None:
    assert (lite.model, lite.table, lite.columns) == (full.model, full.table, full.columns)
    assert lite.kinds == full.kinds
