"""CRM call logging end to end: the real bus, call log and outbox; a CRM down for hours; a restart."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pbxlink.bus import InProcessBus
from pbxlink.domain.calls import CallEnded, CallRecord
from pbxlink.domain.crm import CallLogEntry, Contact, CrmUnavailable
from pbxlink.domain.phone import PhoneNumbers, PhoneQuery
from pbxlink.domain.ports import CheckResult
from pbxlink.services.call_log import call_log_handler
from pbxlink.services.crm_sync import crm_log_deliverer, crm_log_handler
from pbxlink.services.outbox import OutboxWorker
from pbxlink.storage import outbox
from pbxlink.storage.calls import CallFilter, search_calls
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import OutboxItem
from tests.unit.test_outbox_worker import Clock, wait_for

PHONES = PhoneNumbers(default_region="US")
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


class FakeCrm:
    """A Connector that records what it is asked, keeps one entry per key (as the real ones promise),
    and can be down (every request raises CrmUnavailable, as a refused connection does)."""

    kind = "fake"

    def __init__(self, name: str, contacts: dict[str, Contact] | None = None) -> None:
        self.name = name
        self.contacts = contacts or {}
        self.down = False
        self.entries: dict[str, CallLogEntry] = {}
        self.logged = Counter[str]()  # successful log_call requests per key
        self.failures = 0
        self.lock = threading.Lock()

    def _check_up(self, what: str) -> None:
        if self.down:
            with self.lock:
                self.failures += 1
            raise CrmUnavailable(f"{self.name}: {what}: cannot connect ([Errno 111] Connection refused)")

    def find_contacts(self, number: PhoneQuery) -> list[Contact]:
        self._check_up("GET /contacts/search")
        found = self.contacts.get(number.e164 or "")
        return [found] if found else []

    def log_call(self, entry: CallLogEntry) -> str:
        self._check_up("POST /calls")
        with self.lock:
            self.entries.setdefault(entry.key, entry)
            self.logged[entry.key] += 1
        return f"{self.name}-call-{entry.key}"

    def contact_url(self, contact_id: str) -> str:
        return f"https://crm.example.com/contacts/{contact_id}"

    def check(self) -> CheckResult:
        return CheckResult(not self.down, self.name)


def ended(i: int, **fields: Any) -> CallEnded:
    start = T0 + timedelta(minutes=i)
    answered = i % 3 != 0
    values: dict[str, Any] = {
        "direction": "inbound",
        "caller": f"(555) 010-{i:04d}",
        "caller_name": f"Caller {i}",
        "callee": "100",
        "agent": "201" if answered else None,
        "agents": ["201", "202"] if answered and i % 2 else (["201"] if answered else []),
        "answered_at": start + timedelta(seconds=8) if answered else None,
        "ended_at": start + timedelta(seconds=70),
        "disposition": "answered" if answered else "missed",
        "miss_reason": None if answered else "abandoned",
        "talk_seconds": 62.0 if answered else 0.0,
        "recording": f"/var/spool/rec/{i}.wav" if answered else None,
        **fields,
    }
    rec = CallRecord(pbx="main", call_id=f"17000{i:05d}.1", started_at=start, **values)
    return CallEnded(at=rec.ended_at or start, call=rec)


class Site:
    """pbxlink's CRM side as `run` wires it: bus, call log, CRM sync handler, one outbox worker."""

    def __init__(self, db_path: Path, crms: list[FakeCrm]) -> None:
        self.database = connect(f"sqlite:///{db_path}")
        migrate(self.database)
        self.clock = Clock()
        self.crms = crms
        self.bus = InProcessBus()
        self.bus.subscribe("call-log", call_log_handler())
        self.worker = self.new_worker()

        def enqueue(kind: str, target: str, key: str, payload: dict[str, Any]) -> bool:
            return outbox.enqueue(kind, target, key, payload, now=self.clock())

        handler = crm_log_handler(
            [c.name for c in crms], enqueue, lambda: self.worker.notify(), phones=PHONES
        )
        self.bus.subscribe("crm-sync", handler)

    def new_worker(self) -> OutboxWorker:
        deliver = crm_log_deliverer({c.name: c for c in self.crms}, PHONES, recording_url)
        worker = OutboxWorker({"crm_log": deliver}, poll_s=0.05, clock=self.clock)
        worker.start()
        return worker

    def restart_worker(self) -> None:
        self.worker.stop()
        self.worker = self.new_worker()

    def later(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.worker.notify()

    def close(self) -> None:
        self.worker.stop()
        self.bus.close()
        self.database.close()


def recording_url(rec: CallRecord) -> str | None:
    return f"https://pbx.example.com/recordings/{rec.pbx}/{rec.call_id}" if rec.recording else None


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    alice = Contact(crm="crm-a", id="c-42", name="Alice Example", owner="bob@example.com")
    s = Site(tmp_path / "pbxlink.db", [FakeCrm("crm-a", {"+15550100007": alice}), FakeCrm("crm-b")])
    yield s
    s.close()


def settled() -> bool:
    """No delivery in flight: every outcome so far is recorded (with the clock of its moment)."""
    return not OutboxItem.select().where(OutboxItem.claimed_until.is_null(False)).exists()


def pending(target: str) -> int:
    return int(OutboxItem.select().where(OutboxItem.target == target, OutboxItem.status == "pending").count())


def test_calls_ended_during_a_crm_outage_are_each_logged_once_after_it_returns(site: Site) -> None:
    a, b = site.crms
    a.down = True
    events = [ended(i) for i in range(1, 51)]
    for ev in events:
        site.bus.publish(ev)
    internal = ended(60, direction="internal", caller="201", callee="202")
    anonymous = ended(61, caller="anonymous")
    site.bus.publish(internal)
    site.bus.publish(anonymous)

    wait_for(lambda: len(b.entries) == 50)  # the other CRM is not held up by the outage
    wait_for(lambda: a.failures >= 1 and settled())
    assert pending("crm-a") == 50 and not a.entries
    wait_for(lambda: search_calls(CallFilter(), limit=1)[1] == 52)  # the call log has every call meanwhile

    for hour in range(1, 5):  # hours of outage, with a pbxlink restart in the middle
        failures = a.failures
        site.later(3600)
        wait_for(lambda f=failures: a.failures > f and settled())
        if hour == 2:
            site.restart_worker()
    assert not a.entries and pending("crm-a") == 50
    retrying, total = outbox.page("retrying", 100)
    assert total >= 4 and all(
        "crm-a: " in r.last_error and "Connection refused" in r.last_error for r in retrying
    )

    a.down = False
    site.later(3600)
    wait_for(lambda: outbox.depth() == 0)
    keys = {f"main:{ev.call.call_id}" for ev in events}
    for crm in (a, b):
        assert set(crm.entries) == keys and set(crm.logged.values()) == {1}  # each once, none twice
    assert OutboxItem.select().where(OutboxItem.status == "done").count() == 100

    site.bus.publish(events[6])  # a replayed CallEnded (a resync after a reconnect)
    site.bus.close()  # returns once every subscriber has handled it
    assert OutboxItem.select().count() == 100 and set(a.logged.values()) == {1}

    missed, seven = a.entries[f"main:{events[2].call.call_id}"], a.entries[f"main:{events[6].call.call_id}"]
    assert (seven.number, seven.contact_id, seven.owner, seven.caller_name) == (
        "+15550100007",
        "c-42",
        "bob@example.com",
        "Caller 7",
    )
    assert (seven.direction, seven.disposition, seven.duration_s, seven.agent) == (
        "inbound",
        "answered",
        62.0,
        "202",
    )
    assert seven.recording_url == "https://pbx.example.com/recordings/main/1700000007.1"
    assert seven.started_at == T0 + timedelta(minutes=7)
    assert (missed.disposition, missed.miss_reason, missed.duration_s, missed.agent) == (
        "missed",
        "abandoned",
        0,
        None,
    )
    assert missed.contact_id is None and missed.recording_url is None
    assert b.entries[seven.key].contact_id is None  # looked up in THAT crm, which does not know her


def test_an_outbound_call_is_logged_under_the_number_dialled(site: Site) -> None:
    a, _ = site.crms
    site.bus.publish(
        ended(7, direction="outbound", caller="201", caller_name="Agent 201", callee="5550100007")
    )
    wait_for(lambda: len(a.entries) == 1)
    entry = next(iter(a.entries.values()))
    assert (entry.direction, entry.number, entry.contact_id, entry.caller_name) == (
        "outbound",
        "+15550100007",
        "c-42",
        None,  # the agent's own caller ID name is not the customer's
    )
