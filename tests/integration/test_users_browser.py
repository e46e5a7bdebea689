"""The users page and my account in real headless Chromium, served by waitress over a real SQLite
database: an admin adds a user, who logs in elsewhere with the password shown once, makes an API token
(shown once), revokes it, and is sent to the login page after the admin logs them out everywhere.
The screenshots docs/screenshots/users.png and account.png are taken on the way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pbxlink.web.server import make_server, urls_of

from pbxlink.config import Config
from pbxlink.storage.models import ApiToken
from pbxlink.storage.users import create_user
from tests.integration.browser import pytestmark, sync_api  # noqa: F401  (the marks)
from tests.integration.test_callbacks_browser import logged_in
from tests.unit import test_web_api
from tests.unit.test_web_users import users_app

expect = sync_api.expect

base_config = test_web_api.config  # the fixture: a migrated SQLite database and its Config
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def served(base_config: Config) -> Iterator[str]:
    create_user("root", test_web_api.PASSWORD, role="admin")
    create_user("sue", test_web_api.PASSWORD, role="supervisor", extension="201,202")
    server = make_server(users_app(base_config), "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    yield urls_of(server)[0].rstrip("/")
    server.task_dispatcher.shutdown(timeout=3)
    server.close()
    thread.join(timeout=3)


def test_an_admin_adds_a_user_who_makes_and_revokes_a_token_then_is_logged_out_everywhere(
    served: str, browser: Any
) -> None:
    base = served
    admin = logged_in(browser, base, "/users", "root", viewport={"width": 1280, "height": 900})
    admin.get_by_label("Username").fill("ann")
    admin.get_by_label("Role").select_option("agent")
    admin.get_by_label("Extensions").fill("203")
    admin.get_by_role("button", name="Add the user").click()
    expect(admin.locator(".flash")).to_have_text("ann is added as agent.")
    password = admin.locator("#shown-secret").text_content()
    assert password and len(password) >= 16
    expect(admin.locator("#user-ann td[data-label=Extensions]")).to_have_text("203")
    admin.screenshot(path=str(_shot("users")), full_page=True)
    admin.reload()
    expect(admin.locator("#shown-secret")).to_have_count(0)

    # ann logs in on her phone (a context of her own) with the password shown once.
    phone = browser.new_context(viewport=PHONE).new_page()
    phone.set_default_timeout(5000)
    problems: list[str] = []
    phone.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    phone.on("pageerror", lambda exc: problems.append(str(exc)))
    phone.goto(base + "/account")
    phone.fill("#username", "ann")
    phone.fill("#password", password)
    phone.click("button[type=submit]")
    phone.wait_for_url(base + "/account")
    phone.get_by_label("Token name").fill("nightly report")
    phone.get_by_role("button", name="Create a token").click()
    token = phone.locator("#shown-secret").text_content()
    assert token and len(token) >= 40
    expect(phone.locator(".tokens td[data-label=Name]")).to_have_text(["nightly report"])
    phone.get_by_role("button", name="Copy").click()
    expect(phone.get_by_role("button", name="Copied")).to_be_visible()  # or "Select and copy" if refused
    phone.screenshot(path=str(_shot("account")), full_page=True)
    phone.reload()
    expect(phone.locator("#shown-secret")).to_have_count(0)
    assert token not in phone.content()
    phone.get_by_role("button", name="Revoke nightly report").click()
    expect(phone.locator(".flash")).to_have_text(
        "Token “nightly report” is revoked: it stopped working at once."
    )
    expect(phone.locator(".tokens")).to_have_count(0)
    assert ApiToken.select().count() == 0

    # The admin logs ann out everywhere: her next navigation lands on the login page.
    admin.get_by_role("link", name="ann").click()
    admin.get_by_role("button", name="Log out everywhere").click()
    expect(admin.locator(".flash")).to_have_text("Every session of ann has ended; they must log in again.")
    phone.goto(base + "/account")
    expect(phone.locator("#username")).to_be_visible()
    assert phone.url.startswith(base + "/login")
    assert problems == [] and admin.problems == []


def _shot(name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / f"{name}.png"
