"""Fixtures every test can use: a real redis-server, and the default numbering plan."""

from collections.abc import Iterator

import pytest

from tests.crm.samples import numbering
from tests.redis_server import redis_cache_url, redis_server, redis_url  # noqa: F401


@pytest.fixture(autouse=True)
def _numbering() -> Iterator[None]:
    """Each test starts on the default (US) plan: one that configures another cannot leak it."""
    with numbering("US"):
        yield
