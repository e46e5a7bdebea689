"""The outbox worker: delivers the outbox's rows (CRM call logs, webhooks) and records what happened.

One thread claims due rows (woken at once by `notify()` after an enqueue, else every
`poll_s`) and hands each to a short-lived delivery thread; each (kind, target) may have
at most `threads` deliveries in flight, so a slow CRM holds up neither the webhooks nor
another CRM. Outcomes come back to the claiming thread, the only one that writes:

- success: done;
- a retryable error (`retryable` true on the exception, as `CrmError`s say; a connection
  error or timeout): tried again per `schedule` (or after the Retry-After a target asked
  for, when longer) until retrying would take longer than `give_up_after`, then failed;
- anything else (a bad key, a 4xx, a bug): failed at once, for an admin to fix and retry.

A restart mid-delivery leaves the row claimed until its lease runs out; then it is
delivered again. Every deliverer is therefore idempotent by the row's key (a CRM's
call log keyed by the call, a webhook's X-Pbxlink-Delivery header).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee as pw

from pbxlink.storage import outbox
from pbxlink.storage.database import RETRY_DELAYS, drop_connection, first_line, retry_briefly
from pbxlink.storage.models import OutboxItem

log = logging.getLogger(__name__)

#: (payload, target, key) -> the target's id for what was delivered, if it gives one
Deliver = Callable[[dict[str, Any], str, str], str | None]
#: (kind, target, key, payload) -> whether a row was added (storage.outbox.enqueue)
Enqueue = Callable[[str, str, str, dict[str, Any]], bool]

DEFAULT_SCHEDULE: tuple[float, ...] = (10.0, 30.0, 120.0, 300.0, 900.0, 1800.0)
DEFAULT_GIVE_UP_AFTER = 3 * 86400.0
KIND_NAMES = {"crm_log": "CRM call log", "webhook": "webhook"}
PANEL = "Admin > Deliveries"  # where an admin sees failures and retries them


class DeliveryError(Exception):
    """A delivery failed in a way the deliverer can classify; the message is one line, without secrets."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def enqueue_all(
    enqueue: Enqueue,
    items: Sequence[tuple[str, str, str, dict[str, Any]]],
    what: str,
    retry_delays: tuple[float, ...] = RETRY_DELAYS,
) -> int:
    """Enqueue `items` (kind, target, key, payload), retrying a briefly unavailable database, as the
    call log does: a lost enqueue is a lost delivery. Raises once retries run out; how many were new."""
    # enqueue is idempotent: the rows added before an error stay one each
    return retry_briefly(
        lambda: sum(enqueue(*item) for item in items), f"outbox: could not queue {what}", log, retry_delays
    )


@dataclass(frozen=True)
class _Outcome:
    item: OutboxItem
    result: str | None = None
    error: Exception | None = None


