"""Callback policies, pure: which missed calls they call back, when they may call, what they ask the PBX."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pbxlink.ami.control import AmiControl
from pbxlink.config import CallbackPolicyConfig
from pbxlink.domain.callback_policy import CallbackPolicy, match_policy, outcome_of
from pbxlink.domain.calls import CallRecord
from pbxlink.domain.phone import PhoneNumbers
from pbxlink.domain.ports import OriginateRequest
from pbxlink.esl.control import EslControl

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def make(**settings: Any) -> CallbackPolicy:
    base: dict[str, Any] = {"name": "sales", "pbx": "main", "timezone": "Europe/Berlin", "queue": "600"}
    return CallbackPolicy(CallbackPolicyConfig(**{**base, **settings}), PhoneNumbers("US"))


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def missed(**fields: Any) -> CallRecord:
    started = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "pbx": "main",
        "call_id": "1700000000.1",
        "direction": "inbound",
        "started_at": started,
        "caller": "2025550143",
        "callee": "+15551230000",
        "queue": "sales",
        "ended_at": started + timedelta(seconds=40),
        "disposition": "missed",
        "miss_reason": "no_answer",
        "wait_seconds": 30.0,
    }
    return CallRecord(**{**values, **fields})


# --- when: hours, holidays, time zones --------------------------------------------------------------


def test_inside_the_hours_now_is_the_opening() -> None:
    p = make()
    monday_10 = local(BERLIN, 2026, 3, 2, 10, 0)
    assert p.next_open(monday_10) == monday_10 and p.is_open(monday_10)
    assert p.next_open(monday_10).tzinfo == UTC


def test_after_closing_it_is_the_next_working_morning_and_the_weekend_is_skipped() -> None:
    p = make()
    assert p.next_open(local(BERLIN, 2026, 3, 2, 17, 0)) == local(BERLIN, 2026, 3, 3, 9, 0)  # 17:00 is closed
    assert p.next_open(local(BERLIN, 2026, 3, 2, 16, 59, 59)) == local(BERLIN, 2026, 3, 2, 16, 59, 59)
    assert p.next_open(local(BERLIN, 2026, 3, 6, 18, 0)) == local(BERLIN, 2026, 3, 9, 9, 0)  # Fri -> Mon
    assert p.next_open(local(BERLIN, 2026, 3, 7, 11, 0)) == local(BERLIN, 2026, 3, 9, 9, 0)  # Saturday
    assert p.next_open(local(BERLIN, 2026, 3, 2, 6, 0)) == local(BERLIN, 2026, 3, 2, 9, 0)  # early Monday
    assert not p.is_open(local(BERLIN, 2026, 3, 7, 11, 0))


def test_several_ranges_a_day_and_an_opening_until_midnight() -> None:
    hours = (((480, 720), (780, 1050)), (), (), (), (), (), ((1320, 1440),))
    p = make(hours=hours)
    assert p.next_open(local(BERLIN, 2026, 3, 2, 12, 30)) == local(BERLIN, 2026, 3, 2, 13, 0)  # lunch
    assert p.next_open(local(BERLIN, 2026, 3, 2, 17, 30)) == local(BERLIN, 2026, 3, 8, 22, 0)  # Sunday night
    assert p.is_open(local(BERLIN, 2026, 3, 8, 23, 59))
    assert p.next_open(local(BERLIN, 2026, 3, 9, 0, 0)) == local(BERLIN, 2026, 3, 9, 8, 0)  # 24:00 ended


def test_holidays_are_skipped() -> None:
    p = make(holidays=(date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 28)))
    # Wednesday 23rd after hours: Thu 24th and Fri 25th are holidays, then a weekend, then Mon 28th too.
    assert p.next_open(local(BERLIN, 2026, 12, 23, 18, 0)) == local(BERLIN, 2026, 12, 29, 9, 0)
    assert not p.is_open(local(BERLIN, 2026, 12, 24, 10, 0))


def test_the_opening_is_in_the_policys_zone_whatever_zone_the_question_is_in() -> None:
    berlin, new_york = make(timezone="Europe/Berlin"), make(timezone="America/New_York")
    at = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 15:00 in Berlin, 09:00 in New York
    assert berlin.is_open(at) and new_york.is_open(at)
    late = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)  # 17:30 in Berlin (closed), 11:30 in New York
    assert berlin.next_open(late) == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert new_york.next_open(late) == late
    assert berlin.next_open(late.replace(tzinfo=None)) == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # naive: UTC
    assert new_york.next_open(datetime(2026, 3, 2, 23, 0, tzinfo=UTC)) == local(NEW_YORK, 2026, 3, 3, 9, 0)


def test_nine_oclock_stays_nine_oclock_across_the_spring_dst_change() -> None:
    """Berlin moves to summer time on Sunday 29 March 2026: Friday's 09:00 is 08:00 UTC, Monday's 07:00."""
    p = make()
    friday_evening = local(BERLIN, 2026, 3, 27, 18, 0)
    monday = p.next_open(friday_evening)
    assert monday == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert monday.astimezone(BERLIN).hour == 9
    assert p.next_open(local(BERLIN, 2026, 3, 27, 8, 0)) == datetime(2026, 3, 27, 8, 0, tzinfo=UTC)


def test_nine_oclock_stays_nine_oclock_across_the_autumn_dst_change_in_new_york() -> None:
    """New York leaves summer time on Sunday 1 November 2026: 09:00 goes from 13:00 to 14:00 UTC."""
    p = make(timezone="America/New_York")
    assert p.next_open(local(NEW_YORK, 2026, 10, 30, 18, 0)) == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    assert p.next_open(local(NEW_YORK, 2026, 10, 29, 18, 0)) == datetime(2026, 10, 30, 13, 0, tzinfo=UTC)


def test_hours_through_the_dst_night_itself() -> None:
    """Open all Sunday: the night Berlin skips 02:00-03:00 has one hour less, and nothing breaks."""
    p = make(hours=((), (), (), (), (), (), ((0, 1440),)))
    sunday = local(BERLIN, 2026, 3, 29, 1, 30)
    assert p.is_open(sunday) and p.is_open(datetime(2026, 3, 29, 21, 59, tzinfo=UTC))  # 23:59 CEST
    assert p.next_open(datetime(2026, 3, 29, 22, 0, tzinfo=UTC)) == local(BERLIN, 2026, 4, 5, 0, 0)


def test_a_policy_that_is_never_open_says_so() -> None:
    p = make(
        hours=(((540, 600),), (), (), (), (), (), ()),
        holidays=tuple(date(2026, 1, 5) + timedelta(weeks=w) for w in range(120)),
    )
    with pytest.raises(ValueError, match="callback policy sales: never open in the next 800 days"):
        p.next_open(local(BERLIN, 2026, 1, 1, 0, 0))


# --- which missed calls --------------------------------------------------------------------------


def test_a_missed_inbound_call_matches_and_everything_else_does_not() -> None:
    p = make()
    assert p.matches(missed())
    assert not p.matches(missed(direction="outbound"))
    assert not p.matches(missed(direction="internal"))
    assert not p.matches(missed(disposition="answered", miss_reason=None))
    assert not p.matches(missed(pbx="branch"))  # another PBX's call
    assert not p.matches(missed(origin="0b6f1c1e-tag"))  # pbxlink placed it (a callback attempt, a campaign)
    assert not p.matches(missed(miss_reason="failed"))
    for caller in (None, "anonymous", "201", "12345"):
        assert not p.matches(missed(caller=caller)), caller  # nobody to call back


def test_reasons_select_which_misses_are_called_back() -> None:
    p = make(reasons=("busy", "queue_timeout"))
    assert p.matches(missed(miss_reason="busy")) and p.matches(missed(miss_reason="queue_timeout"))
    assert not p.matches(missed(miss_reason="no_answer"))
    assert not p.matches(missed(miss_reason="abandoned"))


def test_an_abandon_after_less_than_min_wait_is_a_misdial() -> None:
    p = make()  # min_wait 5 s
    assert not p.matches(missed(miss_reason="abandoned", wait_seconds=4.9))
    assert not p.matches(missed(miss_reason="queue_timeout", wait_seconds=2.0))
    assert not p.matches(missed(miss_reason="abandoned", wait_seconds=None))  # never reached a queue
    assert p.matches(missed(miss_reason="abandoned", wait_seconds=5.0))
    assert p.matches(missed(miss_reason="no_answer", wait_seconds=1.0))  # the PBX gave up, not the caller
    assert make(min_wait=0.0).matches(missed(miss_reason="abandoned", wait_seconds=0.0))


def test_queues_and_dids_narrow_the_match_both_when_both_are_given() -> None:
    by_queue = make(queues=("sales", "600"))
    assert by_queue.matches(missed(queue="sales")) and not by_queue.matches(missed(queue="support"))
    assert not by_queue.matches(missed(queue=None))
    by_did = make(dids=("+1 555 123 0000",))
    for callee in ("+15551230000", "5551230000", "15551230000", "+1 (555) 123-0000"):
        assert by_did.matches(missed(callee=callee)), callee
    assert not by_did.matches(missed(callee="5551230001")) and not by_did.matches(missed(callee=None))
    short_did = make(dids=("100",))  # an internal DID / extension the trunk delivers
    assert short_did.matches(missed(callee="100")) and not short_did.matches(missed(callee="1000"))
    both = make(dids=("5551230000",), queues=("sales",))
    assert both.matches(missed())
    assert not both.matches(missed(queue="support")) and not both.matches(missed(callee="5551239999"))


def test_the_first_matching_policy_wins_and_the_website_policy_never_matches_a_call() -> None:
    web = make(name="web", source="web")
    sales = make(name="sales", queues=("sales",))
    anything = make(name="any")
    assert not web.matches(missed())
    assert match_policy([web, sales, anything], missed()) is sales
    assert match_policy([web, sales, anything], missed(queue="support")) is anything
    assert match_policy([web, sales], missed(queue="support")) is None


# --- what the PBX is asked -----------------------------------------------------------------------


def test_agent_first_rings_the_queue_then_dials_the_customer_showing_the_business_number() -> None:
    p = make(present_number="+15551230000")
    assert p.attempt_request("+12025550143", agent="201") == OriginateRequest(
        endpoint="600",
        exten="+12025550143",
        context="pbxlink-callback-agent-first",
        caller_id="+15551230000",
        timeout_s=30,
        variables={"PBXLINK_CUSTOMER": "+12025550143", "PBXLINK_PRESENT": "+15551230000"},
    )


def test_agent_first_ringing_the_agent_who_missed_it_falls_back_to_the_queue() -> None:
    p = make(ring="agent", context="cb")
    assert p.attempt_request("+12025550143", agent="201").endpoint == "201"
    assert p.attempt_request("+12025550143").endpoint == "600"
    req = make(ring="agent", queue=None).attempt_request("+12025550143", agent="202")
    assert (req.endpoint, req.context, req.caller_id) == ("202", "pbxlink-callback-agent-first", None)
    assert req.variables == {"PBXLINK_CUSTOMER": "+12025550143"}
    with pytest.raises(ValueError, match="callback policy sales: no agent to ring"):
        make(ring="agent", queue=None).attempt_request("+12025550143")


def test_customer_first_dials_the_customer_plays_the_message_and_connects_the_queue() -> None:
    p = make(
        order="customer_first", queue="sales", message="custom/callback-intro", present_number="5551230000"
    )
    assert p.attempt_request("+12025550143", agent="201") == OriginateRequest(
        endpoint="+12025550143",
        exten="sales",
        context="pbxlink-callback-customer-first",
        caller_id="5551230000",
        timeout_s=30,
        variables={"PBXLINK_PRESENT": "5551230000", "PBXLINK_MESSAGE": "custom/callback-intro"},
    )
    assert make(order="customer_first").attempt_request("+12025550143").variables == {}


@pytest.mark.parametrize(
    "number",
    ["+1202555014\r\nAction: Command", "2025550143,1", "sip:2025550143@evil", "123", "", "+" + "1" * 21],
)
def test_a_number_that_is_not_a_dial_string_is_refused_before_any_pbx(number: str) -> None:
    for p in (make(), make(order="customer_first")):
        with pytest.raises(
            ValueError, match=r"callback policy sales: number .* is not a phone number to dial"
        ):
            p.attempt_request(number)


def test_an_agent_that_is_not_an_extension_is_refused() -> None:
    with pytest.raises(ValueError, match="callback policy sales: endpoint 'PJSIP/201' is not a queue or an"):
        make(ring="agent").attempt_request("+12025550143", agent="PJSIP/201")


def test_the_requests_pass_both_pbx_controls_validation() -> None:
    """What the policy builds is what the AMI and ESL controls accept, and both send it on."""
    sent: list[dict[str, Any]] = []
    jobs: list[str] = []

    class Link:
        def api(self, command: str) -> str:
            return "+OK"

        def bgapi(self, command: str, *, job_uuid: str | None = None) -> Any:
            from concurrent.futures import Future

            jobs.append(command)
            done: Future[str] = Future()
            done.set_result("+OK Job-UUID")
            return done

    ami = AmiControl("main", lambda action: sent.append(dict(action)) or {"Response": "Success"})
    esl = EslControl("main", Link())
    req = make(present_number="+15551230000").attempt_request("+12025550143")
    ami.originate(req)
    esl.originate(req)
    assert sent[0]["Channel"] == "Local/600@from-internal" and sent[0]["Exten"] == "+12025550143"
    assert sent[0]["Context"] == "pbxlink-callback-agent-first"
    assert "PBXLINK_CUSTOMER=+12025550143" in sent[0]["Variable"]
    assert "user/600 +12025550143 XML pbxlink-callback-agent-first" in jobs[0]
    customer_first = make(order="customer_first", message="custom/intro").attempt_request("+12025550143")
    ami.originate(customer_first)
    assert sent[1]["Channel"] == "Local/+12025550143@from-internal" and sent[1]["Exten"] == "600"


# --- what came of an attempt ---------------------------------------------------------------------


def test_the_outcome_of_an_attempts_call() -> None:
    base = missed(origin="tag")
    assert outcome_of(dataclasses.replace(base, disposition="answered", miss_reason=None)) == "answered"
    assert outcome_of(dataclasses.replace(base, miss_reason="busy")) == "busy"
    assert outcome_of(dataclasses.replace(base, miss_reason="failed")) == "failed"
    for reason in ("no_answer", "abandoned", "queue_timeout", "not_offered", None):
        assert outcome_of(dataclasses.replace(base, miss_reason=reason)) == "no_answer"
