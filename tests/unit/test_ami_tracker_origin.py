"""The AMI tracker learns which calls pbxlink placed: the originate's tag (PBXLINK_TAG) on the record.

Pure: the simulator's generated Originates (and hand-edited copies of them) are fed to the
tracker event by event, with no sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from pbxlink.ami.client import interest_of
from pbxlink.ami.protocol import FrameParser
from pbxlink.ami.simulator.synthetic import SyntheticPbx
from pbxlink.ami.simulator.wire import Headers, encode
from pbxlink.ami.tracker import AmiTracker
from pbxlink.domain.calls import CallEnded, CallEvent, CallRecord, CallStarted
from pbxlink.simulation.callbacks import Customers
from pbxlink.simulation.timeline import CallTimeline, merge

TAG = "5f0c3a52-8d1e-4b7a-9c3d-2e6f1a7b8c90"
START = 1_795_440_000.0
CUSTOMER = "+15557654321"
AGENT_FIRST = "pbxlink-callback-agent-first"
CUSTOMER_FIRST = "pbxlink-callback-customer-first"
Event = dict[str, str | list[str]]
Timed = list[tuple[datetime, Event]]


def originate(
    channel: str = "Local/201@from-internal",
    exten: str = CUSTOMER,
    context: str = AGENT_FIRST,
    *,
    tag: str = TAG,
    action_id: str | None = None,
    customer: str = "answer",
    seed: int = 1,
) -> CallTimeline[Headers] | Headers:
    customers = Customers()
    customers[CUSTOMER] = customer  # type: ignore[assignment]
    return SyntheticPbx(agents=4, seed=seed).originate(
        channel,
        exten,
        START,
        context=context,
        callerid='"ACME" <+15550001000>',
        action_id=f"pbxlink-originate-{tag}" if action_id is None else action_id,
        variables=[("PBXLINK_TAG", tag)] if tag else [],
        customers=customers,
    )


def events_of(timeline: CallTimeline[Headers] | Headers) -> Timed:
    """The timeline's events as the client hands them over (a repeated header as a list)."""
    assert isinstance(timeline, CallTimeline)
    out = []
    for ts, headers in merge([timeline]):
        event: Event = {}
        for key, value in headers:
            old = event.get(key)
            event[key] = value if old is None else [*old, value] if isinstance(old, list) else [old, value]
        out.append((datetime.fromtimestamp(ts, UTC), event))
    return out


def feed(tracker: AmiTracker, events: Timed) -> list[CallEvent]:
    return [ev for at, event in events for ev in tracker.feed(event, at)]


def final(events: list[CallEvent]) -> CallRecord:
    [ended] = [e for e in events if isinstance(e, CallEnded)]
    return ended.call


def without(events: Timed, drop: Callable[[Event], bool]) -> Timed:
    return [(at, e) for at, e in events if not drop(e)]


def is_tag_varset(event: Event) -> bool:
    return event.get("Event") == "VarSet" and event.get("Variable") == "PBXLINK_TAG"


def is_response(event: Event) -> bool:
    return event.get("Event") == "OriginateResponse"


@pytest.mark.parametrize("customer", ["answer", "busy", "no_answer", "fail"])
@pytest.mark.parametrize(
    ("channel", "exten", "context"),
    [
        ("Local/202@from-internal", CUSTOMER, AGENT_FIRST),
        ("Local/1000@from-internal", CUSTOMER, AGENT_FIRST),  # the support queue rings its members
        (f"Local/{CUSTOMER}@from-internal", "1000", CUSTOMER_FIRST),
    ],
)
def test_callback_flows_become_the_record_the_simulator_expects(
    channel: str, exten: str, context: str, customer: str
) -> None:
    timeline = originate(channel, exten, context, customer=customer)
    if customer == "fail" and context == CUSTOMER_FIRST:
        assert isinstance(timeline, list)  # the customer cannot be reached: no channel, no call
        return
    assert isinstance(timeline, CallTimeline)
    events = feed(tracker := AmiTracker("main"), events_of(timeline))
    got, want = final(events).to_dict(), timeline.expected
    assert got["origin"] == want.origin == TAG and got["direction"] == "outbound"
    for key in ("caller", "callee", "agent", "agents", "queue", "disposition", "miss_reason", "hangup_by"):
        assert got[key] == getattr(want, key), (key, got[key], getattr(want, key))
    assert abs(got["wait_seconds"] - want.wait_seconds) < 0.05
    assert abs(got["talk_seconds"] - want.talk_seconds) < 0.05
    assert tracker.open_calls == [] and len([e for e in events if isinstance(e, CallStarted)]) == 1


