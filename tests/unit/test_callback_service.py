"""The callback service on a real SQLite database, with fake PBX controls that record what they were asked
and a clock the tests move: when a missed call is called back, how often, and what ends it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pbxlink.config import CallbackPolicyConfig, load_config
from pbxlink.domain.callback_policy import CallbackPolicy
from pbxlink.domain.calls import CallEnded, CallRecord, CallRinging
from pbxlink.domain.phone import PhoneNumbers
from pbxlink.domain.ports import OriginateHandle, OriginateRequest
from pbxlink.services.callbacks import CallbackService
from pbxlink.storage import callbacks as store
from pbxlink.storage.calls import save_call
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import Callback

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN)
CUSTOMER = "+12025550143"
ALWAYS = tuple(((0, 1440),) for _ in range(7))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def at(self, moment: datetime) -> datetime:
        self.now = moment.astimezone(UTC)
        return self.now


class FakePbx:
    """A PbxControl that records each originate and hands out tags; it can be told to refuse."""

    def __init__(self, name: str = "main") -> None:
        self.name = name
        self.originates: list[OriginateRequest] = []
        self.tags: list[str] = []
        self.refuse: Exception | None = None

    def originate(self, req: OriginateRequest) -> OriginateHandle:
        if self.refuse is not None:
            raise self.refuse
        self.originates.append(req)
        self.tags.append(str(uuid.uuid4()))  # as the real controls: unique across restarts
        return OriginateHandle(pbx=self.name, tag=self.tags[-1])

    def hangup(self, call_id: str) -> None:
        raise AssertionError("callbacks never hang up")


@pytest.fixture(autouse=True)
def database(tmp_path: Path) -> Iterator[None]:
    db = connect(f"sqlite:///{tmp_path}/pbxlink.db")
    migrate(db)
    yield
    db.close()


def policy(**settings: Any) -> CallbackPolicy:
    base: dict[str, Any] = {"name": "sales", "pbx": "main", "timezone": "Europe/Berlin", "queue": "600"}
    return CallbackPolicy(CallbackPolicyConfig(**{**base, **settings}), PhoneNumbers("US"))


def service(
    clock: Clock, *policies: CallbackPolicy, pbx: FakePbx | None = None
) -> tuple[CallbackService, FakePbx]:
    pbx = pbx or FakePbx()
    return CallbackService(policies or (policy(),), {"main": pbx}, PhoneNumbers("US"), clock=clock), pbx


def call(call_id: str, ended: datetime, **fields: Any) -> CallRecord:
    values: dict[str, Any] = {
        "direction": "inbound",
        "caller": "2025550143",
        "callee": "+15551230000",
        "queue": "sales",
        "disposition": "missed",
        "miss_reason": "no_answer",
        "wait_seconds": 40.0,
    }
    values.update(fields)
    return CallRecord(
        pbx="main", call_id=call_id, started_at=ended - timedelta(seconds=45), ended_at=ended, **values
    )


def answered(call_id: str, ended: datetime, **fields: Any) -> CallRecord:
    values = {"disposition": "answered", "miss_reason": None, "agent": "201", "agents": ["201"], **fields}
    return call(call_id, ended, **values)


def end(svc: CallbackService, rec: CallRecord) -> None:
    svc.on_event(CallEnded(at=rec.ended_at or rec.started_at, call=rec))


def only() -> Callback:
    rows = list(Callback.select())
    assert len(rows) == 1
    return rows[0]


# --- a missed call, called back once, at the right moment -------------------------------------------


def test_a_missed_call_gives_exactly_one_originate_at_ended_plus_delay_and_none_before() -> None:
    clock = Clock(MONDAY_10)
    svc, pbx = service(clock, policy(present_number="+15551230000"))
    miss = call("1.1", MONDAY_10)
    end(svc, miss)
    end(svc, miss)  # the same end replayed (a resync)
    cb = only()
    assert (cb.status, cb.number, cb.due_at, cb.missed_call, cb.queue) == (
        "pending",
        CUSTOMER,
        MONDAY_10 + timedelta(seconds=60),
        "main:1.1",
        "sales",
    )
    for seconds in (0, 30, 59.9):
        assert svc.run_due(clock.at(MONDAY_10 + timedelta(seconds=seconds))) == 0
    assert pbx.originates == []
    assert svc.run_due(clock.at(MONDAY_10 + timedelta(seconds=60))) == 1
    for seconds in (61, 75, 89):  # the attempt is under way: nothing more
        assert svc.run_due(clock.at(MONDAY_10 + timedelta(seconds=seconds))) == 0
    assert pbx.originates == [
        OriginateRequest(
            endpoint="600",
            exten=CUSTOMER,
            context="pbxlink-callback-agent-first",
            caller_id="+15551230000",
            timeout_s=30,
            variables={"PBXLINK_CUSTOMER": CUSTOMER, "PBXLINK_PRESENT": "+15551230000"},
        )
    ]
    cb = only()
    assert (cb.status, cb.tag, cb.attempts) == ("in_progress", pbx.tags[0], 1)


def test_the_same_customer_missing_us_again_keeps_the_one_callback() -> None:
    clock = Clock(MONDAY_10)
    svc, pbx = service(clock)
    end(svc, call("1.1", MONDAY_10))
    end(svc, call("1.2", MONDAY_10 + timedelta(seconds=20), caller="+1 202 555 0143"))
    assert only().missed_call == "main:1.1"
    svc.run_due(clock.at(MONDAY_10 + timedelta(minutes=5)))
    end(svc, call("1.3", MONDAY_10 + timedelta(minutes=6)))  # while the attempt is under way
    assert len(pbx.originates) == 1 and only().status == "in_progress"


def test_outside_the_hours_the_callback_waits_for_the_next_opening() -> None:
    friday_evening = datetime(2026, 3, 6, 18, 0, tzinfo=BERLIN)
    clock = Clock(friday_evening)
    svc, pbx = service(clock)
    end(svc, call("2.1", friday_evening))
    monday_9 = datetime(2026, 3, 9, 9, 0, tzinfo=BERLIN)
    assert only().due_at == monday_9
    for moment in (
        friday_evening + timedelta(minutes=1),
        datetime(2026, 3, 7, 12, 0, tzinfo=BERLIN),
        datetime(2026, 3, 9, 8, 59, 59, tzinfo=BERLIN),
    ):
        assert svc.run_due(clock.at(moment)) == 0
    assert pbx.originates == []
    assert svc.run_due(clock.at(monday_9)) == 1


def test_a_callback_due_while_the_hours_changed_is_not_placed_when_closed() -> None:
    """Due at 16:59:58, but the scan runs at 17:00:03: it waits for the next morning, no attempt counted."""
    clock = Clock(MONDAY_10)
    svc, pbx = service(clock)
    cb, _ = store.schedule(
        "sales", "main", CUSTOMER, source="manual", due_at=datetime(2026, 3, 2, 16, 59, 58, tzinfo=BERLIN)
    )
    assert svc.run_due(clock.at(datetime(2026, 3, 2, 17, 0, 3, tzinfo=BERLIN))) == 0
    cb = store.get(cb.id)
    assert (cb.status, cb.attempts, cb.due_at) == ("pending", 0, datetime(2026, 3, 3, 9, 0, tzinfo=BERLIN))
    assert pbx.originates == []


# --- attempts and their outcomes --------------------------------------------------------------------


def attempt_ends(svc: CallbackService, tag: str, ended: datetime, **fields: Any) -> None:
    """The call of the originate tagged `tag` ends, as the tracker reports it (its origin = the tag)."""
    values = {"direction": "outbound", "caller": "600", "callee": CUSTOMER, "origin": tag, **fields}
    rec = call(f"cb-{tag[:8]}", ended, **values)
    end(svc, rec)


def test_retries_follow_the_policy_then_it_fails_saying_why() -> None:
    clock = Clock(MONDAY_10)
    svc, pbx = service(clock, policy(max_attempts=3, retry_after=600, delay=0))
    end(svc, call("3.1", MONDAY_10))
    t = MONDAY_10
    assert svc.run_due(clock.at(t)) == 1
    for n, outcome in enumerate(("no_answer", "busy", "failed"), 1):
        ended = clock.at(t + timedelta(seconds=25))
        attempt_ends(svc, pbx.tags[-1], ended, miss_reason=outcome)
        cb = only()
        if n < 3:
            assert (cb.status, cb.attempts, cb.last_outcome) == ("pending", n, outcome)
            assert cb.due_at == ended + timedelta(seconds=600)
            assert cb.reason == f"attempt {n} of 3: {outcome.replace('_', ' ')}"
            assert svc.run_due(clock.at(cb.due_at - timedelta(seconds=1))) == 0
            t = cb.due_at
            assert svc.run_due(clock.at(t)) == 1
    cb = only()
    assert (cb.status, cb.attempts, cb.tag) == ("failed", 3, None)
    assert cb.reason == "3 attempt(s) without an answer; last: failed"
    assert svc.run_due(clock.at(t + timedelta(days=2))) == 0
    assert len(pbx.originates) == 3
    outcomes = [(a.tag, a.outcome) for a in store.attempts_of(cb.id)]
    assert outcomes == list(zip(pbx.tags, ("no_answer", "busy", "failed"), strict=True))


def test_a_retry_that_would_fall_after_closing_waits_for_the_next_morning() -> None:
    late = datetime(2026, 3, 2, 16, 55, tzinfo=BERLIN)
    clock = Clock(late)
    svc, pbx = service(clock, policy(delay=0))
    end(svc, call("4.1", late))
    svc.run_due(clock.at(late))
    attempt_ends(svc, pbx.tags[-1], clock.at(late + timedelta(seconds=30)), miss_reason="no_answer")
    assert only().due_at == datetime(2026, 3, 3, 9, 0, tzinfo=BERLIN)


def test_answered_is_done_and_the_call_is_linked_to_the_missed_call() -> None:
    clock = Clock(MONDAY_10)
    svc, pbx = service(clock, policy(delay=0))
    end(svc, call("5.1", MONDAY_10))
    svc.run_due(clock.at(MONDAY_10))
    attempt_ends(
        svc,
        pbx.tags[0],
        clock.at(MONDAY_10 + timedelta(minutes=3)),
        disposition="answered",
        miss_reason=None,
        agent="201",
        agents=["201"],
    )
    cb = only()
    assert (cb.status, cb.last_outcome, cb.attempts, cb.missed_call) == ("done", "answered", 1, "main:5.1")
    attempt = store.attempts_of(cb.id)[0]
    assert (attempt.outcome, attempt.call_id, attempt.tag) == (
        "answered",
        f"cb-{pbx.tags[0][:8]}",
        pbx.tags[0],
    )
    assert svc.run_due(clock.at(MONDAY_10 + timedelta(hours=2))) == 0 and len(pbx.originates) == 1


def test_a_refused_originate_counts_as_a_failed_attempt_and_an_undiallable_one_ends_it() -> None:
    clock = Clock(MONDAY_10)
    svc, pbx = service(clock, policy(delay=0))
    end(svc, call("6.1", MONDAY_10))
    pbx.refuse = RuntimeError("AMI main: Originate refused: link down")
    assert svc.run_due(clock.at(MONDAY_10)) == 0
    cb = only()
    assert (cb.status, cb.attempts, cb.due_at) == ("pending", 1, MONDAY_10 + timedelta(seconds=600))
    assert "the PBX did not take the call" in cb.reason and "link down" in cb.reason
    pbx.refuse = ValueError("exten: '+1' is not a valid extension")
    assert svc.run_due(clock.at(cb.due_at)) == 0
    cb = only()
    assert cb.status == "failed" and cb.reason.startswith("attempt 2: failed (cannot be dialled: exten")


def test_call_now_places_at_once_even_outside_the_hours_and_says_who_asked() -> None:
    saturday = datetime(2026, 3, 7, 11, 0, tzinfo=BERLIN)
    clock = Clock(saturday)
    svc, pbx = service(clock)
    end(svc, call("7.1", saturday))
    cb = only()
    assert svc.run_due(clock.at(saturday + timedelta(minutes=5))) == 0
    assert store.call_now(cb.id, "alice", now=clock.now)
    assert svc.run_due(clock.now) == 1 and len(pbx.originates) == 1
    assert store.attempts_of(cb.id)[0].by == "alice"


def test_ring_the_agent_who_missed_it() -> None:
    clock = Clock(MONDAY_10)
    svc, pbx = service(clock, policy(ring="agent", queue=None, delay=0))
    miss = call("8.1", MONDAY_10)
    svc.on_event(CallRinging(at=MONDAY_10 - timedelta(seconds=30), call=miss, agent="203"))
    end(svc, miss)
    assert only().agent == "203"
    svc.run_due(clock.at(MONDAY_10))
    assert pbx.originates[0].endpoint == "203"


# --- cancellation: the customer reached another way -----------------------------------------------


def test_the_customer_calling_again_and_being_answered_cancels_the_callback() -> None:
    clock = Clock(MONDAY_10)
    svc, pbx = service(clock)
    end(svc, call("9.1", MONDAY_10))
    end(svc, answered("9.2", MONDAY_10 + timedelta(seconds=50), caller="(202) 555-0143"))
    cb = only()
    assert (cb.status, cb.reason) == ("cancelled", "called again, answered by 201")
    assert svc.run_due(clock.at(MONDAY_10 + timedelta(hours=1))) == 0 and pbx.originates == []


def test_an_agent_reaching_the_customer_on_an_outbound_call_cancels_it() -> None:
    clock = Clock(MONDAY_10)
    svc, pbx = service(clock)
    end(svc, call("10.1", MONDAY_10))
    out = answered(
        "10.2",
        MONDAY_10 + timedelta(seconds=40),
        direction="outbound",
        caller="202",
        callee="12025550143",
        agent="202",
        agents=["202"],
    )
    end(svc, out)
    assert (only().status, only().reason) == ("cancelled", "reached by agent 202 on an outbound call")
    assert svc.run_due(clock.at(MONDAY_10 + timedelta(hours=1))) == 0 and pbx.originates == []


def test_what_does_not_reach_the_customer_cancels_nothing() -> None:
    clock = Clock(MONDAY_10)
    svc, _ = service(clock)
    end(svc, call("11.1", MONDAY_10))
    end(
        svc, call("11.2", MONDAY_10 + timedelta(seconds=30), direction="outbound", callee=CUSTOMER)
    )  # no answer
    end(svc, answered("11.3", MONDAY_10 + timedelta(seconds=30), caller="2025550199"))  # someone else
    end(svc, answered("11.0", MONDAY_10 - timedelta(minutes=30)))  # an old call replayed late
    assert only().status == "pending"


def test_the_answered_attempt_of_one_callback_cancels_the_customers_others_but_never_itself() -> None:
    clock = Clock(MONDAY_10)
    support = policy(name="support", queues=("support",), delay=0)
    sales = policy(name="sales", queues=("sales",), delay=0)
    svc, pbx = service(clock, sales, support)
    end(svc, call("12.1", MONDAY_10, queue="sales"))
    end(svc, call("12.2", MONDAY_10 + timedelta(seconds=10), queue="support"))
    first = svc.run_due(clock.at(MONDAY_10 + timedelta(seconds=10)))
    assert first == 2  # one per policy
    answered_tag = pbx.tags[0]
    own = store.by_tag(answered_tag)
    rec = answered(
        "cb-x",
        clock.at(MONDAY_10 + timedelta(minutes=2)),
        direction="outbound",
        caller="600",
        callee=CUSTOMER,
        origin=answered_tag,
    )
    end(svc, rec)
    rows = {cb.policy: cb for cb in Callback.select()}
    assert rows[own.policy].status == "done"
    other = rows["support" if own.policy == "sales" else "sales"]
    assert (other.status, other.reason) == ("cancelled", f"reached by callback #{own.id}")


# --- restarts: neither repeated nor forgotten -------------------------------------------------------


def placed(clock: Clock) -> tuple[CallbackService, FakePbx, Callback]:
    svc, pbx = service(clock, policy(delay=0))
    end(svc, call("13.1", MONDAY_10))
    assert svc.run_due(clock.at(MONDAY_10)) == 1
    return svc, pbx, only()


def test_a_restart_after_the_attempts_call_ended_finds_its_outcome_in_the_call_log() -> None:
    clock = Clock(MONDAY_10)
    _, _, cb = placed(clock)
    # pbxlink stops; the call is answered and ends; the call log (another process, or the resync) has it.
    save_call(
        answered(
            "cb-1",
            MONDAY_10 + timedelta(minutes=4),
            direction="outbound",
            caller="600",
            callee=CUSTOMER,
            origin=cb.tag,
        )
    )
    restarted, pbx = service(clock)
    assert restarted.run_due(clock.at(MONDAY_10 + timedelta(minutes=10))) == 0
    assert pbx.originates == []
    assert (only().status, store.attempts_of(cb.id)[0].call_id) == ("done", "cb-1")


def test_a_restart_while_the_attempts_call_is_still_up_waits_for_its_end() -> None:
    clock = Clock(MONDAY_10)
    _, _, cb = placed(clock)
    up = answered(
        "cb-1", MONDAY_10 + timedelta(minutes=1), direction="outbound", callee=CUSTOMER, origin=cb.tag
    )
    up.ended_at, up.disposition = None, None
    save_call(up)
    restarted, pbx = service(clock)
    for minutes in (1, 5, 30):  # long past the ring deadline: the call is up, so it is waited for
        assert restarted.run_due(clock.at(MONDAY_10 + timedelta(minutes=minutes))) == 0
    assert only().status == "in_progress" and pbx.originates == []
    attempt_ends(
        restarted,
        cb.tag,
        clock.at(MONDAY_10 + timedelta(minutes=31)),
        disposition="answered",
        miss_reason=None,
    )
    assert only().status == "done" and pbx.originates == []


def test_an_attempt_the_pbx_never_reported_counts_as_failed_after_its_deadline_and_is_retried_later() -> None:
    clock = Clock(MONDAY_10)
    _, _, cb = placed(clock)
    restarted, pbx = service(clock)
    assert restarted.run_due(clock.at(MONDAY_10 + timedelta(seconds=89))) == 0  # ring 30 s + margin 60 s
    assert only().status == "in_progress"
    assert restarted.run_due(clock.at(MONDAY_10 + timedelta(seconds=91))) == 0
    cb = only()
    assert (cb.status, cb.attempts, cb.last_outcome) == ("pending", 1, "failed")
    assert "the PBX reported no call for it" in cb.reason
    assert cb.due_at == MONDAY_10 + timedelta(seconds=91 + 600)  # retried per the policy, not at once
    assert restarted.run_due(clock.at(cb.due_at)) == 1 and len(pbx.originates) == 1


def test_a_worker_that_stopped_between_claim_and_originate_never_causes_an_immediate_second_call() -> None:
    clock = Clock(MONDAY_10)
    svc, pbx = service(clock, policy(delay=0))
    end(svc, call("14.1", MONDAY_10))
    assert len(store.claim_due(MONDAY_10, svc.lease_s, 10)) == 1  # ... and the worker dies here
    restarted, pbx = service(clock)
    assert restarted.run_due(clock.at(MONDAY_10 + timedelta(seconds=30))) == 0  # its lease still runs
    assert restarted.run_due(clock.at(MONDAY_10 + timedelta(seconds=61))) == 0
    cb = only()
    assert (cb.status, cb.attempts, cb.due_at) == ("pending", 1, MONDAY_10 + timedelta(seconds=661))
    assert "pbxlink stopped while placing this attempt" in cb.reason
    assert pbx.originates == []


def test_an_ended_attempt_not_yet_settled_when_pbxlink_stopped_is_settled_at_start() -> None:
    clock = Clock(MONDAY_10)
    _, _, cb = placed(clock)
    store.finish_attempt(cb.tag, "busy", "cb-1", MONDAY_10 + timedelta(seconds=20))  # ... stopped here
    restarted, pbx = service(clock)
    restarted.run_due(clock.at(MONDAY_10 + timedelta(seconds=21)))
    cb = only()
    assert (cb.status, cb.last_outcome, cb.due_at) == ("pending", "busy", MONDAY_10 + timedelta(seconds=621))
    assert pbx.originates == []


# --- the website ----------------------------------------------------------------------------------


def web_service(clock: Clock) -> tuple[CallbackService, FakePbx]:
    return service(
        clock, policy(), policy(name="website", source="web", order="customer_first", queue="sales")
    )


@pytest.mark.parametrize(
    ("number", "name", "message"),
    [
        ("+1 202 555 0143\r\nAction: Originate", None, "may not contain line breaks or control characters"),
        ("2025550143\n", None, "may not contain line breaks or control characters"),
        ("+1 202 555 0143\x00", None, "may not contain line breaks or control characters"),
        ("911", None, "short codes, service and emergency numbers cannot be dialled"),
        ("12345", None, "short codes, service and emergency numbers cannot be dialled"),
        ("+1 900 555 0143", None, "premium-rate numbers cannot be dialled"),
        ("sip:200@evil.example", None, "a phone number holds only digits"),
        ("+1 202 555 0143 0143 0143 0143 0143", None, "a phone number holds only digits"),
        ("+1 202 555 01", None, "the number is too short"),
        ("+1 202 555 014333", None, "the number is too long"),
        ("", None, "no phone number given"),
        (CUSTOMER, "<script>alert(1)</script>", "the name may not contain < or >"),
        (CUSTOMER, "Ann\x1b[31m", "the name may not contain control characters"),
    ],
)
def test_hostile_website_input_is_refused_clearly_and_nothing_reaches_the_pbx(
    number: str, name: str | None, message: str
) -> None:
    clock = Clock(MONDAY_10)
    svc, pbx = web_service(clock)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        svc.request_from_web(number, name, None)
    svc.run_due(clock.at(MONDAY_10 + timedelta(days=3)))
    assert Callback.select().count() == 0 and pbx.originates == []


def test_a_website_request_is_called_back_under_the_website_policy_once() -> None:
    saturday = datetime(2026, 3, 7, 11, 0, tzinfo=BERLIN)
    clock = Clock(saturday)
    svc, pbx = web_service(clock)
    cb, created = svc.request_from_web(" (202) 555-0143 ", "  Ann\n Lee  ", None)
    assert created and (cb.policy, cb.source, cb.number, cb.name) == ("website", "web", CUSTOMER, "Ann Lee")
    assert cb.due_at == datetime(2026, 3, 9, 9, 0, tzinfo=BERLIN)  # Monday's opening
    again, created = svc.request_from_web("+12025550143", None, None)
    assert (again.id, created) == (cb.id, False)
    svc.run_due(clock.at(cb.due_at))
    assert (
        pbx.originates[0].endpoint == CUSTOMER
        and pbx.originates[0].context == "pbxlink-callback-customer-first"
    )
    assert svc.request_from_web("+44 20 7946 0958", "x" * 500, None)[0].name == "x" * 128


def test_a_preferred_time_is_kept_within_the_hours() -> None:
    clock = Clock(MONDAY_10)
    svc, _ = web_service(clock)
    at_two = datetime(2026, 3, 3, 14, 0, tzinfo=BERLIN)
    assert svc.request_from_web("2025550101", None, at_two)[0].due_at == at_two
    naive = datetime(2026, 3, 3, 15, 0)  # the business's local time
    assert svc.request_from_web("2025550102", None, naive)[0].due_at == datetime(
        2026, 3, 3, 15, 0, tzinfo=BERLIN
    )
    evening = datetime(2026, 3, 3, 20, 0, tzinfo=BERLIN)
    assert svc.request_from_web("2025550103", None, evening)[0].due_at == datetime(
        2026, 3, 4, 9, 0, tzinfo=BERLIN
    )
    past = MONDAY_10 - timedelta(days=1)
    assert svc.request_from_web("2025550104", None, past)[0].due_at == MONDAY_10
    with pytest.raises(ValueError, match="more than 30 days ahead"):
        svc.request_from_web("2025550105", None, MONDAY_10 + timedelta(days=31))


def test_without_a_website_policy_requests_are_refused_as_unconfigured() -> None:
    svc, _ = service(Clock(MONDAY_10))
    with pytest.raises(RuntimeError, match="no \\[\\[callback_policy\\]\\] takes website requests"):
        svc.request_from_web(CUSTOMER, None, None)


# --- running for real -----------------------------------------------------------------------------


def test_from_config_and_the_scheduler_place_what_is_due(tmp_path: Path) -> None:
    path = tmp_path / "pbxlink.toml"
    path.write_text(
        '[[pbx]]\nname = "main"\nhost = "127.0.0.1"\nusername = "u"\nsecret = "s"\n'
        '[[callback_policy]]\nname = "all"\nqueue = "600"\ntimezone = "UTC"\n'
        'hours = { mon = "00:00-24:00", tue = "00:00-24:00", wed = "00:00-24:00", thu = "00:00-24:00", '
        'fri = "00:00-24:00", sat = "00:00-24:00", sun = "00:00-24:00" }\n'
        '[[callback_policy]]\nname = "web"\nmatch = { source = "web" }\nqueue = "600"\n'
    )
    pbx = FakePbx()
    svc = CallbackService.from_config(load_config(path, environ={}), {"main": pbx})
    assert (
        list(svc.policies) == ["all", "web"] and svc.web_policy is not None and svc.web_policy.name == "web"
    )
    svc.poll_s = 0.2
    store.schedule("all", "main", CUSTOMER, source="manual", due_at=datetime.now(UTC) - timedelta(seconds=1))
    svc.start()
    try:
        deadline = time.monotonic() + 20
        while not pbx.originates and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        svc.stop()
    assert len(pbx.originates) == 1 and pbx.originates[0].exten == CUSTOMER
    assert only().status == "in_progress"


def test_start_settles_from_the_call_log_at_once_but_gives_the_resync_time_before_calling_one_lost() -> None:
    clock = Clock(MONDAY_10)
    svc, pbx = service(clock, policy(delay=0))
    end(svc, call("15.1", MONDAY_10))
    end(svc, call("15.2", MONDAY_10, caller="2025550199"))
    assert svc.run_due(clock.at(MONDAY_10)) == 2
    answered_cb, lost_cb = (store.by_tag(tag) for tag in pbx.tags)
    save_call(answered("cb-1", MONDAY_10 + timedelta(minutes=2), direction="outbound", origin=pbx.tags[0]))
    clock.at(MONDAY_10 + timedelta(minutes=10))
    restarted, _ = service(clock, policy(delay=0))
    restarted.poll_s = 3600  # only what start() itself does
    restarted.start()
    restarted.stop()
    assert store.get(answered_cb.id).status == "done"  # found in the call log at start
    assert store.get(lost_cb.id).status == "in_progress"  # its call may still come with the resync
    restarted.run_due(clock.at(MONDAY_10 + timedelta(minutes=11)))
    assert store.get(lost_cb.id).status == "pending"  # the resync had its minute: now it counts as failed
