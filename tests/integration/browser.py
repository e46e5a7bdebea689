"""Real headless Chromium for the browser tests: the marks and the `browser` fixture they share.

A test module does `from tests.integration.browser import pytestmark, sync_api`; the
`browser` fixture comes from tests/integration/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} is absent (make test installs it: apt-get install chromium)",
    ),
]

sync_api = pytest.importorskip("playwright.sync_api")


def launch() -> Iterator[Any]:
    """A headless Chromium for as long as the generator runs (the body of a `browser` fixture)."""
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()