def test_customer_first_record_waits_from_the_queue_and_rings_the_agents() -> None:
    timeline = originate(f"Local/{CUSTOMER}@from-internal", "1000", CUSTOMER_FIRST)
    events = feed(AmiTracker("main"), events_of(timeline))
    rec = final(events)
    assert (rec.caller, rec.callee, rec.queue, rec.disposition) == (None, CUSTOMER, "support", "answered")
    assert rec.agent is not None and rec.answered_at is not None
    joined = next(at for at, e in events_of(timeline) if e.get("Event") == "QueueCallerJoin")
    assert rec.wait_seconds == round((rec.answered_at - joined).total_seconds(), 3)
    assert {e.kind for e in events} >= {"ringing", "answered"}


def test_tag_from_chanvariable_alone() -> None:
    """manager.conf `channelvars = PBXLINK_TAG`: every event of the Local pair's halves carries it
    (`;2` gets a copy of `;1`'s variables when it starts)."""
    plain = without(events_of(originate()), lambda e: is_tag_varset(e) or is_response(e))
    pair = {
        e["Uniqueid"] for _, e in plain if e.get("Event") == "Newchannel" and "Local/" in str(e["Channel"])
    }
    for _, event in plain:
        if event.get("Uniqueid") in pair:
            value = "" if event["Event"] == "Newchannel" else TAG  # not set yet when the channel is made
            event["ChanVariable"] = ["CUSTOMER_ID=77", f"PBXLINK_TAG={value}"]
    rec = final(feed(AmiTracker("main"), plain))
    assert (rec.origin, rec.direction, rec.agent, rec.callee) == (TAG, "outbound", "201", CUSTOMER)
    only_named = without(events_of(originate()), lambda e: is_tag_varset(e) or is_response(e))
    dial = next(e for _, e in only_named if e.get("Event") == "DialBegin" and "Channel" in e)
    dial["ChanVariable(PBXLINK_TAG)"] = TAG  # a client that names the header after the variable
    assert final(feed(AmiTracker("main"), only_named)).origin == TAG


@pytest.mark.parametrize("by_name", [False, True])
def test_tag_from_originate_response_alone(by_name: bool) -> None:
    """A direct `PJSIP/201` originate without variables: the ActionID says whose it is."""
    events = events_of(originate("PJSIP/201", tag="", action_id=f"pbxlink-originate-{TAG}"))
    if by_name:
        response = next(e for _, e in events if is_response(e))
        del response["Uniqueid"]  # then its Channel names the originated channel
    rec = final(feed(AmiTracker("main"), events))
    assert (rec.origin, rec.direction, rec.agent, rec.callee) == (TAG, "outbound", "201", CUSTOMER)


@pytest.mark.parametrize(
    ("variable", "action_id"),
    [
        ("", "click_to_call-2"),  # someone else's Originate
        ("", "crm-originate-" + TAG),
        ("", "pbxlink-originate-<script>alert(1)</script>"),
        ("not a tag\r\nEvent: Hangup", ""),
        ("a" * 65, ""),  # longer than any tag of ours
        ("1234567", ""),  # too short
    ],
)
def test_foreign_or_invalid_tags_are_ignored(variable: str, action_id: str) -> None:
    events = events_of(originate("PJSIP/201", tag="", action_id=action_id))
    if variable:
        first = events[0][1]
        snapshot = {k: v for k, v in first.items() if k not in ("Event", "Privilege")}
        events.insert(
            1, (events[0][0], {"Event": "VarSet", **snapshot, "Variable": "PBXLINK_TAG", "Value": variable})
        )
    rec = final(feed(AmiTracker("main"), events))
    assert rec.origin is None and rec.agent == "201"


def test_first_valid_tag_wins() -> None:
    events = events_of(originate())
    varset = next(i for i, (_, e) in enumerate(events) if is_tag_varset(e))
    later = dict(events[varset][1], Value="0f0c3a52-8d1e-4b7a-9c3d-2e6f1a7b8c91")
    events.insert(varset + 1, (events[varset][0], later))
    assert final(feed(AmiTracker("main"), events)).origin == TAG