class OutboxWorker:
    """Delivers the outbox rows of the kinds in `deliverers` ({"crm_log": …, "webhook": …})."""

    def __init__(
        self,
        deliverers: Mapping[str, Deliver],
        *,
        poll_s: float = 1.0,
        lease_s: float = 120.0,
        threads: int = 4,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        schedule: Sequence[float] = DEFAULT_SCHEDULE,
        give_up_after: float = DEFAULT_GIVE_UP_AFTER,
        stop_timeout: float = 10.0,
        keep_done_s: float = 30 * 86400.0,
    ) -> None:
        if not schedule or threads < 1:
            raise ValueError("OutboxWorker needs a non-empty schedule and at least one thread")
        self.deliverers = dict(deliverers)
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.threads = threads
        self.clock = clock
        self.schedule = tuple(schedule)
        self.give_up_after = give_up_after
        self.stop_timeout = stop_timeout
        self.keep_done_s = keep_done_s
        self._next_purge = 0.0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._outcomes: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self._paused_until: dict[tuple[str, str], datetime] = {}
        self._thread: threading.Thread | None = None

    # --- the thread --------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """Something was enqueued: look for due rows now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; wait up to `stop_timeout` for the deliveries in flight and record them.
        Any still running after that are delivered again once their lease runs out."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(self.stop_timeout + 5.0)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._record_outcomes()
                claimed = self._claim()
                self._purge()
            except Exception:  # a bug must not end deliveries for good: say so, and carry on
                log.exception("outbox: unexpected error; carrying on in %g s", self.poll_s)
                claimed = 0
            if not claimed:
                self._wake.wait(self.poll_s)
        deadline = time.monotonic() + self.stop_timeout
        while sum(self._in_flight.values()) and time.monotonic() < deadline:
            self._wake.wait(0.1)
            self._wake.clear()
            self._record_outcomes()
        if left_over := sum(self._in_flight.values()):
            log.warning(
                "outbox: stopped with %d deliveries still running; they are delivered again when their "
                "lease (%g s) runs out, which their idempotency keys make harmless",
                left_over,
                self.lease_s,
            )
        drop_connection()

    def _claim(self) -> int:
        """Claim due rows for every (kind, target) with room; how many were handed to delivery threads."""
        now = self.clock()
        started = 0
        try:
            for kind, target in outbox.due_targets(now, list(self.deliverers)):
                lane = (kind, target)
                room = self.threads - self._in_flight[lane]
                if room <= 0 or self._paused_until.get(lane, now) > now:
                    continue
                for item in outbox.claim_due(now, room, self.lease_s, kind=kind, target=target):
                    self._in_flight[lane] += 1
                    started += 1
                    name = f"outbox-{kind}-{target}-{item.id}"
                    threading.Thread(target=self._deliver, args=(item,), name=name, daemon=True).start()
        except pw.PeeweeException as exc:
            log.warning(
                "outbox: cannot read the queue: %s; trying again in %g s (is the database up?)",
                first_line(exc),
                self.poll_s,
            )
            drop_connection()
        return started

    def _purge(self) -> None:
        """Hourly: forget rows delivered more than `keep_done_s` ago, so the table does not grow for ever."""
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + 3600.0
        if purged := outbox.purge_done(self.clock() - timedelta(seconds=self.keep_done_s)):
            log.info("outbox: forgot %d deliveries done more than %s ago", purged, _span(self.keep_done_s))

    def _deliver(self, item: OutboxItem) -> None:
        """In a delivery thread: no database here, only the deliverer and the outcome."""
        try:
            result = self.deliverers[item.kind](json.loads(item.payload), item.target, item.key)
        except Exception as exc:
            self._outcomes.put(_Outcome(item, error=exc))
        else:
            self._outcomes.put(_Outcome(item, result=result))
        self._wake.set()

    # --- outcomes ----------------------------------------------------------------------------

    def _record_outcomes(self) -> None:
        while True:
            try:
                outcome = self._outcomes.get_nowait()
            except queue.Empty:
                return
            item = outcome.item
            self._in_flight[(item.kind, item.target)] -= 1
            try:
                self._record(outcome)
            except pw.PeeweeException as exc:
                log.warning(
                    "outbox: could not record the outcome of %s: %s; it is delivered again when its lease "
                    "runs out (harmless: idempotent by key)",
                    _what(item),
                    first_line(exc),
                )
                drop_connection()

    def _record(self, outcome: _Outcome) -> None:
        item, exc, lane = outcome.item, outcome.error, (outcome.item.kind, outcome.item.target)
        if exc is None:
            self._paused_until.pop(lane, None)
            outbox.done(item.id, outcome.result, now=self.clock())
            log.debug("outbox: %s delivered (%s)", _what(item), outcome.result)
            return
        (retryable, retry_after), error = classify(exc), describe(exc)
        if not retryable or self.retrying_for(item.attempts + 1) > self.give_up_after:
            outbox.fail(item.id, error)
            if retryable:
                why = f"gave up after retrying for {_span(self.retrying_for(item.attempts))}"
                hint = f"when {item.target} works again"
            else:
                why, hint = "will not be retried", "fix the cause (key, permissions, URL, receiver), then"
            trace = None if _expected(exc) else exc
            log.error(
                "outbox: %s failed, %s: %s; %s press Retry on %s",
                _what(item),
                why,
                error,
                hint,
                PANEL,
                exc_info=trace,
            )
            return
        now = self.clock()
        delay = max(self.delay(item.attempts), retry_after or 0.0)
        next_at = now + timedelta(seconds=delay)
        outbox.retry_later(item.id, error, next_at)
        # The target is likely down for everyone: hold its other rows back for a moment (or as long
        # as it asked), so an outage costs a few probes per round instead of one per queued row.
        hold = now + timedelta(seconds=max(self.schedule[0], retry_after or 0.0))
        self._paused_until[lane] = max(self._paused_until.get(lane, hold), hold)
        when = next_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        log.warning(
            "outbox: %s failed: %s; next try %s (in %s); nothing to do if %s comes back, else see %s",
            _what(item),
            error,
            when,
            _span(delay),
            item.target,
            PANEL,
        )

    def delay(self, attempts: int) -> float:
        """Seconds to wait after failed attempt number `attempts` (1-based)."""
        return self.schedule[min(max(attempts, 1), len(self.schedule)) - 1]

    def retrying_for(self, attempts: int) -> float:
        """Seconds from the first failed attempt to attempt number `attempts`, by the schedule."""
        steps = max(attempts - 1, 0)
        listed = self.schedule[:steps]
        return sum(listed) + max(steps - len(listed), 0) * self.schedule[-1]


def classify(exc: BaseException) -> tuple[bool, float | None]:
    """(retryable, seconds the target asked us to wait). Connection errors and timeouts (requests'
    included: they are OSErrors) are retryable; an error saying `retryable` decides for itself."""
    flag = getattr(exc, "retryable", None)
    retryable = flag if isinstance(flag, bool) else isinstance(exc, OSError)
    retry_after = getattr(exc, "retry_after", None)
    return retryable, float(retry_after) if isinstance(retry_after, int | float) else None


def describe(exc: BaseException) -> str:
    """One line for the panel and the log: the message of an error we raise, else its type too."""
    text = outbox.one_line(str(exc))
    if _expected(exc) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _expected(exc: BaseException) -> bool:
    return isinstance(getattr(exc, "retryable", None), bool) or isinstance(exc, OSError)


def _what(item: OutboxItem) -> str:
    return f"{KIND_NAMES.get(item.kind, item.kind)} to {item.target}, key {item.key}, attempt {item.attempts}"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
