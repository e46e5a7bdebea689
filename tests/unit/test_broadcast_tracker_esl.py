"""The ESL tracker on a campaign's calls: broadcasts answered at the contact's pick-up, mod_avmd's verdict.

Pure: the simulator's generated originates (and hand-edited copies of them) are fed to the
tracker event by event, with no sockets.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pbxlink.domain.calls import CallRecord, CallRingEnded, CallRinging
from pbxlink.esl.feed import subscription
from pbxlink.esl.simulator.synthetic import SyntheticPbx
from pbxlink.esl.tracker import EslTracker
from pbxlink.simulation.callbacks import Customers
from tests.unit.test_esl_tracker_origin import ACME, CUSTOMER, START, TAG, Timed, events_of, feed, final

BROADCAST = "pbxlink-campaign-broadcast"
FIELDS = ("caller", "callee", "agent", "agents", "queue", "disposition", "miss_reason", "hangup_by", "amd")


def broadcast(customer: str, amd: bool = True, queue: str | None = "support"):  # type: ignore[no-untyped-def]
    customers = Customers()
    customers[CUSTOMER] = customer  # type: ignore[assignment]
    variables = (("PBXLINK_MESSAGE", "campaign/renewal"), ("PBXLINK_COL_NAME", "Ada"))
    variables += (("PBXLINK_QUEUE", queue),) if queue else ()
    variables += (("PBXLINK_AMD", "1"),) if amd else ()
    return SyntheticPbx(agents=4, seed=2).originate(
        CUSTOMER,
        "s",
        START,
        ACME,
        ACME,
        context=BROADCAST,
        variables=(*variables, ("pbxlink_tag", TAG)),
        timeout=10.0,
        customers=customers,
    )


def without(events: Timed, subclass: str) -> Timed:
    return [(at, e) for at, e in events if e.get("Event-Subclass") != subclass]


@pytest.mark.parametrize("amd", [True, False])
@pytest.mark.parametrize("customer", ["answer", "machine", "press1", "busy", "no_answer"])
def test_broadcast_records_are_what_the_simulator_played(customer: str, amd: bool) -> None:
    placed = broadcast(customer, amd)
    events = feed(tracker := EslTracker("fs"), events_of(placed))
    got, want = final(events), placed[0].expected
    for key in FIELDS:
        assert getattr(got, key) == getattr(want, key), (key, getattr(got, key), getattr(want, key))
    assert (got.origin, got.direction, got.callee) == (TAG, "outbound", CUSTOMER)
    assert abs(got.wait_seconds - want.wait_seconds) < 0.05  # type: ignore[operator]
    assert abs(got.talk_seconds - want.talk_seconds) < 0.05  # type: ignore[operator]
    assert tracker.open_calls == []
    if customer in ("answer", "machine", "press1"):
        answer = next(at for at, e in events_of(placed) if e.get("Event-Name") == "CHANNEL_ANSWER")
        assert got.answered_at == answer and got.disposition == "answered"
        assert (got.amd is not None) == amd and (got.agent is not None) == (customer == "press1")


def test_the_broadcast_is_known_from_the_context_the_originate_sent_the_leg_to() -> None:
    """The same wire with the callback's context: the customer heard the message but no agent took
    the call, so it is not answered (a callback is answered only when an agent talked)."""
    events = [
        (at, {k: "pbxlink-callback-customer-first" if v == BROADCAST else v for k, v in e.items()})
        for at, e in events_of(broadcast("answer", amd=False))
    ]
    rec = final(feed(EslTracker("fs"), events))  # type: ignore[arg-type]
    assert (rec.disposition, rec.answered_at, rec.agent, rec.origin) == ("missed", None, None, TAG)


def test_a_beep_says_machine_even_without_the_variable_and_the_variable_without_the_beep() -> None:
    events = events_of(broadcast("machine"))
    no_variable = [(at, {k: v for k, v in e.items() if k != "variable_avmd_detect"}) for at, e in events]
    assert final(feed(EslTracker("fs"), no_variable)).amd == "machine"  # type: ignore[arg-type]
    assert final(feed(EslTracker("fs"), without(events, "avmd::beep"))).amd == "machine"


def test_avmd_stopped_without_a_beep_says_human_and_false_does_too() -> None:
    events = events_of(broadcast("answer"))
    assert final(feed(EslTracker("fs"), events)).amd == "human"
    silent = without(events, "avmd::stop")
    assert final(feed(EslTracker("fs"), silent)).amd is None  # avmd said nothing: no verdict
    flagged = [
        (at, {**e, "variable_avmd_detect": "FALSE"} if "variable_uuid" in e else e) for at, e in silent
    ]
    assert final(feed(EslTracker("fs"), flagged)).amd == "human"


def test_a_beep_after_a_stop_overrules_it() -> None:
    events = events_of(broadcast("answer"))
    stop_at = next(i for i, (_, e) in enumerate(events) if e.get("Event-Subclass") == "avmd::stop")
    at, stop = events[stop_at]
    beep = {**stop, "Event-Subclass": "avmd::beep", "Beep-Status": "DETECTED"}
    events[stop_at + 1 : stop_at + 1] = [(at + timedelta(milliseconds=5), beep)]
    assert final(feed(EslTracker("fs"), events)).amd == "machine"


def test_the_tracker_subscribes_to_mod_avmds_events() -> None:
    wanted = subscription(EslTracker("fs").event_names).split()
    assert wanted[wanted.index("CUSTOM") :][1:] == ["callcenter::info", "avmd::beep", "avmd::stop"]


def test_amd_and_the_answer_survive_our_own_restart() -> None:
    events = events_of(broadcast("machine"))
    cut = next(i for i, (_, e) in enumerate(events) if e.get("Event-Subclass") == "avmd::beep")
    first = EslTracker("fs")
    feed(first, events[: cut + 1])
    [open_call] = first.open_calls
    assert open_call.amd == "machine"
    second = EslTracker("fs")  # pbxlink restarted: the open record comes from the database
    second.restore([CallRecord.from_dict(open_call.to_dict())])
    row = {"uuid": open_call.call_id, "call_uuid": open_call.call_id, "name": f"sofia/external/{CUSTOMER}"}
    second.resync([{**row, "callstate": "ACTIVE", "created_epoch": str(int(START))}], events[cut][0], None)
    rec = final(feed(second, events[cut + 1 :]))
    assert (rec.amd, rec.origin, rec.disposition, rec.hangup_by) == ("machine", TAG, "answered", "system")
    assert rec.answered_at is not None and rec.ended_at is not None
    answer = next(at for at, e in events if e.get("Event-Name") == "CHANNEL_ANSWER")
    assert abs((rec.answered_at - answer).total_seconds()) < 0.001
    assert rec.talk_seconds == pytest.approx((rec.ended_at - answer).total_seconds(), abs=0.002)


@pytest.mark.parametrize("endpoint", ["support", "202"])
def test_agent_first_campaign_call_rings_the_agent_with_its_tag(endpoint: str) -> None:
    """The screen-pop of an agent-first campaign call looks the contact up by the tag while the agent's
    phone rings; a queue's member that lost the race stops ringing."""
    variables = (("PBXLINK_CUSTOMER", CUSTOMER), ("pbxlink_tag", TAG))
    placed = SyntheticPbx(agents=4, seed=2).originate(
        endpoint, CUSTOMER, START, ACME, ACME, context="pbxlink-campaign-agent-first", variables=variables
    )
    events = feed(EslTracker("fs"), events_of(placed))
    rings = [e for e in events if isinstance(e, CallRinging)]
    rec = final(events)
    assert rings and all(r.call.origin == TAG for r in rings)
    assert rec.agent == rings[0].agent and rec.disposition == "answered" and rec.callee == CUSTOMER
    assert placed[0].expected.wait_seconds == pytest.approx(rec.wait_seconds, abs=0.05)  # type: ignore[union-attr]
    assert {e.agent for e in events if isinstance(e, CallRingEnded)} == {r.agent for r in rings} - {rec.agent}


def test_the_simulated_beep_is_shaped_as_mod_avmd_fires_it() -> None:
    """A CUSTOM event with the leg's Unique-ID and the detector's figures, but no channel data."""
    [beep] = [e for _, e in events_of(broadcast("machine")) if e.get("Event-Subclass") == "avmd::beep"]
    assert (beep["Event-Name"], beep["Beep-Status"], beep["Call-command"]) == ("CUSTOM", "DETECTED", "avmd")
    assert beep["Event-Calling-File"] == "mod_avmd.c" and float(str(beep["Frequency"])) > 0
    assert not any(k.startswith(("Channel-", "Caller-", "variable_")) for k in beep)
