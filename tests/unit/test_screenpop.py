"""Screen-pops: the service and its hub with a fake contact source, and the pop page's stream and rules."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from pbxlink.web import create_app, pops
from pbxlink.web.auth import PanelUser

from pbxlink.config import Config, DatabaseConfig, WebConfig
from pbxlink.domain.calls import (
    CallAnswered,
    CallEnded,
    CallRecord,
    CallRingEnded,
    CallRinging,
    CallUpdated,
)
from pbxlink.domain.crm import Contact, Deal
from pbxlink.services.directory import LookupResult
from pbxlink.services.pop_hub import Listener, Pop, PopHub
from pbxlink.services.screenpop import ScreenPops, calls_from_log
from pbxlink.storage import users
from pbxlink.storage.calls import save_call
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import User
from pbxlink.storage.users import create_user
from tests.unit.test_web_api import PASSWORD, login

NUMBER = "+15551234567"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ADA = Contact(
    crm="hubspot",
    id="501",
    name="Ada Lovelace",
    company="Analytical Engines Ltd",
    owner="sue@example.com",
    url="https://app.hubspot.com/contacts/1/record/0-1/501",
    deals=(Deal("Engine No. 2", "£12,000", "proposal", "javascript:alert(1)"),),
)


def result(number: str, contacts: tuple[Contact, ...] = (), errors: tuple[str, ...] = (), cached=False):
    return LookupResult(number, number, contacts, errors, cached=cached, looked_up_at=T0)


class FakeSource:
    """A caller directory: answers from `known` after `delay` (once `gate` opens); records what is asked."""

    def __init__(
        self,
        known: dict[str, tuple[Contact, ...]] | None = None,
        *,
        cached: dict[str, tuple[Contact, ...]] | None = None,
        errors: tuple[str, ...] = (),
        delay: float = 0.0,
        fail: bool = False,
    ) -> None:
        self.known, self.cache, self.errors = known or {}, cached or {}, errors
        self.delay, self.fail = delay, fail
        self.gate = threading.Event()
        self.gate.set()
        self.asked: list[str] = []
        self.peeked: list[str] = []

    def cached(self, number: str) -> LookupResult | None:
        self.peeked.append(number)
        hit = self.cache.get(number)
        return None if hit is None else result(number, hit, cached=True)

    def lookup(self, number: str) -> LookupResult:
        self.asked.append(number)
        time.sleep(self.delay)
        assert self.gate.wait(10)
        if self.fail:
            raise RuntimeError("connector bug")
        return result(number, self.known.get(number, ()), self.errors)


class FakeLog:
    """The call log's earlier calls per number, newest first; records which numbers were asked."""

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.rows = rows or []
        self.asked: list[tuple[str, int]] = []

    def __call__(self, number: str, limit: int) -> list[dict[str, Any]]:
        self.asked.append((number, limit))
        return self.rows[:limit]


def call(call_id: str = "1760000000.1", **kw: Any) -> CallRecord:
    fields: dict[str, Any] = dict(
        direction="inbound", caller=NUMBER, caller_name="ADA L", queue="support", started_at=T0
    )
    fields.update(kw)
    return CallRecord(pbx="main", call_id=call_id, callee="1000", **fields)


def ring(service: ScreenPops, rec: CallRecord, *agents: str) -> None:
    for agent in agents:
        service.on_event(CallRinging(at=T0, call=rec, agent=agent))


