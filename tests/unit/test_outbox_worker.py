"""The outbox worker over a real SQLite outbox, with hand-written deliverers and an injected clock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pbxlink.domain.crm import CrmAuthError, CrmUnavailable
from pbxlink.services.outbox import DeliveryError, OutboxWorker
from pbxlink.storage import outbox
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import OutboxItem

QUIET = 0.3  # seconds given to a worker to (wrongly) do something; a loaded machine only weakens the check


def wait_for(cond: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Receiver:
    """A target that keeps one entry per key, as every real deliverer's target does, and records each call.

    `errors` are raised by the next calls, in order; while `hold` is set, calls wait for its release.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.entries: dict[str, dict[str, Any]] = {}
        self.errors: list[Exception] = []
        self.hold: threading.Event | None = None
        self.lock = threading.Lock()

    def __call__(self, payload: dict[str, Any], target: str, key: str) -> str | None:
        with self.lock:
            self.calls.append(key)
            hold, error = self.hold, self.errors.pop(0) if self.errors else None
        if hold is not None:
            hold.wait(30)
        if error is not None:
            raise error
        with self.lock:
            self.entries.setdefault(key, payload)
        return f"entry-{key}"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[None]:
    database = connect(f"sqlite:///{tmp_path}/pbxlink.db")
    migrate(database)
    yield
    database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def workers() -> Iterator[list[OutboxWorker]]:
    started: list[OutboxWorker] = []
    yield started
    for w in started:
        w.stop()


def start(workers: list[OutboxWorker], deliverers: dict[str, Any], clock: Clock, **kw: Any) -> OutboxWorker:
    worker = OutboxWorker(deliverers, poll_s=0.05, clock=clock, **kw)
    worker.start()
    workers.append(worker)
    return worker


def row(key: str) -> OutboxItem:
    return OutboxItem.get(OutboxItem.key == key)


def put(clock: Clock, key: str, target: str = "crm", kind: str = "crm_log") -> None:
    assert outbox.enqueue(kind, target, key, {"key": key}, now=clock())


@pytest.mark.usefixtures("db")
def test_due_rows_are_delivered_and_marked_done(clock: Clock, workers: list[OutboxWorker]) -> None:
    receiver = Receiver()
    for key in ("a", "b", "c"):
        put(clock, key)
    start(workers, {"crm_log": receiver}, clock)
    wait_for(lambda: outbox.depth() == 0)
    assert sorted(receiver.entries) == ["a", "b", "c"] and receiver.entries["a"] == {"key": "a"}
    assert [(r.status, r.result, r.attempts) for r in OutboxItem.select().order_by(OutboxItem.key)] == [
        ("done", f"entry-{k}", 1) for k in "abc"
    ]


