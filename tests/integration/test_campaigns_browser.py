"""The campaigns pages in real headless Chromium, served by waitress over a real SQLite database: a
supervisor creates a broadcast campaign, imports a list with a bad row, starts it, and watches the
numbers move as dials are recorded (the dialler itself does not run here: the test records them).
The screenshots in docs/screenshots/campaigns-*.png are taken on the way."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pbxlink.web import create_app
from pbxlink.web.server import make_server, urls_of

from pbxlink.config import Config, PbxConfig
from pbxlink.storage.models import Campaign, CampaignAttempt, CampaignContact
from pbxlink.storage.users import create_user
from tests.integration.browser import pytestmark, sync_api  # noqa: F401  (the marks)
from tests.integration.test_callbacks_browser import logged_in
from tests.unit import test_web_api

expect = sync_api.expect

base_config = test_web_api.config  # the fixture: a migrated SQLite database and its Config
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WAIT = 15_000  # ms: the page polls every 2 s; a loaded machine may take a few rounds
LIST = (
    "Phone,Name,Due date\n"
    "+1 212 555 0101,Ann Example,2026-12-01\n"
    "+1 212 555 0102,Bob Example,2026-12-02\n"
    "call me maybe,Carl Example,2026-12-03\n"
    '+1 212 555 0104,=HYPERLINK("http://x"),2026-12-04\n'
)


@pytest.fixture
def served(base_config: Config) -> Iterator[str]:
    config = dataclasses.replace(
        base_config,
        pbx=(PbxConfig(name="main", type="asterisk", host="127.0.0.1", port=5038, username="u", secret="x"),),
    )
    create_user("sue", test_web_api.PASSWORD, role="supervisor")
    app: Flask = create_app(config)
    server = make_server(app, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    yield urls_of(server)[0].rstrip("/")
    server.task_dispatcher.shutdown(timeout=3)
    server.close()
    thread.join(timeout=3)


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"campaigns-{name}.png"), full_page=True)


def test_a_supervisor_creates_imports_starts_and_watches_a_campaign(served: str, browser: Any) -> None:
    base = served
    page = logged_in(browser, base, "/campaigns/new", "sue", viewport={"width": 1280, "height": 900})
    page.set_default_timeout(WAIT)

    # The form: the broadcast's fields, and the agent-first ones when that mode is chosen.
    message = page.get_by_role("textbox", name="Recording")
    expect(message).to_be_visible()
    page.get_by_label("Agent first").check()
    expect(message).to_be_hidden()
    page.get_by_label("Voice broadcast").check()
    expect(message).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Renewals")
    page.get_by_label("Calls a minute, at most").fill("0")
    page.get_by_role("button", name="Create the campaign").click()
    expect(page.locator("#form-error")).to_have_text("message: must be set: the recording a broadcast plays")
    # The refused form comes back as a 400, which Chromium notes in the console: that, and nothing else.
    assert page.problems == [
        "Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"
    ]
    page.problems.clear()
    message.fill("renewal-reminder")
    page.get_by_label("Calls a minute, at most").fill("20")
    page.get_by_label("Sat").check()
    page.get_by_label("Detect answering machines").check()
    shot(page, "form")
    page.get_by_role("button", name="Create the campaign").click()
    c = Campaign.get(Campaign.name == "Renewals")
    page.wait_for_url(f"{base}/campaigns/{c.id}")
    expect(page.locator(".flash")).to_contain_text("Campaign Renewals is created as a draft")
    assert (c.message, c.per_minute, c.days, c.amd) == (
        "renewal-reminder",
        20.0,
        "mon,tue,wed,thu,fri,sat",
        True,
    )

    # Upload a list with a bad row, map its columns (the due date is not wanted), import it.
    page.get_by_label("CSV file").set_input_files(
        {"name": "renewals.csv", "mimeType": "text/csv", "buffer": LIST.encode()}
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("h1")).to_have_text("Import renewals.csv into Renewals")
    expect(page.get_by_label("Phone")).to_have_value("number")
    expect(page.get_by_label("Name", exact=True)).to_have_value("name")
    expect(page.locator(".cp-preview tbody tr")).to_have_count(4)
    expect(page.locator(".cp-preview")).to_contain_text('=HYPERLINK("http://x")')  # as text
    page.get_by_label("Due date").select_option("ignore")
    shot(page, "mapping")
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(f"{base}/campaigns/{c.id}#import-*")
    item = page.locator(".cp-import").first
    expect(item.locator("[data-field=percent]")).to_have_text("100%")
    expect(item.locator("[data-field=status]")).to_have_text("done")
    expect(item.locator("[data-field=accepted]")).to_have_text("3")
    expect(item.locator("[data-field=rejected]")).to_have_text("1")
    expect(item.get_by_role("link", name="Rejected rows and why (CSV)")).to_be_visible()
    report = page.locator(".cp-report")
    expect(report.locator("[data-field=remaining]")).to_have_text("3")  # without a reload

    # Start it; the commands that apply change with it.
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".flash")).to_have_text("Campaign Renewals: running.")
    expect(page.locator("#cp-status")).to_have_text("running")
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    expect(page.get_by_role("button", name="Start")).to_have_count(0)

    # Dials are recorded while the page is open: the numbers move without a reload.
    now = datetime.now(UTC)
    contacts = list(
        CampaignContact.select().where(CampaignContact.campaign == c.id).order_by(CampaignContact.id)
    )
    for k, outcome in zip(contacts[:2], ("answered", "busy"), strict=True):
        CampaignContact.update(status="done", attempts=1, last_outcome=outcome).where(
            CampaignContact.id == k.id
        ).execute()
        CampaignAttempt.create(
            campaign=c.id, contact=k.id, tag=f"t{k.id}", started_at=now, deadline=now + timedelta(minutes=1),
            ended_at=now, outcome=outcome, talk_seconds=30.0 if outcome == "answered" else None,
        )  # fmt: skip
    expect(report.locator("[data-field=dialled]")).to_have_text("2")
    expect(report.locator("[data-field=answered]")).to_have_text("1")
    expect(report.locator("[data-field=busy]")).to_have_text("1")
    expect(report.locator("[data-field=remaining]")).to_have_text("1")
    expect(report.locator("[data-field=answer_rate]")).to_have_text("50.0%")
    expect(report.locator("[data-field=percent]")).to_have_text("66%")
    assert report.locator("progress").evaluate("bar => bar.value") == 66
    shot(page, "detail")

    # The list of campaigns shows the same, live too.
    page.goto(f"{base}/campaigns")
    card = page.locator(f"#campaign-{c.id}")
    expect(card.locator("[data-field=status]")).to_have_text("running")
    expect(card.locator("[data-field=dialled]")).to_have_text("2")
    CampaignContact.update(status="done").where(CampaignContact.id == contacts[2].id).execute()
    expect(card.locator("[data-field=percent]")).to_have_text("100%")
    shot(page, "index")

    # Completed meanwhile (as the dialler would say): the campaign's page says its commands changed.
    page.goto(f"{base}/campaigns/{c.id}")
    Campaign.update(status="completed").where(Campaign.id == c.id).execute()
    expect(page.locator("#cp-status")).to_have_text("completed")
    expect(page.locator("#cp-changed")).to_contain_text("The campaign is now completed: reload the page")
    Campaign.update(status="running").where(Campaign.id == c.id).execute()

    # Stopping asks first: the box must be ticked (with the keyboard here).
    page.goto(f"{base}/campaigns/{c.id}")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#cp-status")).to_have_text("running")  # the browser held the form back
    box = page.get_by_label("Stop for good: the contacts not yet called are set aside")
    box.focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_have_text("Campaign Renewals: stopped.")
    expect(page.locator("#cp-status")).to_have_text("stopped")
    assert page.problems == []


def test_the_do_not_call_list_in_the_browser(served: str, browser: Any) -> None:
    base = served
    page = logged_in(browser, base, "/dnc", "sue", viewport={"width": 390, "height": 844})
    page.get_by_label("Number", exact=True).fill("(212) 555-0199")
    page.get_by_role("textbox", name="Reason (optional)").fill("<b>asked</b> twice")
    page.get_by_role("button", name="Add").click()
    expect(page.locator(".flash")).to_contain_text("+12125550199 is on the do-not-call list")
    expect(page.locator(".dnc-list tbody tr")).to_have_count(1)
    expect(page.locator(".dnc-list .cp-name")).to_have_text("<b>asked</b> twice")  # as text
    page.locator("#dnc-file").set_input_files(
        {"name": "dnc.csv", "mimeType": "text/csv", "buffer": b"phone,reason\n+12125550101,moved\n"}
    )
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".flash")).to_have_text(
        "1 number added to the do-not-call list; 0 were on it already."
    )
    page.get_by_role("textbox", name="Search").fill("0101")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".dnc-list tbody tr")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "dnc")
    page.get_by_role("button", name="Remove +12125550101").click()
    expect(page.locator(".flash")).to_have_text(
        "+12125550101 is off the do-not-call list: campaigns may call it again."
    )
    assert page.problems == []
