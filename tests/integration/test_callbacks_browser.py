"""The Callbacks page and the pop page's waiting count in real headless Chromium, served by waitress,
over a real SQLite database whose callbacks the store made."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from pbxlink.web import create_app
from pbxlink.web.server import make_server, urls_of

from pbxlink.storage import callbacks as store
from pbxlink.storage.users import create_user
from tests.integration.browser import pytestmark, sync_api  # noqa: F401  (the marks)
from tests.unit import test_web_api
from tests.unit.test_web_api import PASSWORD

expect = sync_api.expect

config = test_web_api.config  # the fixture: a migrated SQLite database and its Config
PHONE = {"width": 390, "height": 844}


def schedule(number: str, agent: str | None, name: str | None = None) -> int:
    due = datetime.now(UTC) + timedelta(hours=3)
    cb, created = store.schedule(
        "sales", "main", number, source="missed_call", due_at=due, agent=agent, name=name
    )
    assert created
    return int(cb.id)


@pytest.fixture
def served(config: Any) -> Iterator[tuple[str, dict[str, int]]]:
    create_user("sue", PASSWORD, role="supervisor")
    create_user("ann", PASSWORD, extension="201")
    ids = {
        "ann1": schedule("+12025550111", "201", '<img src=x onerror="alert(1)">'),
        "ann2": schedule("+12025550112", "201"),
        "bob": schedule("+12025550121", "202", "Bob's customer"),
    }
    app: Flask = create_app(config)
    server = make_server(app, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    yield urls_of(server)[0].rstrip("/"), ids
    server.task_dispatcher.shutdown(timeout=3)
    server.close()
    thread.join(timeout=3)


def logged_in(browser: Any, base: str, path: str, username: str, **context: Any) -> Any:
    """A page of its own (cookies, viewport), logged in as `username`, on `path`; it records any
    script error, CSP refusal (a console error) or dialog in `page.problems`."""
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(5000)
    page.problems = []
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and page.problems.append(msg.text))
    page.on("dialog", lambda dialog: (page.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.goto(base + path)
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + path)
    return page


def test_a_supervisor_reschedules_and_cancels_through_the_forms_on_a_phone(
    served: tuple[str, dict[str, int]], browser: Any
) -> None:
    base, ids = served
    page = logged_in(browser, base, "/callbacks", "sue", viewport=PHONE)
    expect(page.locator(".cb-tabs [aria-current=page]")).to_have_text("Pending 3")
    expect(page.locator(".cb-row")).to_have_count(3)
    expect(page.locator(f"#cb-{ids['ann1']} .cb-name")).to_have_text('<img src=x onerror="alert(1)">')
    assert page.locator(".cb-list img, .cb-list script").count() == 0

    # Reschedule bob's customer to 10:30 in three days (server time), through the folded-away form.
    row = page.locator(f"#cb-{ids['bob']}")
    row.locator("summary").click()
    wall = (datetime.now() + timedelta(days=3)).replace(hour=10, minute=30, second=0, microsecond=0)
    row.get_by_label("New time").fill(wall.strftime("%Y-%m-%dT%H:%M"))
    row.get_by_role("button", name="Reschedule").click()
    expect(page.locator(".flash")).to_have_text(
        f"Callback #{ids['bob']} to +12025550121 is due {wall:%Y-%m-%d} 10:30 {wall.astimezone().tzname()}."
    )
    assert store.get(ids["bob"]).due_at == wall.astimezone(UTC)
    expect(page.locator(f"#cb-{ids['bob']} .cb-due")).to_contain_text(f"{wall:%Y-%m-%d} 10:30")

    # Cancel ann's first one with the keyboard alone: open the actions, type the reason, Enter.
    page.locator(f"#cb-{ids['ann1']} summary").focus()
    page.keyboard.press("Enter")
    reason = page.locator(f"#cb-{ids['ann1']}").get_by_label("Why cancel")
    expect(reason).to_be_visible()
    reason.focus()
    page.keyboard.type("reached by e-mail")
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_have_text(f"Callback #{ids['ann1']} to +12025550111 is cancelled.")
    expect(page.locator(f"#cb-{ids['ann1']}")).to_have_count(0)
    expect(page.locator(".cb-tabs .tab-pending")).to_have_text("Pending 2")
    expect(page.locator(".cb-tabs .tab-cancelled")).to_have_text("Cancelled 1")
    assert store.get(ids["ann1"]).reason == "reached by e-mail (cancelled by sue)"

    page.locator(".cb-tabs .tab-cancelled").click()
    expect(page.locator(f"#cb-{ids['ann1']} .cb-reason")).to_have_text("reached by e-mail (cancelled by sue)")
    # A phone's width: rows are cards, nothing runs off the side of the screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.problems == []


def test_an_agents_pop_page_shows_the_callbacks_waiting_for_them(
    served: tuple[str, dict[str, int]], browser: Any
) -> None:
    base, ids = served
    context = browser.new_context()
    context.clock.install()  # the page's 30 s poll runs on this clock, not the wall's
    page = context.new_page()
    page.set_default_timeout(5000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.goto(base + "/pops")
    page.fill("#username", "ann")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/pops")

    badge = page.locator("#callbacks-waiting")
    expect(badge).to_have_text("2 callbacks waiting")  # ann1 and ann2 (201's), not bob's
    expect(badge).to_be_visible()

    extra = schedule("+12025550113", "201")
    page.clock.run_for(31_000)
    expect(badge).to_have_text("3 callbacks waiting")

    for key in ("ann1", "ann2"):
        assert store.cancel(ids[key], "test", "sue")
    assert store.cancel(extra, "test", "sue")
    page.clock.run_for(31_000)
    expect(badge).to_be_hidden()

    schedule("+12025550114", "201")
    page.clock.run_for(31_000)
    expect(badge).to_have_text("1 callback waiting")
    badge.get_by_role("link").click()
    page.wait_for_url(base + "/callbacks?status=pending")
    expect(page.locator(".cb-row")).to_have_count(1)
    assert problems == []
