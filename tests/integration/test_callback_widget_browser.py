"""The "call me back" form embedded in another site's page, in real headless Chromium.

A shop's page, served by its own little HTTP server (another origin), carries the script tag
and the div; the script comes from the panel (waitress, the real app and callback service on
SQLite), builds the form, and the visitor's request crosses origins (preflight, then POST) to
the panel, whose answer or refusal the status line shows as text.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import request

from pbxlink.config import CallbacksConfig
from tests.integration.browser import launch, pytestmark, sync_api  # noqa: F401  (the marks)
from tests.integration.test_callback_requests import URL, Site, serving

expect = sync_api.expect

SHOP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme Shop</title>
<script src="{panel}/static/callback-widget.js" defer></script></head>
<body><h1>Acme Shop</h1><p>Leave your number and we call you.</p>
<div data-pbxlink-callback></div></body></html>
"""


class Shop:
    """The business's own website: one page, on an origin of its own."""

    def __init__(self) -> None:
        self.page = ""
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = shop.page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="shop", daemon=True)
        self.thread.start()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=3)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    shop = Shop()
    origin = shop.url().rstrip("/")
    site = Site(tmp_path, CallbacksConfig(allowed_origins=(origin,), rate_per_ip_minute=50))
    seen: list[tuple[str, str | None]] = []  # (method, Origin) of every request to the form's API
    site.app.before_request(
        lambda: seen.append((request.method, request.headers.get("Origin"))) if request.path == URL else None
    )
    try:
        with serving(site.app) as base:
            shop.page = SHOP_PAGE.format(panel=base)
            yield {"shop": shop, "site": site, "panel": base, "origin": origin, "seen": seen}
    finally:
        shop.close()
        site.database.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


def visit(browser: Any, url: str) -> Any:
    """The shop's page in a fresh context; script errors and dialogs (an alert!) are kept in `problems`."""
    page = browser.new_context().new_page()
    page.set_default_timeout(5000)
    page.problems = []
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    page.on("dialog", lambda dialog: (page.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.goto(url)
    expect(page.get_by_role("button", name="Call me back")).to_be_visible()
    return page


def submit(page: Any, number: str, name: str = "") -> Any:
    page.get_by_label("Your phone number").fill(number)
    page.get_by_label("Your name (optional)").fill(name)
    page.get_by_role("button", name="Call me back").click()
    return page.get_by_role("status")


def test_a_visitor_asks_for_a_call_from_the_shops_page(served: dict[str, Any], browser: Any) -> None:
    page = visit(browser, served["shop"].url())
    number = page.get_by_label("Your phone number")
    expect(number).to_have_attribute("type", "tel")
    expect(number).to_have_attribute("autocomplete", "tel")
    expect(page.get_by_label("When suits you (optional)")).to_have_attribute("type", "datetime-local")
    expect(page.get_by_role("status")).to_have_attribute("aria-live", "polite")

    status = submit(page, "(415) 555-0100", "Ada Lovelace")
    expect(status).to_have_text("Thank you, Ada Lovelace! We will call you back shortly.")
    expect(page.locator("form.pbxlink-callback")).to_have_attribute("data-state", "sent")
    expect(number).to_have_value("")  # ready for another visitor

    [cb] = served["site"].callbacks()
    assert (cb["number"], cb["name"], cb["source"], cb["status"]) == (
        "+14155550100",
        "Ada Lovelace",
        "web",
        "pending",
    )
    assert served["site"].control.originates == []  # queued for the scheduler, not dialled by the form
    # It crossed origins: the shop's page, the panel's API, the browser's preflight first.
    assert served["panel"] != served["origin"]
    assert served["seen"] == [("OPTIONS", served["origin"]), ("POST", served["origin"])]
    assert page.problems == []


def test_a_bad_number_shows_the_apis_reason_and_marks_the_field(served: dict[str, Any], browser: Any) -> None:
    page = visit(browser, served["shop"].url())
    status = submit(page, "12345")
    expect(status).to_have_text("Short codes, service and emergency numbers cannot be dialled.")
    number = page.get_by_label("Your phone number")
    expect(number).to_have_attribute("aria-invalid", "true")
    expect(number).to_be_focused()
    expect(page.locator("form.pbxlink-callback")).to_have_attribute("data-state", "error")

    expect(submit(page, "")).to_have_text("Please enter your phone number.")  # not even sent
    assert served["site"].callbacks() == [] and served["site"].control.originates == []
    assert [method for method, _ in served["seen"]] == ["OPTIONS", "POST"]
    assert page.problems == []


def test_markup_in_the_name_is_never_markup(served: dict[str, Any], browser: Any) -> None:
    page = visit(browser, served["shop"].url())
    status = submit(page, "+1 415 555 0100", "<img src=x onerror=alert('name')>")
    expect(status).to_have_text("The name may not contain < or >.")
    expect(page.get_by_label("Your name (optional)")).to_have_attribute("aria-invalid", "true")
    assert served["site"].callbacks() == []

    # Escaped markup is plain text to pbxlink: stored as typed, and shown as typed, not decoded.
    typed = "Ada &lt;img src=x onerror=alert('entity')&gt;"
    expect(submit(page, "+1 415 555 0100", typed)).to_have_text(
        f"Thank you, {typed}! We will call you back shortly."
    )
    assert [cb["name"] for cb in served["site"].callbacks()] == [typed]
    assert page.locator("img").count() == 0 and page.locator("form b, form script").count() == 0
    assert page.problems == []


def test_a_page_on_a_site_not_listed_is_refused_by_the_browser(served: dict[str, Any], browser: Any) -> None:
    elsewhere = served["shop"].url("localhost")  # the same server, but another origin than the one listed
    assert elsewhere.rstrip("/") != served["origin"]
    page = visit(browser, elsewhere)
    expect(submit(page, "+1 415 555 0100")).to_have_text(
        "Sorry, we could not be reached. Please try again later."
    )
    assert served["site"].callbacks() == []
    assert served["seen"] == [("OPTIONS", elsewhere.rstrip("/"))]  # refused at the preflight: no POST
    assert page.problems == []