@pytest.mark.usefixtures("db")
def test_retryable_failures_follow_the_schedule_then_give_up(
    clock: Clock, workers: list[OutboxWorker], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver()
    receiver.errors = [CrmUnavailable("crm: GET /contacts: no answer within 5 s")] * 4
    t0 = clock()
    put(clock, "main:1.1")
    worker = start(workers, {"crm_log": receiver}, clock, schedule=(10, 30, 60), give_up_after=100)
    with caplog.at_level(logging.WARNING, logger="pbxlink.services.outbox"):
        for attempt, (wait, next_in) in enumerate(((0, 10), (10, 40), (30, 100)), 1):
            clock.advance(wait)
            worker.notify()
            wait_for(
                lambda a=attempt: row("main:1.1").attempts == a and row("main:1.1").claimed_until is None
            )
            assert row("main:1.1").next_at == t0 + timedelta(seconds=next_in)
            assert row("main:1.1").last_error == "crm: GET /contacts: no answer within 5 s"
        clock.advance(59)  # one second early: not tried
        worker.notify()
        time.sleep(QUIET)
        assert len(receiver.calls) == 3
        clock.advance(1)
        worker.notify()
        wait_for(lambda: row("main:1.1").status == "failed")  # retrying once more would pass 100 s
    assert len(receiver.calls) == 4 and row("main:1.1").attempts == 4
    retry, *_, gave_up = [r.getMessage() for r in caplog.records]
    assert "CRM call log to crm, key main:1.1, attempt 1 failed: crm: GET /contacts: no answer" in retry
    assert "next try" in retry and "(in 10 s)" in retry and "Admin > Deliveries" in retry
    assert (
        "CRM call log to crm, key main:1.1, attempt 4 failed, gave up after retrying for 100 s: crm:"
        in gave_up
    )
    assert gave_up.endswith("when crm works again press Retry on Admin > Deliveries")


@pytest.mark.usefixtures("db")
def test_retry_after_is_honoured_for_the_row_and_holds_the_target_back(
    clock: Clock, workers: list[OutboxWorker]
) -> None:
    receiver = Receiver()
    receiver.errors = [CrmUnavailable("crm: 429 Too Many Requests", retry_after=600)]
    put(clock, "first")
    clock.advance(1)
    put(clock, "second")
    t0 = clock()
    worker = start(workers, {"crm_log": receiver}, clock, threads=1)
    wait_for(lambda: row("first").last_error is not None)
    assert row("first").next_at == t0 + timedelta(seconds=600)  # not the schedule's 10 s
    clock.advance(300)
    worker.notify()
    time.sleep(QUIET)
    assert receiver.calls == ["first"]  # "second" is due, but the CRM asked for 10 minutes of quiet
    clock.advance(300)
    worker.notify()
    wait_for(lambda: outbox.depth() == 0)
    assert sorted(receiver.entries) == ["first", "second"]


@pytest.mark.usefixtures("db")
def test_a_shorter_retry_after_does_not_shorten_the_schedule(
    clock: Clock, workers: list[OutboxWorker]
) -> None:
    receiver = Receiver()
    receiver.errors = [CrmUnavailable("crm: 503", retry_after=2)]
    put(clock, "k")
    start(workers, {"crm_log": receiver}, clock)
    wait_for(lambda: row("k").last_error is not None)
    assert row("k").next_at == clock() + timedelta(seconds=10)


@pytest.mark.usefixtures("db")
def test_connection_errors_are_retried(clock: Clock, workers: list[OutboxWorker]) -> None:
    receiver = Receiver()
    receiver.errors = [ConnectionRefusedError(111, "Connection refused")]
    put(clock, "k")
    worker = start(workers, {"crm_log": receiver}, clock)
    wait_for(lambda: row("k").last_error is not None)
    assert row("k").status == "pending" and "Connection refused" in row("k").last_error
    clock.advance(10)
    worker.notify()
    wait_for(lambda: row("k").status == "done")


@pytest.mark.usefixtures("db")
def test_errors_that_are_not_retryable_fail_at_once_until_an_admin_retries(
    clock: Clock, workers: list[OutboxWorker], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver()
    receiver.errors = [
        CrmAuthError("crm: POST /calls: 401 Unauthorized (check the API key/token and its permissions)"),
        DeliveryError("webhook h: the receiver answered 404 Not Found", retryable=False),
        KeyError("call_id"),
    ]
    for key in ("auth", "gone", "bug"):
        put(clock, key)
    worker = start(workers, {"crm_log": receiver}, clock, threads=1)  # one at a time: errors in order
    with caplog.at_level(logging.ERROR, logger="pbxlink.services.outbox"):
        wait_for(lambda: outbox.page("failed", 10)[1] == 3)
    assert [(r.key, r.attempts) for r in outbox.page("failed", 10)[0]] == [
        ("bug", 1),
        ("gone", 1),
        ("auth", 1),
    ]
    assert row("auth").last_error.endswith("401 Unauthorized (check the API key/token and its permissions)")
    assert row("bug").last_error == "KeyError: 'call_id'"
    assert len(caplog.records) == 3 and "will not be retried" in caplog.records[0].getMessage()
    assert caplog.records[2].exc_info is not None  # a bug gets its traceback in the log
    assert receiver.entries == {}

    assert outbox.retry_failed(now=clock()) == 3  # the admin fixed the key and pressed "retry all"
    worker.notify()
    wait_for(lambda: outbox.depth() == 0)
    assert sorted(receiver.entries) == ["auth", "bug", "gone"]


@pytest.mark.usefixtures("db")
def test_a_slow_target_holds_up_neither_the_others_nor_more_than_its_threads(
    clock: Clock, workers: list[OutboxWorker]
) -> None:
    slow, fast, hooks = Receiver(), Receiver(), Receiver()
    slow.hold = threading.Event()
    for i in range(5):
        put(clock, f"s{i}", target="slow")
    for i in range(3):
        put(clock, f"f{i}", target="fast")
        put(clock, f"w{i}", target="hook", kind="webhook")

    def crm(payload: dict[str, Any], target: str, key: str) -> str | None:
        return (slow if target == "slow" else fast)(payload, target, key)

    start(workers, {"crm_log": crm, "webhook": hooks}, clock, threads=2)
    wait_for(lambda: len(fast.entries) == 3 and len(hooks.entries) == 3)
    time.sleep(QUIET)
    assert len(slow.calls) == 2 and not slow.entries  # two threads for it, both waiting on the CRM
    slow.hold.set()
    wait_for(lambda: outbox.depth() == 0)
    assert sorted(slow.entries) == [f"s{i}" for i in range(5)]


@pytest.mark.usefixtures("db")
def test_a_restart_mid_delivery_delivers_again_after_the_lease_and_the_target_keeps_one_entry(
    clock: Clock, workers: list[OutboxWorker]
) -> None:
    receiver = Receiver()
    receiver.hold = stuck = threading.Event()
    put(clock, "main:7.7")
    first = start(workers, {"crm_log": receiver}, clock, lease_s=60, stop_timeout=0.2)
    wait_for(lambda: receiver.calls == ["main:7.7"])
    first.stop()  # pbxlink stops while the CRM has not answered: nothing is recorded
    assert row("main:7.7").status == "pending" and row("main:7.7").claimed_until is not None

    receiver.hold = None
    second = start(workers, {"crm_log": receiver}, clock, lease_s=60)
    time.sleep(QUIET)
    assert receiver.calls == ["main:7.7"]  # still leased by the stopped worker
    clock.advance(61)
    second.notify()
    wait_for(lambda: row("main:7.7").status == "done")
    assert receiver.calls == ["main:7.7", "main:7.7"] and row("main:7.7").attempts == 2

    stuck.set()  # the first delivery finally gets its answer too
    wait_for(lambda: len(receiver.entries) == 1 and receiver.lock.acquire(timeout=1))
    receiver.lock.release()
    assert list(receiver.entries) == ["main:7.7"] and row("main:7.7").status == "done"
