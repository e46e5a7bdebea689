"""The callback policies page: each configured policy, its hours and whether it is open now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from pbxlink.web import create_app

from pbxlink.config import CallbackPolicyConfig
from pbxlink.domain.callback_policy import CallbackPolicy
from pbxlink.domain.phone import numbers
from pbxlink.services.callbacks import CallbackService
from tests.integration.test_callbacks_panel import signed_in
from tests.unit import test_web_api

config = test_web_api.config  # the fixture: a migrated SQLite database and its Config

ALWAYS = tuple(((0, 24 * 60),) for _ in range(7))
#: open only on the day three days from now (Paris), 09:00-10:00: closed whenever the test runs
LATER = tuple(
    ((9 * 60, 10 * 60),) if i == (datetime.now(ZoneInfo("Europe/Paris")).weekday() + 3) % 7 else ()
    for i in range(7)
)


def policy(name: str, hours: Any, **kw: Any) -> CallbackPolicy:
    cfg = CallbackPolicyConfig(name=name, pbx="main", timezone="Europe/Paris", hours=hours, **kw)
    return CallbackPolicy(cfg, numbers())


@pytest.fixture
def app(config: Any) -> Flask:
    service = CallbackService(
        [
            policy("support <misses>", ALWAYS, queues=("support",), queue="support"),
            policy("web", LATER, source="web", queue="sales", order="customer_first"),
        ],
        {},
        numbers(),
        clock=lambda: datetime.now(UTC),
    )
    return create_app(config, callbacks=service)


def test_supervisors_see_every_policy_and_whether_it_is_open(app: Flask) -> None:
    page = signed_in(app, "sue", "supervisor").get("/callbacks/policies").get_data(as_text=True)
    assert "support &lt;misses&gt;" in page  # names are text
    assert "open now" in page and "closed now" in page
    assert "Europe/Paris" in page and "Mon 00:00-24:00" in page and " closed" in page
    assert "09:00-10:00" in page
    assert "customer first" in page and "website requests" in page


def test_agents_may_not(app: Flask) -> None:
    assert signed_in(app, "ann", extension="201").get("/callbacks/policies").status_code == 403
    assert app.test_client().get("/callbacks/policies").status_code == 302  # to the login page
