"""Fixtures of the integration tests."""

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def browser() -> Iterator[Any]:
    """A real headless Chromium (the modules that use it carry tests.integration.browser's marks)."""
    from tests.integration.browser import launch

    yield from launch()
