"""The calls history and a call's page in real headless Chromium, served by waitress over a real SQLite
call log and a real WAV file in a configured recordings folder: a supervisor finds a call by its number
(written differently), opens its page, reads its timeline and plays its recording; on a phone-width
screen the same pages still read. The screenshots docs/screenshots/calls-*.png are taken on the way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pbxlink.web.server import make_server, urls_of

from pbxlink.domain.calls import Transfer
from pbxlink.storage.calls import save_call
from tests.integration.browser import pytestmark, sync_api  # noqa: F401  (the marks)
from tests.integration.test_callbacks_browser import logged_in
from tests.integration.test_recording_links_web import wav_bytes
from tests.integration.test_recording_pages import DAY, Site, add, audits, site  # noqa: F401  (the fixture)
from tests.unit.test_call_history import call, wired

expect = sync_api.expect

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
CUSTOMER = "+12025550199"


@pytest.fixture
def served(site: Site) -> Iterator[tuple[str, int]]:  # noqa: F811
    """The panel with a day of calls, one of them (the customer's, transferred) recorded for 6 s."""
    site.wav = wav_bytes(6.0)
    wired(site.app)
    for n in range(12):
        save_call(
            call(f"other-{n}", DAY + timedelta(minutes=7 * n), ("201",), f"+1202555{n:04d}", queue="sales")
        )
    answered = {
        "answered_at": DAY + timedelta(hours=2, seconds=14),
        "wait_seconds": 11.0,
        "talk_seconds": 80.0,
    }
    call_id = save_call(
        call(
            "1700000099.7",
            DAY + timedelta(hours=2),
            ("201", "202"),
            CUSTOMER,
            caller_name="Ada Lovelace",
            queue="support",
            transfers=[Transfer("201", "202", "attended")],
            recording="1700000099.7.wav",
            **answered,
        )
    )
    add(site, "1700000099.7.wav", call_id="1700000099.7", caller=CUSTOMER, agent="201", duration=6.0)
    server = make_server(site.app, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    yield urls_of(server)[0].rstrip("/"), call_id
    server.task_dispatcher.shutdown(timeout=3)
    server.close()
    thread.join(timeout=3)


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"calls-{name}.png"), full_page=True)


def test_a_supervisor_finds_a_call_by_number_opens_it_and_plays_its_recording(
    served: tuple[str, int], browser: Any
) -> None:
    base, call_id = served
    page = logged_in(browser, base, "/calls/history", "sue", viewport={"width": 1280, "height": 900})
    page.set_default_timeout(10_000)
    expect(page.locator(".call-row")).to_have_count(13)

    page.get_by_label("Number").fill("(202) 555-0199")  # the same number, written as people write it
    page.get_by_label("Number").press("Enter")  # the keyboard submits the search
    expect(page.locator(".call-row")).to_have_count(1)
    expect(page.locator(".call-row td[data-label=Agent]")).to_have_text("201 → 202")
    expect(page.locator(".call-export")).to_have_attribute("href", "/calls/history.csv?number=(202)+555-0199")
    shot(page, "history")

    page.locator(".call-row a").click()
    page.wait_for_url(f"{base}/calls/{call_id}")
    steps = page.locator(".call-timeline li .step-what")
    expect(steps).to_have_text(
        [
            f"Inbound call from {CUSTOMER} (Ada Lovelace) started",
            "Entered queue support",
            "Answered by 201 after 11 s waiting",
            "Attended transfer from 201 to 202",
            "Ended: the customer hung up",
        ]
    )
    audio = page.locator("#recordings audio")
    duration = audio.evaluate(
        """a => new Promise((done, fail) => {
            a.addEventListener('loadedmetadata', () => done(a.duration), {once: true});
            a.addEventListener('error', () => fail(new Error('media error ' + a.error.code)), {once: true});
            a.preload = 'metadata';
            a.load();
        })"""
    )
    assert 5.5 < duration < 6.5
    played = audio.evaluate(
        """a => new Promise((done, fail) => {
            a.muted = true;
            a.addEventListener('timeupdate', () => a.currentTime > 0.2 && done(a.currentTime));
            a.addEventListener('error', () => fail(new Error('media error ' + a.error.code)), {once: true});
            a.play().catch(fail);
        })"""
    )
    assert played > 0.2  # the browser decoded and played the file the page pointed at
    audio.evaluate("a => a.pause()")
    shot(page, "page")
    assert page.problems == []
    assert [(a.user, a.action) for a in audits()] == [("sue", "listen")]


def test_on_a_phone_the_history_rows_are_cards_and_an_agent_sees_the_call_without_the_recording(
    served: tuple[str, int], browser: Any
) -> None:
    base, call_id = served
    page = logged_in(browser, base, f"/calls/{call_id}", "bob", viewport=PHONE)  # 202: took the transfer
    expect(page.locator(".call-agents")).to_have_text("201 → 202")
    expect(page.locator("#recordings audio")).to_have_count(0)  # recorded under 201: not bob's to hear
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1  # nothing runs off the side of a phone
    page.goto(base + "/calls/history")
    expect(page.locator(".call-row")).to_have_count(1)  # bob talked on one call
    label = page.locator(".call-row td[data-label=Caller]")
    assert label.evaluate("td => getComputedStyle(td, '::before').content") == '"Caller"'
    assert page.problems == []
