"""Webhook deliveries to a real local HTTP receiver that checks the signature as docs/webhooks.md says."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pbxlink import __version__
from pbxlink.config import WebhookConfig
from pbxlink.domain.calls import CallEnded, CallEvent, CallRecord, CallRinging
from pbxlink.services.outbox import OutboxWorker
from pbxlink.services.webhooks import delivery_key, sign, verify_signature, webhook_deliverer, webhook_handler
from pbxlink.storage import outbox
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import OutboxItem
from tests.unit.test_outbox_worker import Clock, wait_for

SECRET = "whsec-0123456789abcdef"


class Receiver(ThreadingHTTPServer):
    """Answers each POST with the next scripted (status, headers, delay), else 200; records what came
    and whether its signature checked out."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[tuple[int, dict[str, str], float]] = []
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str = "/hooks/pbx") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def accepted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.received if r["status"] < 300]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        valid = verify_signature(
            SECRET, self.headers["X-Pbxlink-Timestamp"], body, self.headers["X-Pbxlink-Signature"]
        )
        with self.server.lock:
            status, headers, delay = self.server.script.pop(0) if self.server.script else (200, {}, 0.0)
            self.server.received.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                    "valid": valid,
                    "status": status,
                }
            )
        time.sleep(delay)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def clock(tmp_path: Path) -> Iterator[Clock]:
    database = connect(f"sqlite:///{tmp_path}/pbxlink.db")
    migrate(database)
    yield Clock()
    database.close()


@pytest.fixture
def run(clock: Clock) -> Iterator[Any]:
    """Start a worker delivering to `hooks`; stopped after the test."""
    started: list[OutboxWorker] = []

    def start(hooks: list[WebhookConfig], timeout: float = 5.0) -> OutboxWorker:
        worker = OutboxWorker(
            {"webhook": webhook_deliverer(hooks, timeout=timeout)}, poll_s=0.05, clock=clock
        )
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def call(**fields: Any) -> CallRecord:
    start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    return CallRecord(pbx="main", call_id="1700000001.1", direction="inbound", started_at=start, **fields)


def ended_event() -> CallEnded:
    rec = call(caller="+15550100007", caller_name="Zoë <script>", disposition="answered", agent="201")
    rec.ended_at = rec.started_at + timedelta(seconds=70)
    return CallEnded(at=rec.ended_at, call=rec)


def queue(clock: Clock, hooks: list[WebhookConfig], *events: CallEvent) -> None:
    def enqueue(kind: str, target: str, key: str, payload: dict[str, Any]) -> bool:
        return outbox.enqueue(kind, target, key, payload, now=clock())

    handler = webhook_handler(hooks, enqueue, lambda: None)
    for ev in events:
        handler(ev)


def row(target: str) -> OutboxItem:
    return OutboxItem.get(OutboxItem.target == target)


def test_a_500_is_retried_and_the_event_is_delivered_once_signed(
    receiver: Receiver, clock: Clock, run: Any
) -> None:
    hook = WebhookConfig(name="bridge", url=receiver.url(), secret=SECRET, events=("ended",))
    ev = ended_event()
    ringing = CallRinging(at=ev.call.started_at, call=call(caller="+15550100007"), agent="201")
    queue(clock, [hook], ringing, ev, ev)  # ringing is not wanted; the replayed end is queued once
    assert [r.key for r in OutboxItem.select()] == [delivery_key(ev)]

    receiver.script = [(500, {"Retry-After": "20"}, 0.0)]
    worker = run([hook])
    wait_for(lambda: row("bridge").last_error is not None)
    first = row("bridge")
    assert (
        first.status == "pending"
        and first.last_error == "webhook bridge: the receiver answered 500 Internal Server Error: {}"
    )
    assert first.next_at == clock() + timedelta(seconds=20)  # its Retry-After, longer than the first step
    clock.advance(20)
    worker.notify()
    wait_for(lambda: row("bridge").status == "done")
    assert row("bridge").result == "HTTP 200" and row("bridge").attempts == 2

    assert [r["valid"] for r in receiver.received] == [True, True] and len(receiver.accepted()) == 1
    got = receiver.accepted()[0]
    headers = got["headers"]
    assert json.loads(got["body"]) == ev.to_dict()
    assert got["body"] == receiver.received[0]["body"]  # the same bytes each time
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"pbxlink/{__version__}"
    assert headers["X-Pbxlink-Event"] == "ended"
    assert (
        headers["X-Pbxlink-Delivery"]
        == delivery_key(ev)
        == receiver.received[0]["headers"]["X-Pbxlink-Delivery"]
    )
    assert headers["X-Pbxlink-Delivery"].startswith("main:1700000001.1:ended:")
    assert headers["X-Pbxlink-Signature"] == sign(SECRET, headers["X-Pbxlink-Timestamp"], got["body"])
    assert abs(int(headers["X-Pbxlink-Timestamp"]) - time.time()) < 600


