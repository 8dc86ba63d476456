"""The deployment files (Dockerfile, deploy/compose.yml) and, when an image was built, the image.

The image tests need ``SIGNOFF_TEST_IMAGE`` (an image built from this checkout, e.g. by
``make image``), Podman, and PostgreSQL (``SIGNOFF_TEST_POSTGRES_URL``). Without the image
variable they are deselected and the run's header says so; ``make test`` builds the image and
sets it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

IMAGE_ENV = "SIGNOFF_TEST_IMAGE"
_NO_IMAGE = f"image tests deselected: {IMAGE_ENV} is not set (make image-test builds and sets it)"


def pytest_report_header(config: pytest.Config) -> str:
    """Say up front whether the image is tested."""
    image = os.environ.get(IMAGE_ENV)
    return f"image tests: {image}" if image else _NO_IMAGE


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect this folder's image cases when no image was built."""
    if os.environ.get(IMAGE_ENV):
        return
    here = Path(__file__).parent
    drop = [i for i in items if i.get_closest_marker("image") and here in Path(str(i.path)).parents]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [i for i in items if i not in drop]
