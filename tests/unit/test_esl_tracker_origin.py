"""The ESL tracker learns which calls pbxlink placed: the originate's tag (pbxlink_tag) on the record.

Pure: the simulator's generated originates (and hand-edited copies of them) and hand-made
event sequences are fed to the tracker event by event, with no sockets.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pbxlink.domain.calls import CallEnded, CallEvent, CallRecord, CallStarted
from pbxlink.esl.simulator.synthetic import SyntheticPbx
from pbxlink.esl.tracker import EslTracker
from pbxlink.simulation.callbacks import Customers
from pbxlink.simulation.timeline import CallTimeline, merge
from tests.unit.esl_flow import Flow, Leg, ended

TAG = "5f0c3a52-8d1e-4b7a-9c3d-2e6f1a7b8c90"
START = 1_795_440_000.0
CUSTOMER = "+15557654321"
ACME = ("+15550001000", "ACME")
AGENT_FIRST = "pbxlink-callback-agent-first"
CUSTOMER_FIRST = "pbxlink-callback-customer-first"
Event = dict[str, str | list[str]]
Timed = list[tuple[datetime, Event]]


def originate(
    endpoint: str = "201",
    number: str = CUSTOMER,
    context: str = AGENT_FIRST,
    *,
    customer: str = "answer",
    tag: str = TAG,
) -> tuple[CallTimeline, str] | str:  # type: ignore[type-arg]
    customers = Customers()
    customers[CUSTOMER] = customer  # type: ignore[assignment]
    variables = (("origination_caller_id_number", ACME[0]), ("pbxlink_tag", tag))
    return SyntheticPbx(agents=4, seed=2).originate(
        endpoint, number, START, ACME, ACME, context=context, variables=variables, customers=customers
    )


def events_of(placed: tuple[CallTimeline, str] | str) -> Timed:  # type: ignore[type-arg]
    """The call's events as the client hands them over (a repeated header as a list)."""
    assert not isinstance(placed, str)
    out: Timed = []
    for ts, event in merge([placed[0]]):
        fields: Event = {}
        for key, value in event.headers:
            old = fields.get(key)
            fields[key] = value if old is None else [*old, value] if isinstance(old, list) else [old, value]
        if event.body is not None:
            fields["_body"] = event.body
        out.append((datetime.fromtimestamp(ts, UTC), fields))
    return out


def feed(tracker: EslTracker, events: Timed) -> list[CallEvent]:
    return [ev for at, event in events for ev in tracker.feed(event, at)]


def final(events: list[CallEvent]) -> CallRecord:
    [done] = [e for e in events if isinstance(e, CallEnded)]
    return done.call


def job(body: str, argument: str = f"{{pbxlink_tag={TAG}}}user/201 {CUSTOMER} XML {AGENT_FIRST}") -> Event:
    """BACKGROUND_JOB of a `bgapi originate` whose Job-UUID is the tag, as pbxlink sends it."""
    return {
        "Event-Name": "BACKGROUND_JOB",
        "Job-UUID": TAG,
        "Job-Command": "originate",
        "Job-Command-Arg": argument,
        "_body": body,
    }


@pytest.mark.parametrize("customer", ["answer", "busy", "no_answer", "fail"])
@pytest.mark.parametrize(
    ("endpoint", "number", "context"),
    [
        ("202", CUSTOMER, AGENT_FIRST),
        ("support", CUSTOMER, AGENT_FIRST),  # the queue's members ring at once; the first answers
        (CUSTOMER, "support", CUSTOMER_FIRST),
    ],
)
def test_callback_flows_become_the_record_the_simulator_expects(
    endpoint: str, number: str, context: str, customer: str
) -> None:
    placed = originate(endpoint, number, context, customer=customer)
    if customer == "fail" and context == CUSTOMER_FIRST:
        assert placed == "-ERR NORMAL_TEMPORARY_FAILURE\n"  # no channel, so no call
        return
    assert not isinstance(placed, str)
    events = feed(tracker := EslTracker("fs"), events_of(placed))
    got, want = final(events).to_dict(), placed[0].expected
    assert got["origin"] == want.origin == TAG and got["direction"] == "outbound"
    for key in ("caller", "callee", "agent", "agents", "queue", "disposition", "miss_reason", "hangup_by"):
        assert got[key] == getattr(want, key), (key, got[key], getattr(want, key))
    assert abs(got["wait_seconds"] - want.wait_seconds) < 0.1
    assert abs(got["talk_seconds"] - want.talk_seconds) < 0.1
    assert tracker.open_calls == [] and len([e for e in events if isinstance(e, CallStarted)]) == 1
    started = next(e for e in events if isinstance(e, CallStarted))
    assert started.call.origin == TAG  # known from the first leg's CHANNEL_CREATE


def test_tag_from_the_background_job_alone() -> None:
    """A leg whose events lack the variable: `+OK <uuid>` of pbxlink's own job names it."""
    placed = originate()
    events = events_of(placed)
    for _, event in events:
        event.pop("variable_pbxlink_tag", None)
    answered = next(i for i, (_, e) in enumerate(events) if e.get("Event-Name") == "CHANNEL_ANSWER")
    events.insert(answered + 1, (events[answered][0], job(f"+OK {placed[1]}\n")))
    rec = final(feed(EslTracker("fs"), events))
    assert (rec.origin, rec.agent, rec.callee, rec.disposition) == (TAG, "201", CUSTOMER, "answered")