def test_the_signature_fails_for_a_tampered_body_an_old_timestamp_or_another_secret() -> None:
    body = json.dumps(ended_event().to_dict()).encode()
    now = int(time.time())
    ts = str(now)
    header = sign(SECRET, ts, body)
    assert verify_signature(SECRET, ts, body, header)
    assert not verify_signature(SECRET, ts, body.replace(b"answered", b"missed"), header)
    assert not verify_signature("another-secret-0123", ts, body, header)
    assert not verify_signature(SECRET, str(now + 1), body, header)  # the timestamp is signed too
    old = str(now - 301)
    assert not verify_signature(SECRET, old, body, sign(SECRET, old, body))  # a replay of an old POST
    assert verify_signature(SECRET, old, body, sign(SECRET, old, body), tolerance_s=600)
    assert not verify_signature(SECRET, ts, body, header.removeprefix("sha256="))
    assert not verify_signature(SECRET, "1e9", body, header)
    assert not verify_signature(SECRET, "\u00b2", body, header)  # a digit to str.isdigit, not to int()
    assert not verify_signature(SECRET, "9" * 5000, body, header)
    assert not verify_signature(SECRET, ts, body, "sha256=\u00e9" * 9)  # non-ASCII: refused, no TypeError


def test_410_gone_and_other_4xx_fail_at_once(receiver: Receiver, clock: Clock, run: Any) -> None:
    gone = WebhookConfig(name="gone", url=receiver.url("/gone"), secret=SECRET)
    bad = WebhookConfig(name="bad", url=receiver.url("/bad"), secret=SECRET)
    queue(clock, [gone], ended_event())
    receiver.script = [(410, {}, 0.0)]
    run([gone, bad])
    wait_for(lambda: row("gone").status == "failed")
    assert (
        "answered 410 Gone" in row("gone").last_error and "fix or remove the hook" in row("gone").last_error
    )
    receiver.script = [(422, {}, 0.0)]
    queue(clock, [bad], ended_event())
    wait_for(lambda: row("bad").status == "failed")
    assert row("bad").attempts == 1 and "422 Unprocessable Entity" in row("bad").last_error
    assert len(receiver.received) == 2


def test_redirects_are_not_followed(receiver: Receiver, clock: Clock, run: Any) -> None:
    hook = WebhookConfig(name="moved", url=receiver.url(), secret=SECRET)
    receiver.script = [(301, {"Location": "https://elsewhere.example.com/in"}, 0.0)]
    queue(clock, [hook], ended_event())
    run([hook])
    wait_for(lambda: row("moved").status == "failed")
    assert "redirects to elsewhere.example.com" in row("moved").last_error and len(receiver.received) == 1


def test_429_timeouts_and_refused_connections_are_retried_without_showing_the_url(
    receiver: Receiver, clock: Clock, run: Any
) -> None:
    busy = WebhookConfig(name="busy", url=receiver.url("/t/s3cr3t-busy"), secret=SECRET)
    slow = WebhookConfig(name="slow", url=receiver.url("/t/s3cr3t-slow"), secret=SECRET)
    closed = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    closed.server_close()  # a port where nobody listens any more
    down = WebhookConfig(
        name="down", url=f"http://127.0.0.1:{closed.server_address[1]}/t/s3cr3t-down", secret=SECRET
    )
    receiver.script = [(429, {"Retry-After": "3600"}, 0.0), (200, {}, 2.0)]
    queue(clock, [busy], ended_event())
    run([busy, slow, down], timeout=0.5)
    wait_for(lambda: row("busy").last_error is not None)
    queue(clock, [slow, down], ended_event())
    wait_for(lambda: all(r.last_error for r in OutboxItem.select()))
    assert row("busy").next_at == clock() + timedelta(seconds=3600)
    assert row("slow").last_error == "webhook slow: no answer within 0.5 s"
    assert row("down").last_error.startswith("webhook down: cannot connect to 127.0.0.1 (")
    for r in OutboxItem.select():
        assert r.status == "pending" and "s3cr3t" not in r.last_error