@pytest.mark.parametrize(
    "failed",
    [
        lambda: originate(f"Local/{CUSTOMER}@from-internal", "1000", CUSTOMER_FIRST, customer="fail"),
        lambda: originate("Local/299@from-internal"),  # no such agent or queue
    ],
)
def test_originate_that_made_no_channel_makes_no_record(failed: Callable[[], Headers]) -> None:
    response = failed()
    assert isinstance(response, list)
    fields = dict(response)
    assert (fields["Response"], fields["Uniqueid"], fields["ActionID"]) == (
        "Failure",
        "<null>",
        f"pbxlink-originate-{TAG}",
    )
    tracker = AmiTracker("main")
    assert tracker.feed(fields, datetime.fromtimestamp(START, UTC)) == []
    assert tracker.open_calls == []


def _split_when_answered(
    timeline: CallTimeline[Headers] | Headers,
) -> tuple[Timed, Timed, list[dict[str, str]]]:
    """The events up to the customer's answer, the rest, and the channels CoreShowChannels lists then."""
    events = events_of(timeline)
    cut = next(
        i
        for i, (_, e) in enumerate(events)
        if e.get("Event") == "DialEnd"
        and e.get("DialStatus") == "ANSWER"
        and "trunk" in str(e.get("DestChannel"))
    )
    live: dict[str, dict[str, str]] = {}
    for _, e in events[: cut + 1]:
        if e.get("Event") == "Hangup":
            live.pop(str(e["Uniqueid"]), None)
        elif "Uniqueid" in e and "Channel" in e and e.get("Event") != "OriginateResponse":
            live[str(e["Uniqueid"])] = {
                k: str(e[k]) for k in ("Channel", "Uniqueid", "Linkedid", "ChannelStateDesc")
            }
    listed = [{**c, "Duration": "00:00:05", "BridgeId": "", "Application": "Dial"} for c in live.values()]
    return events[: cut + 1], events[cut + 1 :], listed


def test_tag_survives_a_reconnect_and_the_resync_that_lists_no_variables() -> None:
    before, after, listed = _split_when_answered(originate())
    tracker = AmiTracker("main")
    feed(tracker, before)
    tracker.link_lost(before[-1][0])
    assert tracker.resync(listed, before[-1][0] + timedelta(seconds=1), None) == []
    rec = final(feed(tracker, after))
    assert (rec.origin, rec.disposition, rec.end_seen) == (TAG, "answered", True)


def test_tag_survives_our_own_restart_and_a_call_that_ended_meanwhile() -> None:
    before, after, listed = _split_when_answered(originate())
    first = AmiTracker("main")
    feed(first, before)
    second = AmiTracker("main")  # pbxlink restarted: the open record comes from the database
    second.restore([CallRecord.from_dict(r.to_dict()) for r in first.open_calls])
    assert second.resync(listed, before[-1][0] + timedelta(seconds=1), None) == []
    assert final(feed(second, after)).origin == TAG
    third = AmiTracker("main")
    third.restore(first.open_calls)
    gone = final(third.resync([], after[-1][0], None))  # it ended while nobody watched
    assert (gone.origin, gone.end_seen) == (TAG, False)


def test_the_link_keeps_the_tag_events_its_parser_would_otherwise_drop() -> None:
    parser = FrameParser(interest=interest_of(AmiTracker("main")))
    snapshot = [("Channel", "Local/201@from-internal-00000000;1"), ("Uniqueid", "1.0"), ("Linkedid", "1.0")]
    frames = [
        [
            ("Event", "VarSet"),
            ("Privilege", "dialplan,all"),
            *snapshot,
            ("Variable", "PBXLINK_TAG"),
            ("Value", TAG),
        ],
        [
            ("Event", "VarSet"),
            ("Privilege", "dialplan,all"),
            *snapshot,
            ("Variable", "RINGTIME"),
            ("Value", "0"),
        ],
        [("Event", "OriginateResponse"), ("Privilege", "call,all"), ("ActionID", f"pbxlink-originate-{TAG}")],
    ]
    parsed = parser.feed(b"Asterisk Call Manager/11.0.0\r\n" + b"".join(encode(f) for f in frames))
    assert [(m["Event"], m.get("Variable")) for m in parsed] == [
        ("VarSet", "PBXLINK_TAG"),
        ("OriginateResponse", None),
    ]