def until(listener: Listener, cond: Callable[[Pop], bool], timeout: float = 5.0) -> Pop:
    """The first pop the listener gets that meets `cond` (pops that do not are skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pop = listener.next(0.05)
        if pop is not None and cond(pop):
            return pop
    raise AssertionError("no such pop arrived")


@pytest.fixture
def hub() -> PopHub:
    return PopHub()


@pytest.fixture
def make(hub: PopHub) -> Iterator[Callable[..., ScreenPops]]:
    made: list[ScreenPops] = []

    def build(source: FakeSource, log: FakeLog | None = None, **kw: Any) -> ScreenPops:
        service = ScreenPops(source, log or FakeLog(), hub, **kw)
        made.append(service)
        return service

    yield build
    for service in made:
        service.close()


def test_ringall_pops_every_agent_at_once_and_completes_them_all_when_the_crm_answers(hub, make) -> None:
    source = FakeSource({NUMBER: (ADA,)})
    source.gate.clear()  # the CRM has not answered yet
    service = make(source)
    listeners = {ext: hub.listen([ext]) for ext in ("201", "202", "203")}
    ring(service, call(), "201", "202", "203")

    for ext, listener in listeners.items():
        first = until(listener, lambda p: True, timeout=1)
        assert (first["agent"], first["state"], first["lookup"]) == (ext, "ringing", "pending")
        assert first["call"] == {
            "pbx": "main",
            "call_id": "1760000000.1",
            "number": NUMBER,
            "caller_name": "ADA L",
            "queue": "support",
            "direction": "inbound",
            "started_at": "2026-11-23T09:00:00.000Z",
        }
        assert first["contact"] is None
    source.gate.set()
    seqs = set()
    for listener in listeners.values():
        done = until(listener, lambda p: p["lookup"] == "found")
        assert done["contact"]["name"] == "Ada Lovelace"
        assert done["contact"]["company"] == "Analytical Engines Ltd"
        assert done["contact"]["url"] == ADA.url
        assert done["contact"]["deals"][0]["url"] is None  # a javascript: link is never passed on
        seqs.add(done["seq"])
    assert len(seqs) == 3
    assert source.asked == [NUMBER]  # one lookup for the call, however many agents it rings


def test_answered_by_202_shows_on_the_other_pops_and_the_end_closes_them(hub, make) -> None:
    service = make(FakeSource())
    listeners = {ext: hub.listen([ext]) for ext in ("201", "202", "203")}
    rec = call()
    ring(service, rec, "201", "202", "203")
    talking = call(agent="202", agents=["202"], answered_at=T0 + timedelta(seconds=4))
    service.on_event(CallAnswered(at=T0, call=talking, agent="202"))
    for loser in ("201", "203"):  # ringall losers are cancelled after the answer
        service.on_event(CallRingEnded(at=T0, call=talking, agent=loser, outcome="cancelled"))

    assert until(listeners["202"], lambda p: p["state"] != "ringing")["state"] == "answered"
    for ext in ("201", "203"):
        pop = until(listeners[ext], lambda p: p["state"] != "ringing")
        assert (pop["state"], pop["answered_by"]) == ("answered_elsewhere", "202")
    assert {p["state"] for p in hub.snapshot(["201", "203"])} == {"answered_elsewhere"}

    final = talking.copy()
    final.ended_at, final.disposition = T0 + timedelta(seconds=60), "answered"
    service.on_event(CallEnded(at=T0, call=final))
    assert until(listeners["202"], lambda p: p["closed"])["state"] == "ended"
    assert until(listeners["201"], lambda p: p["closed"])["state"] == "answered_elsewhere"


def test_a_ring_that_stops_unanswered_then_a_missed_call_and_the_hub_forgets_it(make) -> None:
    now = [1000.0]
    hub = PopHub(linger=60, clock=lambda: now[0])
    service = ScreenPops(FakeSource(), FakeLog(), hub)
    listener = hub.listen(["201"])
    rec = call()
    ring(service, rec, "201")
    service.on_event(CallRingEnded(at=T0, call=rec, agent="201", outcome="no_answer"))
    assert until(listener, lambda p: p["state"] != "ringing")["state"] == "stopped"
    missed = rec.copy()
    missed.ended_at, missed.disposition, missed.miss_reason = T0, "missed", "no_answer"
    service.on_event(CallEnded(at=T0, call=missed))
    assert until(listener, lambda p: p["closed"])["state"] == "missed"

    now[0] += 59
    assert [p["state"] for p in hub.snapshot(["201"])] == ["missed"]  # still shown to a page (re)connecting
    now[0] += 2
    assert hub.snapshot(["201"]) == [] and len(hub) == 0
    service.close()


def test_a_cached_lookup_makes_the_first_pop_complete(hub, make) -> None:
    source = FakeSource(cached={NUMBER: (ADA,)})
    service = make(source)
    listener = hub.listen(["201"])
    ring(service, call(), "201")
    first = until(listener, lambda p: True, timeout=1)
    assert (first["lookup"], first["contact"]["name"], first["contact"]["owner"]) == (
        "found",
        "Ada Lovelace",
        "sue@example.com",
    )
    assert source.peeked == [NUMBER] and source.asked == []  # no CRM was asked


def test_a_crm_error_reaches_admins_only_and_a_connector_bug_is_an_error_too(hub, make) -> None:
    down = "hubspot: HubSpot did not answer within 5 s (timeout)"
    service = make(FakeSource(errors=(down,)))
    listener = hub.listen(["201"])
    ring(service, call(), "201")
    pop = until(listener, lambda p: p["lookup"] != "pending")
    assert (pop["lookup"], pop["errors"], pop["contact"]) == ("error", [down], None)
    assert pops.for_viewer(pop, admin=True)["errors"] == [down]
    assert pops.for_viewer(pop, admin=False)["errors"] == []  # agents see "CRM unavailable" only
    assert pops.for_viewer(pop, admin=False)["lookup"] == "error"

    buggy = make(FakeSource(fail=True))
    ring(buggy, call("1760000000.2"), "201")
    pop = until(listener, lambda p: p["call"]["call_id"] == "1760000000.2" and p["lookup"] != "pending")
    assert pop["lookup"] == "error" and "failed unexpectedly" in pop["errors"][0]


def test_a_crm_that_knows_nobody_says_so(hub, make) -> None:
    service = make(FakeSource())
    listener = hub.listen(["201"])
    ring(service, call(), "201")
    assert until(listener, lambda p: p["lookup"] != "pending")["lookup"] == "none"


@pytest.mark.parametrize(
    "rec",
    [
        call(direction="internal", caller="202", caller_name="Agent 202", queue=None),
        call(caller="1234"),  # a short code or an extension, even on a trunk
        call(caller=None, caller_name=None),
    ],
    ids=["internal", "short", "anonymous"],
)
def test_no_lookup_and_no_history_for_internal_short_or_missing_numbers(hub, make, rec) -> None:
    source, log = FakeSource(), FakeLog()
    service = make(source, log)
    listener = hub.listen(["201"])
    ring(service, rec, "201")
    pop = until(listener, lambda p: True, timeout=1)
    assert (pop["lookup"], pop["recent"]) == ("skipped", [])
    assert source.peeked == source.asked == [] and log.asked == []


def test_a_number_rewritten_before_the_answer_is_looked_up_again(hub, make) -> None:
    rewritten = "+15559876543"
    source = FakeSource({rewritten: (ADA,)})
    service = make(source)
    listener = hub.listen(["201"])
    ring(service, call(caller="5559876543"), "201")
    service.on_event(CallUpdated(at=T0, call=call(caller=rewritten)))
    pop = until(listener, lambda p: p["lookup"] == "found")
    assert pop["call"]["number"] == rewritten
    assert source.asked[-1] == rewritten


def test_a_page_that_falls_behind_is_dropped_and_the_others_keep_getting_pops() -> None:
    hub = PopHub(queue_size=3)
    slow, fine = hub.listen(["201"]), hub.listen(["201"])
    for n in range(4):
        hub.publish(f"main/{n}/201", {"agent": "201", "n": n})
        assert fine.next(1)["n"] == n
    assert slow.dropped and slow.next(0.01) is None
    assert not fine.dropped and hub.listeners == 1
    hub.publish("main/9/201", {"agent": "201", "n": 9})
    assert fine.next(1)["n"] == 9


def test_the_hub_sends_a_pop_only_to_the_pages_of_its_extension_in_order() -> None:
    hub = PopHub()
    both, other = hub.listen(["201", "202"]), hub.listen(["203"])
    sent = [hub.publish(f"main/c{n}/{ext}", {"agent": ext}) for n, ext in enumerate(["201", "203", "202"])]
    got = [both.next(1), both.next(1)]
    assert [p["agent"] for p in got] == ["201", "202"] and got[0]["seq"] < got[1]["seq"]
    assert other.next(1)["seq"] == sent[1]["seq"]
    assert both.next(0.01) is None
    hub.close(both)
    assert both.dropped and hub.listeners == 1


def test_recent_calls_come_from_the_call_log_without_the_ringing_call(tmp_path, hub, make) -> None:
    database = connect(f"sqlite:///{tmp_path}/pbxlink.db")
    migrate(database)
    for n in range(7):  # seven earlier calls, the newest last
        done = call(f"17599999{n:02d}.1", caller="5551234567", started_at=T0 - timedelta(days=7 - n))
        done.ended_at, done.disposition, done.miss_reason = done.started_at, "missed", "no_answer"
        save_call(done)
    now = call()
    save_call(now)  # the call log saved the ringing call before the pop looked
    service = make(FakeSource(), calls_from_log)
    listener = hub.listen(["201"])
    ring(service, now, "201")
    pop = until(listener, lambda p: p["recent"] is not None)
    assert [r["started_at"][:10] for r in pop["recent"]] == [
        (T0 - timedelta(days=d)).strftime("%Y-%m-%d") for d in (1, 2, 3, 4, 5)
    ]
    assert set(pop["recent"][0]) == {
        "started_at",
        "direction",
        "agent",
        "disposition",
        "miss_reason",
        "talk_seconds",
    }
    database.close()


# --- the pop page ------------------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path, monkeypatch, hub):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    url = f"sqlite:///{tmp_path}/pbxlink.db"
    database = connect(url)
    migrate(database)
    cfg = Config(None, DatabaseConfig(url), WebConfig(secret_key="s" * 64), pbx=(), data_dir=tmp_path)
    app = create_app(cfg, None, pops=hub)
    app.config["SSE_HEARTBEAT_SECONDS"] = 0.05
    yield app
    database.close()


def frames(resp) -> Iterator[str]:
    """The SSE frames of a streamed response, one at a time."""
    buffer = ""
    for chunk in resp.response:
        buffer += chunk if isinstance(chunk, str) else chunk.decode()
        while "\n\n" in buffer:
            frame, buffer = buffer.split("\n\n", 1)
            yield frame


def test_an_agent_without_an_extension_is_told_to_ask_an_admin(app) -> None:
    create_user("ann", PASSWORD)
    client = app.test_client()
    login(client, "ann")
    page = client.get("/pops").get_data(as_text=True)
    assert "no extension" in page and "Ask an admin" in page
    assert 'id="pops"' not in page
    assert client.get("/pops/stream").status_code == 400


def test_agents_watch_their_own_extensions_and_supervisors_any(app, hub) -> None:
    create_user("ann", PASSWORD, extension="201")
    User.update(extension="201, 202").where(User.username == "ann").execute()
    create_user("sue", PASSWORD, role="supervisor")
    hub.publish("main/c1/202", {"agent": "202", "key": "main/c1/202", "errors": ["hubspot: 401"]})
    hub.publish("main/c1/301", {"agent": "301", "key": "main/c1/301", "errors": []})

    ann = app.test_client()
    login(ann, "ann")
    page = ann.get("/pops").get_data(as_text=True)
    assert 'data-me="201,202"' in page and 'id="callbacks-waiting"' in page and "hidden" in page
    assert ann.get("/pops?ext=301").status_code == 403
    resp = ann.get("/pops/stream", buffered=False)
    assert resp.mimetype == "text/event-stream"
    stream = frames(resp)
    assert next(stream).startswith("retry: 3000")
    snapshot = next(stream)
    assert snapshot.startswith("event: snapshot\ndata: ")
    assert '"extensions":["201","202"]' in snapshot and '"key":"main/c1/202"' in snapshot
    assert "hubspot: 401" not in snapshot and "main/c1/301" not in snapshot
    assert next(stream) == ": keepalive"
    hub.publish("main/c2/201", {"agent": "201", "key": "main/c2/201", "errors": []})
    assert next(stream).startswith('event: pop\ndata: {"agent":"201","key":"main/c2/201"')
    resp.close()
    assert hub.listeners == 0  # the browser went: its listener too

    sue = app.test_client()
    login(sue, "sue")
    assert 'data-me="301"' in sue.get("/pops?ext=301").get_data(as_text=True)
    assert sue.get("/pops?ext=301,<b>").status_code == 400
    stream = frames(sue.get("/pops/stream?ext=301", buffered=False))
    next(stream)
    assert '"key":"main/c1/301"' in next(stream)


def test_a_stream_that_falls_behind_ends_so_the_browser_reconnects(app) -> None:
    hub = PopHub(queue_size=2)
    app.extensions["pbxlink.pops"] = hub
    create_user("ann", PASSWORD, extension="201")
    client = app.test_client()
    login(client, "ann")
    stream = frames(client.get("/pops/stream", buffered=False))
    next(stream), next(stream)  # retry, snapshot
    for n in range(3):  # the page reads nothing meanwhile
        hub.publish(f"main/c{n}/201", {"agent": "201", "key": f"main/c{n}/201"})
    assert list(stream) == []  # the stream ends
    assert hub.listeners == 0


def test_extensions_of_a_user_and_what_an_agent_may_see() -> None:
    agent = PanelUser(User(username="ann", role="agent", extension=" 201, 202,,201 "))
    assert agent.extensions == ("201", "202")
    assert agent.can_see({"agent": "202", "agents": ["202"]})
    assert agent.can_see({"agent": "301", "agents": ["301", "201"]})
    assert not agent.can_see({"agent": "301", "agents": ["301"]})
    assert PanelUser(User(username="bob", role="agent", extension=None)).extensions == ()
    assert not PanelUser(User(username="bob", role="agent", extension=None)).can_see({"agent": None})


def test_an_agent_first_campaign_call_pops_the_contact_it_is_about_to_dial(hub, make) -> None:
    tag = "0b0c6c8e-54f4-4a59-9d7e-1f1fa1a3e0d1"
    contact = {
        "campaign": "renewals",
        "name": "Ada Lovelace",
        "number": NUMBER,
        "fields": {"DUE": "2026-12-01"},
    }
    service = make(FakeSource({NUMBER: (ADA,)}), campaign_contact={tag: contact}.get)
    listener = hub.listen(["201"])
    # the agent rings first: the contact's number is not on the call yet
    rec = call(direction="outbound", caller="201", caller_name=None, origin=tag)
    rec.callee = None
    ring(service, rec, "201")
    pop = until(listener, lambda p: p["lookup"] == "found")
    assert pop["campaign"] == contact
    assert pop["call"]["number"] == NUMBER and pop["contact"]["name"] == "Ada Lovelace"
