"""The caller directory with fake CRMs (classes that record what they were asked) over MemoryCache
with a hand-moved clock: CRM order, caching rules, invalidation, single-flight."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence

import pytest

from pbxlink.cache import MemoryCache
from pbxlink.domain.crm import Contact, CrmAuthError, CrmUnavailable, Deal
from pbxlink.domain.phone import PhoneNumbers, PhoneQuery
from pbxlink.services.directory import CallerDirectory, LookupResult, _FailureLog

PHONES = PhoneNumbers("US")
JANE = Contact(
    crm="hub",
    id="7",
    name="Jane Doe",
    company="Acme",
    owner="sam@acme.test",
    owner_extension="201",
    url="https://crm.test/contacts/7",
    phones=("+14155552671",),
    deals=(Deal("Renewal", "$1,200.00", "proposal", "https://crm.test/deals/1"),),
)
JOHN = Contact(crm="hub", id="8", name="John Doe")
BOB = Contact(crm="pipe", id="3", name="Bob Roe", kind="person")
NUMBER = "+14155552671"
OTHER = "+14155550000"


class FakeCrm:
    """Answers from a table keyed by E.164, or raises `error`; records every number it was asked."""

    kind = "fake"

    def __init__(
        self,
        name: str,
        contacts: dict[str, Sequence[Contact]] | None = None,
        error: Exception | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.name = name
        self.contacts = contacts or {}
        self.error = error
        self.gate = gate
        self.asked: list[str] = []
        self._lock = threading.Lock()

    def find_contacts(self, number: PhoneQuery) -> list[Contact]:
        with self._lock:
            self.asked.append(number.key)
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        if self.error is not None:
            raise self.error
        return list(self.contacts.get(number.key, ()))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> MemoryCache:
    return MemoryCache(clock=clock)


def directory(cache: MemoryCache, *crms: FakeCrm) -> CallerDirectory:
    return CallerDirectory(crms, cache, PHONES, ttl=300, negative_ttl=60)


def test_the_first_crm_with_contacts_wins_in_config_order(cache: MemoryCache) -> None:
    empty = FakeCrm("empty")
    hub = FakeCrm("hub", {NUMBER: [JANE, JOHN]})
    pipe = FakeCrm("pipe", {NUMBER: [BOB]})
    result = directory(cache, empty, hub, pipe).lookup("(415) 555-2671")
    assert result.contacts == (JANE, JOHN)
    assert result.best == JANE
    assert (result.number, result.key, result.errors, result.cached) == ("(415) 555-2671", NUMBER, (), False)
    assert (empty.asked, hub.asked, pipe.asked) == ([NUMBER], [NUMBER], [])


def test_failures_are_collected_and_the_next_crm_is_asked(
    cache: MemoryCache, caplog: pytest.LogCaptureFixture
) -> None:
    down = FakeCrm("down", error=CrmUnavailable("down: GET /search: no answer within 5 s"))
    badkey = FakeCrm("badkey", error=CrmAuthError("401 Unauthorized"))
    pipe = FakeCrm("pipe", {NUMBER: [BOB]})
    result = directory(cache, down, badkey, pipe).lookup(NUMBER)
    assert result.contacts == (BOB,)
    assert result.errors == ("down: GET /search: no answer within 5 s", "badkey: 401 Unauthorized")
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(logged) == 2
    assert "CRM down" in logged[0] and "check that the CRM is up" in logged[0]
    assert "CRM badkey" in logged[1] and "check its API key" in logged[1]


def test_a_connector_bug_is_one_crm_failing_not_the_lookup(
    cache: MemoryCache, caplog: pytest.LogCaptureFixture
) -> None:
    buggy = FakeCrm("buggy", error=KeyError("results"))
    hub = FakeCrm("hub", {NUMBER: [JANE]})
    result = directory(cache, buggy, hub).lookup(NUMBER)
    assert result.contacts == (JANE,)
    assert result.errors == ("buggy: unexpected error (KeyError: 'results')",)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None and "bug in its connector" in errors[0].message


def test_a_failing_crm_is_logged_once_a_minute_not_per_call(
    cache: MemoryCache, caplog: pytest.LogCaptureFixture
) -> None:
    down = FakeCrm("down", error=CrmUnavailable("down: connection refused"))
    crm_directory = directory(cache, down)
    for _ in range(5):
        assert crm_directory.lookup(NUMBER).errors == ("down: connection refused",)
    assert len(down.asked) == 5  # never cached: every call asks again
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_the_next_report_counts_the_failures_it_kept_quiet(caplog: pytest.LogCaptureFixture) -> None:
    failures = _FailureLog(interval=0.2)
    error = CrmUnavailable("down: connection refused")
    for _ in range(3):
        assert failures.record("down", NUMBER, error) == "down: connection refused"
    time.sleep(0.3)
    failures.record("down", NUMBER, error)
    failures.record("other", NUMBER, error)  # another CRM has its own quota
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 3
    assert "(2 more failures since the last report)" in logged[1]
    assert "more failures" not in logged[2]


def test_found_contacts_are_cached_for_the_ttl(cache: MemoryCache, clock: Clock) -> None:
    hub = FakeCrm("hub", {NUMBER: [JANE]})
    crm_directory = directory(cache, hub)
    first = crm_directory.lookup(NUMBER)
    clock.now += 299
    again = crm_directory.lookup("1 415 555 2671")
    assert again.cached and again.contacts == (JANE,)  # the deal and every field survive the JSON
    assert (again.number, again.looked_up_at) == ("1 415 555 2671", first.looked_up_at)
    assert crm_directory.cached("415-555-2671") == LookupResult(
        "415-555-2671", NUMBER, (JANE,), (), True, first.looked_up_at
    )
    assert hub.asked == [NUMBER]
    clock.now += 2
    assert not crm_directory.lookup(NUMBER).cached
    assert hub.asked == [NUMBER, NUMBER]


def test_nobody_is_cached_for_the_negative_ttl(cache: MemoryCache, clock: Clock) -> None:
    hub, pipe = FakeCrm("hub"), FakeCrm("pipe")
    crm_directory = directory(cache, hub, pipe)
    assert crm_directory.lookup(NUMBER).contacts == ()
    clock.now += 59
    cached = crm_directory.lookup(NUMBER)
    assert cached.cached and cached.contacts == () and cached.best is None
    assert (hub.asked, pipe.asked) == ([NUMBER], [NUMBER])
    clock.now += 2
    assert not crm_directory.lookup(NUMBER).cached
    assert (hub.asked, pipe.asked) == ([NUMBER] * 2, [NUMBER] * 2)


def test_a_failure_is_not_cached_as_nobody(cache: MemoryCache) -> None:
    """The CRM that was down may know the caller: the next call asks every CRM again."""
    down = FakeCrm("down", error=CrmUnavailable("down: 503 Service Unavailable"))
    pipe = FakeCrm("pipe")
    crm_directory = directory(cache, down, pipe)
    assert crm_directory.lookup(NUMBER).errors == ("down: 503 Service Unavailable",)
    assert crm_directory.cached(NUMBER) is None
    crm_directory.lookup(NUMBER)
    assert (down.asked, pipe.asked) == ([NUMBER] * 2, [NUMBER] * 2)
    down.error = None
    down.contacts = {NUMBER: [JANE]}
    assert crm_directory.lookup(NUMBER).contacts == (JANE,)


def test_when_every_crm_fails_nothing_is_cached(cache: MemoryCache) -> None:
    crms = [FakeCrm(name, error=CrmUnavailable(f"{name}: timeout")) for name in ("a", "b")]
    result = directory(cache, *crms).lookup(NUMBER)
    assert (result.contacts, result.errors) == ((), ("a: timeout", "b: timeout"))
    assert directory(cache, *crms).cached(NUMBER) is None


def test_found_after_a_failure_is_kept_only_briefly(cache: MemoryCache, clock: Clock) -> None:
    """A lower CRM's contact while the preferred CRM is down: shown, but the preferred CRM is asked
    again after the negative TTL rather than the full TTL."""
    down = FakeCrm("down", error=CrmUnavailable("down: timeout"))
    pipe = FakeCrm("pipe", {NUMBER: [BOB]})
    crm_directory = directory(cache, down, pipe)
    crm_directory.lookup(NUMBER)
    clock.now += 59
    cached = crm_directory.lookup(NUMBER)
    assert cached.cached and cached.contacts == (BOB,) and cached.errors == ("down: timeout",)
    clock.now += 2
    assert not crm_directory.lookup(NUMBER).cached
    assert len(down.asked) == 2


def test_not_a_phone_number_asks_nobody(cache: MemoryCache) -> None:
    hub = FakeCrm("hub")
    crm_directory = directory(cache, hub)
    for number in ("anonymous", "201", "", "4567"):
        result = crm_directory.lookup(number)
        assert (result.number, result.key, result.contacts, result.cached) == (number, None, (), False)
        assert crm_directory.cached(number) is None
    assert hub.asked == []


def test_invalidate_a_number(cache: MemoryCache) -> None:
    hub = FakeCrm("hub", {NUMBER: [JANE]})
    crm_directory = directory(cache, hub)
    crm_directory.lookup(NUMBER)
    crm_directory.lookup(OTHER)
    assert crm_directory.invalidate("(415) 555-2671") == 1
    assert crm_directory.invalidate(NUMBER) == 0  # already gone
    assert crm_directory.invalidate("anonymous") == 0
    assert crm_directory.cached(NUMBER) is None
    assert crm_directory.cached(OTHER) is not None
    crm_directory.lookup(NUMBER)
    assert hub.asked == [NUMBER, OTHER, NUMBER]


def test_invalidate_a_contact_drops_every_number_showing_it_in_every_process(cache: MemoryCache) -> None:
    """A CRM's change notice for contact 7: both of Jane's numbers go, Bob's stays. Two directories
    on one cache stand for two processes on one Redis."""
    mobile = "+14155559999"
    hub = FakeCrm("hub", {NUMBER: [JANE], mobile: [JOHN, JANE]})
    pipe = FakeCrm("pipe", {OTHER: [BOB]})
    web, worker = directory(cache, hub, pipe), directory(cache, hub, pipe)
    web.lookup(NUMBER)
    worker.lookup(mobile)
    worker.lookup(OTHER)
    assert worker.invalidate(crm="hub", contact_id="7") == 2
    assert web.cached(NUMBER) is None and web.cached(mobile) is None
    assert web.cached(OTHER) is not None
    assert worker.invalidate(crm="hub", contact_id="7") == 0
    assert worker.invalidate(crm="pipe", contact_id="3") == 1
    with pytest.raises(ValueError):
        worker.invalidate(crm="hub")


def test_clear_drops_every_lookup(cache: MemoryCache) -> None:
    hub = FakeCrm("hub", {NUMBER: [JANE]})
    crm_directory = directory(cache, hub)
    crm_directory.lookup(NUMBER)
    crm_directory.lookup(OTHER)
    cache.set("session:abc", "not ours", 60)
    assert crm_directory.clear() == 3  # two numbers and Jane's reverse index entry
    assert crm_directory.cached(NUMBER) is None and crm_directory.cached(OTHER) is None
    assert cache.get("session:abc") == "not ours"


def test_entries_of_another_format_version_are_never_read(cache: MemoryCache) -> None:
    hub = FakeCrm("hub", {NUMBER: [JANE]})
    cache.set(f"lookup:v0:n:{NUMBER}", json.dumps({"name": "old shape"}), 60)
    cache.set(f"lookup:v1:n:{OTHER}", "{not json", 60)
    crm_directory = directory(cache, hub)
    assert crm_directory.lookup(NUMBER).contacts == (JANE,)
    assert not crm_directory.lookup(OTHER).cached  # unreadable: dropped and asked again
    assert hub.asked == [NUMBER, OTHER]


def test_one_crm_request_for_twenty_agents_rung_at_once(cache: MemoryCache) -> None:
    gate = threading.Event()
    hub = FakeCrm("hub", {NUMBER: [JANE]}, gate=gate)
    crm_directory = directory(cache, hub)
    asked_as = [NUMBER, "(415) 555-2671", "14155552671", "415.555.2671"] * 5
    results: dict[int, LookupResult] = {}
    start = threading.Barrier(len(asked_as) + 1)

    def ring(i: int) -> None:
        start.wait()
        results[i] = crm_directory.lookup(asked_as[i])

    threads = [threading.Thread(target=ring, args=(i,)) for i in range(len(asked_as))]
    for t in threads:
        t.start()
    start.wait()
    while not hub.asked:  # the leader is at the CRM; let the others pile up behind it
        time.sleep(0.01)
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join(10)
    assert hub.asked == [NUMBER]
    assert len(results) == 20
    assert all(r.contacts == (JANE,) for r in results.values())
    assert [results[i].number for i in range(20)] == asked_as


def test_to_dict_is_json_for_the_pop_page(cache: MemoryCache) -> None:
    down = FakeCrm("down", error=CrmUnavailable("down: timeout"))
    hub = FakeCrm("hub", {NUMBER: [JANE]})
    result = directory(cache, down, hub).lookup(NUMBER)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["number"] == data["key"] == NUMBER
    assert data["errors"] == ["down: timeout"]
    assert data["cached"] is False
    assert data["looked_up_at"] == result.looked_up_at.isoformat()
    assert [Contact.from_dict(c) for c in data["contacts"]] == [JANE]
