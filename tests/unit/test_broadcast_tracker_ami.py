"""The AMI tracker on a campaign's calls: broadcasts answered at the contact's pick-up, AMD()'s verdict.

Pure: the simulator's generated Originates (and hand-edited copies of them) are fed to the
tracker event by event, with no sockets.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pbxlink.ami.simulator.synthetic import SyntheticPbx
from pbxlink.ami.simulator.wire import Headers
from pbxlink.ami.tracker import AmiTracker
from pbxlink.domain.calls import CallRecord, CallRingEnded, CallRinging
from pbxlink.simulation.callbacks import Customers
from pbxlink.simulation.timeline import CallTimeline
from tests.unit.test_ami_tracker_origin import CUSTOMER, START, TAG, Timed, events_of, feed, final

BROADCAST = "pbxlink-campaign-broadcast"
FIELDS = ("caller", "callee", "agent", "agents", "queue", "disposition", "miss_reason", "hangup_by", "amd")


def broadcast(
    customer: str, amd: bool = True, queue: str | None = "support"
) -> CallTimeline[Headers] | Headers:
    customers = Customers()
    customers[CUSTOMER] = customer  # type: ignore[assignment]
    variables = [("PBXLINK_MESSAGE", "campaign/renewal"), ("PBXLINK_COL_NAME", "Ada")]
    variables += [("PBXLINK_QUEUE", queue)] if queue else []
    variables += [("PBXLINK_AMD", "1")] if amd else []
    return SyntheticPbx(agents=4, seed=1).originate(
        f"Local/{CUSTOMER}@from-internal",
        "s",
        START,
        context=BROADCAST,
        callerid="+15550001000",
        action_id=f"pbxlink-originate-{TAG}",
        variables=[*variables, ("PBXLINK_TAG", TAG)],
        customers=customers,
    )


def edited(events: Timed, old: str, new: str) -> Timed:
    """The events with every header value `old` replaced by `new`."""
    return [
        (at, {k: new if v == old else v for k, v in e.items()})  # type: ignore[misc]
        for at, e in events
    ]


@pytest.mark.parametrize("amd", [True, False])
@pytest.mark.parametrize("customer", ["answer", "machine", "press1", "busy", "no_answer"])
def test_broadcast_records_are_what_the_simulator_played(customer: str, amd: bool) -> None:
    timeline = broadcast(customer, amd)
    assert isinstance(timeline, CallTimeline)
    events = feed(tracker := AmiTracker("main"), events_of(timeline))
    got, want = final(events), timeline.expected
    for key in FIELDS:
        assert getattr(got, key) == getattr(want, key), (key, getattr(got, key), getattr(want, key))
    assert (got.origin, got.direction, got.callee) == (TAG, "outbound", CUSTOMER)
    assert abs(got.wait_seconds - want.wait_seconds) < 0.05  # type: ignore[operator]
    assert abs(got.talk_seconds - want.talk_seconds) < 0.05  # type: ignore[operator]
    assert tracker.open_calls == []
    if customer in ("answer", "machine", "press1"):
        picked_up = next(at for at, e in events_of(timeline) if e.get("DialStatus") == "ANSWER")
        assert got.answered_at == picked_up and got.disposition == "answered"
        assert got.talk_seconds == round((got.ended_at - picked_up).total_seconds(), 3)  # type: ignore[operator]
        assert (got.amd is not None) == amd and (got.agent is not None) == (customer == "press1")


def test_press1_rings_and_hands_the_call_to_the_queue_agent() -> None:
    timeline = broadcast("press1", amd=False)
    events = feed(AmiTracker("main"), events_of(timeline))
    rings = [e for e in events if isinstance(e, CallRinging)]
    rec = final(events)
    assert rings and all(r.call.origin == TAG and r.call.answered_at is not None for r in rings)
    assert rec.agent in {r.agent for r in rings} and rec.agents == [rec.agent] and rec.queue == "support"


def test_the_context_tells_a_broadcast_from_a_customer_first_callback() -> None:
    """The same wire with the callback's context: the customer heard the message but no agent took
    the call, so it is not answered (a callback is answered only when an agent talked)."""
    events = edited(events_of(broadcast("answer", amd=False)), BROADCAST, "pbxlink-callback-customer-first")
    rec = final(feed(AmiTracker("main"), events))
    assert (rec.disposition, rec.answered_at, rec.agent, rec.origin) == ("missed", None, None, TAG)


@pytest.mark.parametrize(("status", "amd"), [("NOTSURE", "notsure"), ("HANGUP", None), ("HUMAN", "human")])
def test_amdstatus_becomes_the_records_amd(status: str, amd: str | None) -> None:
    events = edited(events_of(broadcast("machine")), "MACHINE", status)
    assert final(feed(AmiTracker("main"), events)).amd == amd


def test_amdstatus_counts_on_any_channel_of_the_call() -> None:
    events = events_of(broadcast("answer"))
    for _, e in events:
        if e.get("Variable") == "AMDSTATUS":
            e["Channel"] = str(e["Channel"]).replace(";1", ";2")
            e["Uniqueid"] = next(
                str(x["Uniqueid"]) for _, x in events if str(x.get("Channel")) == e["Channel"]
            )
    assert final(feed(AmiTracker("main"), events)).amd == "human"


def test_amd_and_the_answer_survive_our_own_restart() -> None:
    events = events_of(broadcast("machine"))
    cut = next(i for i, (_, e) in enumerate(events) if e.get("Variable") == "AMDCAUSE")
    first = AmiTracker("main")
    feed(first, events[: cut + 1])
    [open_call] = first.open_calls
    assert (open_call.amd, open_call.answered_at is not None) == ("machine", True)
    second = AmiTracker("main")  # pbxlink restarted: the open record comes from the database
    second.restore([CallRecord.from_dict(open_call.to_dict())])
    live: dict[str, dict[str, str]] = {}
    for _, e in events[: cut + 1]:
        if e.get("Event") == "Hangup":
            live.pop(str(e["Uniqueid"]), None)
        elif "Uniqueid" in e and "Channel" in e and e.get("Event") != "OriginateResponse":
            live[str(e["Uniqueid"])] = {k: str(e[k]) for k in ("Channel", "Uniqueid", "Linkedid")}
    listed = [{**c, "Duration": "00:00:04", "BridgeId": "", "ChannelStateDesc": "Up"} for c in live.values()]
    second.resync(listed, events[cut][0] + timedelta(seconds=1), None)
    rec = final(feed(second, events[cut + 1 :]))
    assert (rec.amd, rec.origin, rec.disposition, rec.hangup_by) == ("machine", TAG, "answered", "system")
    assert rec.answered_at is not None and rec.ended_at is not None and open_call.answered_at is not None
    assert abs((rec.answered_at - open_call.answered_at).total_seconds()) < 0.001  # kept to the millisecond
    assert rec.talk_seconds == pytest.approx((rec.ended_at - rec.answered_at).total_seconds(), abs=0.002)


@pytest.mark.parametrize("endpoint", ["1000", "202"])
def test_agent_first_campaign_call_rings_the_agent_with_its_tag(endpoint: str) -> None:
    """The screen-pop of an agent-first campaign call looks the contact up by the tag while the agent's
    phone rings; a queue's member that lost the race stops ringing."""
    customers = Customers()
    timeline = SyntheticPbx(agents=4, seed=1).originate(
        f"Local/{endpoint}@from-internal",
        CUSTOMER,
        START,
        context="pbxlink-campaign-agent-first",
        callerid="+15550001000",
        action_id=f"pbxlink-originate-{TAG}",
        variables=[("PBXLINK_CUSTOMER", CUSTOMER), ("PBXLINK_TAG", TAG)],
        customers=customers,
    )
    events = feed(AmiTracker("main"), events_of(timeline))
    rings = [e for e in events if isinstance(e, CallRinging)]
    rec = final(events)
    assert rings and all(r.call.origin == TAG for r in rings)
    assert rec.agent == rings[0].agent and rec.disposition == "answered" and rec.callee == CUSTOMER
    assert timeline.expected.wait_seconds == pytest.approx(rec.wait_seconds, abs=0.05)  # type: ignore[union-attr]
    ended = {e.agent for e in events if isinstance(e, CallRingEnded)}
    assert ended == {r.agent for r in rings} - {rec.agent}


def test_the_simulated_amd_verdict_is_shaped_as_app_amd_sets_it() -> None:
    """Two VarSets on the channel running AMD(), right after its Newexten: AMDSTATUS, then AMDCAUSE."""
    events = [e for _, e in events_of(broadcast("machine"))]
    amd = next(i for i, e in enumerate(events) if e.get("Application") == "AMD")
    status, cause = events[amd + 1], events[amd + 2]
    assert (status["Event"], status["Privilege"], status["Channel"]) == (
        "VarSet",
        "dialplan,all",
        events[amd]["Channel"],
    )
    assert (status["Variable"], status["Value"], cause["Variable"]) == ("AMDSTATUS", "MACHINE", "AMDCAUSE")
    assert str(cause["Value"]).startswith("LONGGREETING-")
