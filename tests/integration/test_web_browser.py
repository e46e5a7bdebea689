"""The live page in real headless Chromium, served by waitress, fed by the in-process bus."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from pbxlink.web import create_app
from pbxlink.web.server import make_server, urls_of

from pbxlink.bus import InProcessBus
from pbxlink.config import Config, DatabaseConfig, WebConfig
from pbxlink.domain.calls import CallEnded, CallEvent, CallRecord, CallStarted
from pbxlink.storage import users
from pbxlink.storage.calls import save_call
from pbxlink.storage.database import connect, connection
from pbxlink.storage.migrations import migrate
from pbxlink.storage.users import create_user
from tests.integration.browser import pytestmark, sync_api  # noqa: F401  (the marks)


class StreamWatch:
    """WSGI middleware counting event-stream connections and noticing heartbeats on them."""

    def __init__(self, app) -> None:
        self.app = app
        self.opened = 0
        self.heartbeat = threading.Event()

    def __call__(self, environ, start_response):
        body = self.app(environ, start_response)
        if environ["PATH_INFO"] != "/calls/stream":
            return body
        self.opened += 1
        return self._watch(body)

    def _watch(self, body) -> Iterator[bytes]:
        try:
            for chunk in body:
                if chunk.startswith(b": keepalive"):
                    self.heartbeat.set()
                yield chunk
        finally:
            body.close()


class CallLog:
    """Saves every event's record, as the call-log service does, and says when it has."""

    def __init__(self) -> None:
        self.saved: dict[str, int] = {}
        self.done = threading.Condition()

    def __call__(self, event: CallEvent) -> None:
        with connection():
            row_id = save_call(event.call)
        with self.done:
            self.saved[f"{event.call.call_id}:{event.kind}"] = row_id
            self.done.notify_all()

    def wait(self, key: str) -> int:
        with self.done:
            assert self.done.wait_for(lambda: key in self.saved, timeout=5), key
            return self.saved[key]


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    url = f"sqlite:///{tmp_path}/pbxlink.db"
    database = connect(url)
    migrate(database)
    create_user("sue", "sup3rvisor!", role="supervisor")
    database.close()

    bus = InProcessBus()
    call_log = CallLog()
    bus.subscribe("call-log", call_log)
    config = Config(path=None, database=DatabaseConfig(url), web=WebConfig(), pbx=(), data_dir=tmp_path)
    app = create_app(config, bus)
    app.config["SSE_HEARTBEAT_SECONDS"] = 0.5
    watch = StreamWatch(app.wsgi_app)
    app.wsgi_app = watch
    server = make_server(app, "127.0.0.1", 0, threads=8)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    yield urls_of(server)[0].rstrip("/"), bus, call_log, watch
    server.task_dispatcher.shutdown(timeout=3)
    server.close()
    thread.join(timeout=3)
    bus.close()


@pytest.fixture
def page(served, browser):
    page = browser.new_page()
    page.set_default_timeout(5000)
    page.problems = []
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and page.problems.append(msg.text))
    return page


def started(call_id: str, at: datetime, caller: str, name: str | None = None) -> CallRecord:
    return CallRecord(
        pbx="main",
        call_id=call_id,
        direction="inbound",
        started_at=at,
        caller=caller,
        caller_name=name,
        callee="100",
        queue="sales",
    )


def ended(rec: CallRecord, *, answered: bool) -> CallRecord:
    done = rec.copy()
    done.ended_at = rec.started_at + timedelta(seconds=42)
    done.hangup_by = "customer"
    done.wait_seconds, done.talk_seconds = (3.0, 39.0) if answered else (42.0, 0.0)
    if answered:
        done.answered_at = rec.started_at + timedelta(seconds=3)
        done.agent, done.agents = "201", ["201"]
        done.disposition = "answered"
        done.recording = "/var/spool/asterisk/monitor/call.wav"
    else:
        done.disposition, done.miss_reason = "missed", "no_answer"
    return done


def test_login_then_calls_appear_and_finish_live_without_reload(served, page) -> None:
    base, bus, call_log, watch = served
    expect = sync_api.expect

    page.goto(base + "/")
    assert "/login" in page.url
    page.fill("#username", "sue")
    page.fill("#password", "sup3rvisor!")
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    expect(page.locator("h1")).to_have_text("Today's calls")
    expect(page.locator("#live-status")).to_have_text("Live")
    expect(page.locator("#empty")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    now = datetime.now(UTC).replace(microsecond=0)
    first = started("1760000000.1", now, "+15551234567", "Ada Lovelace")
    bus.publish(CallStarted(at=now, call=first))
    row = page.locator('tr[data-call-id="1760000000.1"]')
    expect(row.locator(".badge")).to_have_text("ringing")
    expect(row).to_contain_text("Ada Lovelace")
    expect(row).to_contain_text("sales")
    expect(page.locator("#empty")).to_be_hidden()
    row_id = call_log.wait("1760000000.1:started")

    final = ended(first, answered=True)
    bus.publish(CallEnded(at=final.ended_at, call=final))
    expect(row.locator(".badge")).to_have_text("answered")
    expect(row.locator("td").nth(4)).to_have_text("201")
    expect(row.locator("td").nth(7)).to_have_text("0:03")
    expect(row.locator("td").nth(8)).to_have_text("0:39")
    expect(row.locator(".rec")).to_be_visible()
    expect(row).to_have_attribute("data-id", str(row_id))

    # The stream outlives a heartbeat and carries the next call, on the same connection.
    assert watch.heartbeat.wait(timeout=5)
    later = now + timedelta(seconds=1)
    second = ended(started("1760000001.2", later, "+15557654321"), answered=False)
    bus.publish(CallStarted(at=later, call=started("1760000001.2", later, "+15557654321")))
    bus.publish(CallEnded(at=second.ended_at, call=second))
    newest = page.locator("tbody tr").first
    expect(newest).to_have_attribute("data-call-id", "1760000001.2")
    expect(newest.locator(".badge")).to_have_text("missed · no answer")
    expect(page.locator("tbody tr")).to_have_count(2)

    assert page.evaluate("window.notReloaded") is True
    assert watch.opened == 1
    assert page.problems == []
