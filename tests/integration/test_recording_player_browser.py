"""The recordings pages in real headless Chromium, served by waitress: a supervisor finds a recording,
plays it in the page's <audio> element (metadata, then a seek the server answers by Range), and the
listen is in the audit log once, however many Range requests the player made."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from pbxlink.web.server import make_server, urls_of

from tests.integration.browser import pytestmark, sync_api  # noqa: F401  (the marks)
from tests.integration.test_recording_links_web import wav_bytes
from tests.integration.test_recording_pages import Site, add, audits, site  # noqa: F401  (the fixture)
from tests.unit.test_web_api import PASSWORD

expect = sync_api.expect

WSGI = Callable[[dict[str, Any], Any], Iterable[bytes]]


class AudioRequests:
    """What the browser asked of /audio (its Range header) and what it was answered (the status)."""

    def __init__(self, app: WSGI) -> None:
        self.app = app
        self.seen: list[tuple[str | None, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not environ["PATH_INFO"].endswith("/audio"):
            return self.app(environ, start_response)

        def noted(status: str, headers: Any, *exc: Any) -> Any:
            self.seen.append((environ.get("HTTP_RANGE"), status.split()[0]))
            return start_response(status, headers, *exc)

        return self.app(environ, noted)


@pytest.fixture
def served(site: Site) -> Iterator[tuple[str, AudioRequests]]:  # noqa: F811
    site.wav = wav_bytes(20.0)  # long enough that a seek lands past what the first response gave
    recorder = AudioRequests(site.app.wsgi_app)
    site.app.wsgi_app = recorder  # type: ignore[method-assign]
    server = make_server(site.app, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    yield urls_of(server)[0].rstrip("/"), recorder
    server.task_dispatcher.shutdown(timeout=3)
    server.close()
    thread.join(timeout=3)


def test_a_supervisor_finds_plays_and_seeks_and_the_listen_is_audited(
    site: Site,  # noqa: F811
    served: tuple[str, AudioRequests],
    browser: Any,
) -> None:
    base, recorder = served
    add(site, "other.wav", caller="+12025550177", duration=20.0)
    rec = add(site, "1700000010.1.wav", caller="+12025550199", duration=20.0)
    page = browser.new_context().new_page()
    page.set_default_timeout(10000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.goto(base + "/recordings")
    page.fill("#username", "sue")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/recordings")
    expect(page.locator(".rec-row")).to_have_count(2)

    page.fill("input[name=number]", "202-555-0199")
    page.click(".rec-search button[type=submit]")
    expect(page.locator(".rec-row")).to_have_count(1)
    page.click(f"a[href='/recordings/{rec.id}']")
    page.wait_for_url(f"{base}/recordings/{rec.id}")
    assert recorder.seen == []  # preload="none": opening the page fetches no audio

    audio = page.locator("audio")
    duration = audio.evaluate(
        """a => new Promise((done, fail) => {
            a.addEventListener('loadedmetadata', () => done(a.duration), {once: true});
            a.addEventListener('error', () => fail(new Error('media error ' + a.error.code)), {once: true});
            a.preload = 'metadata';
            a.load();
        })"""
    )
    assert 19.5 < duration < 20.5
    where = audio.evaluate(
        """a => new Promise((done, fail) => {
            a.addEventListener('seeked', () => done([a.currentTime, a.seekable.end(0)]), {once: true});
            a.addEventListener('error', () => fail(new Error('media error ' + a.error.code)), {once: true});
            a.currentTime = 15;
        })"""
    )
    assert abs(where[0] - 15) < 0.5 and where[1] > 19.5  # seekable: the server takes Range requests
    assert recorder.seen and recorder.seen[0] == ("bytes=0-", "206")
    assert all(rng is not None and status == "206" for rng, status in recorder.seen), recorder.seen
    assert problems == []

    [listen] = audits()  # one listen, however many Range chunks the player asked for
    assert (listen.user, listen.action, listen.target) == ("sue", "listen", f"recording:{rec.id}")
    page.reload()
    expect(page.locator(".rec-audit tbody tr")).to_have_count(1)
    expect(page.locator(".rec-audit tbody tr td").nth(1)).to_have_text("sue")
    expect(page.locator(".rec-audit tbody tr td").nth(2)).to_have_text("listen")