@pytest.mark.parametrize(
    "edit",
    [
        lambda e: e.update({"Job-Command-Arg": f"user/201 {CUSTOMER} XML {AGENT_FIRST}"}),  # another client's
        lambda e: e.update({"Job-Command": "status"}),
        lambda e: e.update({"_body": "-ERR NO_ANSWER\n"}),
    ],
)
def test_a_job_that_is_not_a_successful_pbxlink_originate_tags_nothing(edit) -> None:  # type: ignore[no-untyped-def]
    placed = originate()
    events = events_of(placed)
    for _, event in events:
        event.pop("variable_pbxlink_tag", None)
    foreign = job(f"+OK {placed[1]}\n")
    edit(foreign)
    events.insert(len(events) // 2, (events[0][0], foreign))
    assert final(feed(EslTracker("fs"), events)).origin is None


@pytest.mark.parametrize("value", ["<script>alert(1)</script>", "1234567", "f" * 65, ""])
def test_an_invalid_variable_is_ignored(value: str) -> None:
    events = events_of(originate(tag=value))
    rec = final(feed(EslTracker("fs"), events))
    assert rec.origin is None and rec.agent == "201"


def test_failed_originate_makes_no_record() -> None:
    tracker = EslTracker("fs")
    assert tracker.feed(job("-ERR USER_NOT_REGISTERED\n"), datetime.fromtimestamp(START, UTC)) == []
    assert tracker.open_calls == []
    assert originate("299") == "-ERR USER_NOT_REGISTERED\n"


def test_phones_an_originate_rings_at_once_are_one_call_and_a_later_one_may_win() -> None:
    f, tagged = Flow(), {"variable_pbxlink_tag": TAG}
    first = Leg(
        "00000000-0000-4000-8000-0000000a0001", "sofia/internal/201@pbx", "outbound", "1000", "ACME", "201"
    )
    second = Leg(
        "00000000-0000-4000-8000-0000000a0002", "sofia/internal/202@pbx", "outbound", "1000", "ACME", "202"
    )
    f.ev("CHANNEL_CREATE", first, **tagged).ev("CHANNEL_CREATE", second, **tagged).wait(2)
    f.ev("CHANNEL_ANSWER", second, **{"Answer-State": "answered"})
    f.hangup(first, "LOSE_RACE", "send_cancel")
    customer = Leg(
        "00000000-0000-4000-8000-0000000a0003",
        f"sofia/external/{CUSTOMER}",
        "outbound",
        "1000",
        "ACME",
        CUSTOMER,
        second.uuid,
    )
    f.ev("CHANNEL_CREATE", customer).wait(3).bridge(second, customer).wait(20)
    f.hangup(customer, disposition="recv_bye").hangup(second, disposition="send_bye")
    events = f.run()
    [rec] = ended(events)
    assert (rec["call_id"], rec["origin"], rec["caller"], rec["agent"]) == (first.uuid, TAG, "202", "202")
    assert (rec["callee"], rec["disposition"], rec["hangup_by"]) == (CUSTOMER, "answered", "customer")
    assert rec["wait_seconds"] == 3.0 and rec["talk_seconds"] == 20.0


def _split_when_bridged(placed: tuple[CallTimeline, str] | str) -> tuple[Timed, Timed, list[dict[str, str]]]:  # type: ignore[type-arg]
    """The events up to the bridge, the rest, and the rows `show channels` lists then."""
    events = events_of(placed)
    cut = next(i for i, (_, e) in enumerate(events) if e.get("Event-Name") == "CHANNEL_BRIDGE")
    rows: dict[str, dict[str, str]] = {}
    for _, e in events[: cut + 1]:
        if e.get("Event-Name") in ("CHANNEL_CREATE", "CHANNEL_BRIDGE"):
            rows[str(e["Unique-ID"])] = {
                "uuid": str(e["Unique-ID"]),
                "call_uuid": str(e["Channel-Call-UUID"]),
                "name": str(e["Channel-Name"]),
                "dest": str(e["Caller-Destination-Number"]),
                "callstate": "ACTIVE",
                "created_epoch": str(int(START)),
            }
        elif e.get("Event-Name") == "CHANNEL_DESTROY":
            rows.pop(str(e["Unique-ID"]), None)
    return events[: cut + 1], events[cut + 1 :], list(rows.values())


def test_tag_survives_a_reconnect_and_the_resync_that_lists_no_variables() -> None:
    before, after, rows = _split_when_bridged(originate())
    tracker = EslTracker("fs")
    feed(tracker, before)
    tracker.link_lost(before[-1][0])
    assert tracker.resync(rows, before[-1][0] + timedelta(seconds=1), None) == []
    rec = final(feed(tracker, after))
    assert (rec.origin, rec.disposition, rec.end_seen) == (TAG, "answered", True)


def test_tag_survives_our_own_restart_and_a_call_that_ended_meanwhile() -> None:
    before, after, rows = _split_when_bridged(originate())
    first = EslTracker("fs")
    feed(first, before)
    second = EslTracker("fs")  # pbxlink restarted: the open record comes from the database
    second.restore([CallRecord.from_dict(r.to_dict()) for r in first.open_calls])
    second.resync(rows, before[-1][0] + timedelta(seconds=1), None)
    assert final(feed(second, after)).origin == TAG
    third = EslTracker("fs")
    third.restore(first.open_calls)
    gone = final(third.resync([], after[-1][0], None))
    assert (gone.origin, gone.end_seen) == (TAG, False)
