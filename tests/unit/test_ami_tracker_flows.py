"""Call flows real sites produce that the captures do not show, fed through the pure tracker."""

from __future__ import annotations

from datetime import timedelta

from pbxlink.ami.tracker import AmiTracker
from pbxlink.domain.calls import CallAnswered, CallEnded, CallRinging, CallStarted, CallTransferred
from tests.unit.ami_flow import T0, Flow, ended


def inbound(f: Flow, did: str = "100") -> object:
    return f.new("trunk", "+15551112222", exten=did, name="Ann Caller")


def test_customer_hangs_up_while_the_agent_rings_is_an_abandon() -> None:
    f = Flow()
    c = inbound(f)
    a = f.new("201", "201", linkedid=c.linkedid, context="internal", exten="s")
    f.ring(c, a).wait(3.2)
    f.ev("HangupRequest", c, Cause="127").dest("DialEnd", c, a, DialStatus="CANCEL")
    f.ev("Hangup", a, Cause="127").ev("Hangup", c, Cause="127")
    [rec] = ended(f.run())
    assert (rec["disposition"], rec["miss_reason"], rec["hangup_by"]) == ("missed", "abandoned", "customer")
    assert rec["wait_seconds"] == 3.2 and rec["agent"] is None


def test_queue_timeout_is_not_an_abandon_even_with_queuecallerabandon() -> None:
    f = Flow()
    c = inbound(f, "108")
    f.ev("QueueCallerJoin", c, Queue="sales", Position="1")
    a = f.new("202", "202", linkedid=c.linkedid, context="internal", exten="s")
    f.dest("AgentCalled", c, a, Queue="sales").ring(c, a).wait(12)
    f.dest("AgentRingNoAnswer", c, a, Queue="sales").dest("DialEnd", c, a, DialStatus="NOANSWER")
    f.ev("Hangup", a, Cause="0")
    f.ev("QueueCallerAbandon", c, Queue="sales", HoldTime="12").ev("QueueCallerLeave", c, Queue="sales")
    f.ev("VarSet", c, Variable="QUEUESTATUS", Value="TIMEOUT").wait(0.1).system_hangup(c)
    events = f.run()
    [rec] = ended(events)
    assert (rec["miss_reason"], rec["hangup_by"], rec["queue"]) == ("queue_timeout", "system", "sales")
    assert [e.agent for e in events if isinstance(e, CallRinging)] == ["202"]


def test_a_redirect_to_another_agent_is_a_transfer_and_one_record() -> None:
    f = Flow()
    c = inbound(f)
    a = f.new("201", "201", linkedid=c.linkedid, context="internal", exten="s")
    f.ring(c, a).wait(2).answer(c, a).wait(4)
    # AMI Redirect of the caller: no transfer event, the agent's leg is hung up by Asterisk
    f.ev("BridgeLeave", c, BridgeUniqueid="b1").ev("Newexten", c, Context="internal", Exten="202")
    f.system_hangup(a)
    b = f.new("202", "202", linkedid=c.linkedid, context="internal", exten="s")
    f.ring(c, b).wait(1.5).answer(c, b).wait(6).bye(b, c)
    events = f.run()
    [rec] = ended(events)
    assert rec["agents"] == ["201", "202"] and rec["agent"] == "201"
    assert rec["transfers"] == [{"from": "201", "to": "202", "kind": "redirect"}]
    assert rec["hangup_by"] == "agent"
    assert abs(rec["talk_seconds"] - 10.0) < 0.01  # 4 s with 201 + 6 s with 202, not the 1.5 s of ringing
    assert len([e for e in events if isinstance(e, CallTransferred)]) == 1


def test_attended_transfer_moves_the_customer_to_the_consulted_agent() -> None:
    f = Flow()
    c = inbound(f)
    a = f.new("201", "201", linkedid=c.linkedid, context="internal", exten="s")
    f.ring(c, a).wait(2).answer(c, a).wait(3)
    # 201 puts the customer on hold and calls 202: a second call with its own Linkedid
    f.ev("Hold", a)
    a2 = f.new("201", "201", context="internal", exten="202")
    b = f.new("202", "202", linkedid=a2.linkedid, context="internal", exten="s")
    f.ring(a2, b).wait(1).answer(a2, b).wait(2)
    f.ev(
        "AttendedTransfer",
        Result="Success",
        OrigTransfererChannel=a.name,
        OrigTransfererLinkedid=c.linkedid,
        SecondTransfererChannel=a2.name,
        SecondTransfererLinkedid=a2.linkedid,
        TransferTargetChannel=b.name,
        DestType="Bridge",
    )
    f.system_hangup(a, a2)
    b.linkedid = c.linkedid  # bridged with the customer, 202's channel takes the older Linkedid
    f.ev("BridgeEnter", b, BridgeUniqueid="b1").wait(5).bye(c, b)
    records = {r["call_id"]: r for r in ended(f.run())}
    main = records[c.linkedid]
    assert main["transfers"] == [{"from": "201", "to": "202", "kind": "attended"}]
    assert main["agents"] == ["201", "202"] and main["hangup_by"] == "customer"
    assert main["disposition"] == "answered"
    consult = records[a2.linkedid]
    assert consult["direction"] == "internal" and consult["caller"] == "201" and consult["callee"] == "202"
    assert len(records) == 2


def test_outbound_call_from_a_sip_phone() -> None:
    f = Flow()
    a = f.new("201", "201", context="from-internal", exten="15557654321")
    t = f.new("trunk", "201", linkedid=a.linkedid, context="from-internal", exten="s")
    f.ring(a, t).wait(4).answer(a, t).wait(30).bye(t, a)
    [rec] = ended(f.run())
    assert (rec["direction"], rec["caller"], rec["callee"], rec["agent"]) == (
        "outbound",
        "201",
        "15557654321",
        "201",
    )
    assert (rec["hangup_by"], rec["wait_seconds"], rec["talk_seconds"]) == ("customer", 4.0, 30.0)


def test_internal_call_lists_both_extensions_and_the_caller_hangs_up() -> None:
    f = Flow()
    a = f.new("201", "201", context="from-internal", exten="202")
    b = f.new("202", "202", linkedid=a.linkedid, context="from-internal", exten="s")
    f.ring(a, b).wait(1).answer(a, b).wait(10).bye(a, b)
    [rec] = ended(f.run())
    assert (rec["direction"], rec["caller"], rec["callee"], rec["agent"]) == ("internal", "201", "202", "202")
    assert rec["agents"] == ["201", "202"] and rec["hangup_by"] == "agent"


def test_click_to_call_whose_agent_leg_fails_is_a_failed_outbound_attempt() -> None:
    f = Flow()
    uid = "1795440100.0"
    f.ev(
        "Newchannel",
        Channel="Local/299@agents-00000020;1",
        Uniqueid=uid,
        Linkedid=uid,
        Exten="299",
        Context="agents",
        CallerIDNum="<unknown>",
    )
    f.ev(
        "Newchannel",
        Channel="Local/299@agents-00000020;2",
        Uniqueid="1795440100.1",
        Linkedid=uid,
        Exten="299",
        Context="agents",
        CallerIDNum="<unknown>",
    )
    f.ev("DialBegin", DestChannel="Local/299@agents-00000020;1", DestUniqueid=uid, DestLinkedid=uid)
    f.ev(
        "DialEnd",
        DestChannel="Local/299@agents-00000020;1",
        DestUniqueid=uid,
        DestLinkedid=uid,
        DialStatus="CONGESTION",
    )
    f.ev("Hangup", Channel="Local/299@agents-00000020;1", Uniqueid=uid, Linkedid=uid, Cause="34")
    f.ev("SoftHangupRequest", Channel="Local/299@agents-00000020;2", Uniqueid="1795440100.1", Linkedid=uid)
    f.ev("Hangup", Channel="Local/299@agents-00000020;2", Uniqueid="1795440100.1", Linkedid=uid, Cause="34")
    [rec] = ended(f.run())
    assert (
        rec["direction"] == "outbound" and rec["disposition"] == "missed" and rec["miss_reason"] == "failed"
    )


def test_hold_is_part_of_the_talk() -> None:
    f = Flow()
    c = inbound(f)
    a = f.new("201", "201", linkedid=c.linkedid, context="internal", exten="s")
    f.ring(c, a).wait(2).answer(c, a).wait(5)
    f.ev("Hold", c).ev("MusicOnHoldStart", c).ev("BridgeLeave", c, BridgeUniqueid="b1").wait(20)
    f.ev("MusicOnHoldStop", c).ev("Unhold", c).ev("BridgeEnter", c, BridgeUniqueid="b1").wait(5)
    f.bye(c, a)
    events = f.run()
    [rec] = ended(events)
    assert rec["talk_seconds"] == 30.0 and rec["agents"] == ["201"] and rec["transfers"] == []
    assert len([e for e in events if isinstance(e, CallAnswered)]) == 1


def test_ringall_where_one_is_busy_and_the_other_times_out_is_no_answer() -> None:
    f = Flow()
    c = inbound(f)
    a = f.new("201", "201", linkedid=c.linkedid, context="internal", exten="s")
    b = f.new("202", "202", linkedid=c.linkedid, context="internal", exten="s")
    f.ring(c, a).ring(c, b).dest("DialEnd", c, a, DialStatus="BUSY").ev("Hangup", a, Cause="17")
    f.wait(20).dest("DialEnd", c, b, DialStatus="NOANSWER").ev("Hangup", b, Cause="0").system_hangup(c)
    [rec] = ended(f.run())
    assert (rec["miss_reason"], rec["hangup_by"]) == ("no_answer", "system")


def test_pbx_shutdown_closes_open_calls_once_as_system() -> None:
    f = Flow()
    tracker = AmiTracker("main")
    c = inbound(f)
    a = f.new("201", "201", linkedid=c.linkedid, context="internal", exten="s")
    f.ring(c, a).wait(2).answer(c, a).wait(3).ev("Shutdown", Shutdown="Uncleanly", Restart="True")
    [rec] = ended(f.run(tracker))
    assert (rec["hangup_by"], rec["disposition"], rec["talk_seconds"]) == ("system", "answered", 3.0)
    f.system_hangup(c, a)  # stragglers after the shutdown change nothing
    assert f.run(tracker) == [] and tracker.open_calls == []


def test_missing_linkedid_and_malformed_events_are_skipped_and_tracking_goes_on() -> None:
    tracker = AmiTracker("main")
    assert tracker.feed({"Event": "Newchannel", "Channel": "PJSIP/trunk-1", "Uniqueid": "9.1"}, T0) == []
    assert tracker.feed({"Event": "DialBegin"}, T0) == []
    assert tracker.feed({}, T0) == []
    assert tracker.feed({"Event": ["Newchannel", "Hangup"], "Channel": ["x"]}, T0) == []
    f = Flow()
    c = inbound(f)
    f.wait(1).bye(c)
    [rec] = ended(f.run(tracker))
    assert rec["miss_reason"] == "not_offered" and rec["hangup_by"] == "customer"


# --- reconnects, PBX restarts and our own restarts ---------------------------------------------


def _answered_call(f: Flow, tracker: AmiTracker) -> tuple[object, object]:
    c = inbound(f)
    a = f.new("201", "201", linkedid=c.linkedid, context="internal", exten="s")
    f.ring(c, a).wait(2).answer(c, a).wait(5)
    f.run(tracker)
    return c, a


def _show(*chans: object, duration: str = "00:00:07") -> list[dict[str, str]]:
    return [{**ch.fields(), "Duration": duration, "BridgeId": "b1", "Application": "Dial"} for ch in chans]


def test_call_that_ended_while_disconnected_is_closed_once_unseen() -> None:
    f, tracker = Flow(), AmiTracker("main")
    _answered_call(f, tracker)
    tracker.link_lost(f.at())
    events = tracker.resync([], f.at() + timedelta(seconds=30), pbx_started_at=T0 - timedelta(days=3))
    [rec] = ended(events)
    assert rec["end_seen"] is False and rec["hangup_by"] is None and rec["disposition"] == "answered"
    assert rec["ended_at"] == "2026-11-23T12:00:07.000Z"  # when the link was lost: last known alive
    assert tracker.open_calls == [] and tracker.resync([], f.at(), None) == []


def test_call_cut_by_a_pbx_restart_is_closed_once_by_the_system() -> None:
    f, tracker = Flow(), AmiTracker("main")
    _answered_call(f, tracker)
    tracker.link_lost(f.at())
    [rec] = ended(
        tracker.resync([], f.at() + timedelta(seconds=20), pbx_started_at=f.at() + timedelta(seconds=10))
    )
    assert rec["hangup_by"] == "system" and rec["end_seen"] is False


def test_call_still_up_after_reconnect_continues_and_ends_once() -> None:
    f, tracker = Flow(), AmiTracker("main")
    c, a = _answered_call(f, tracker)
    tracker.link_lost(f.at())
    f.wait(10)
    assert tracker.resync(_show(c, a), f.at(), pbx_started_at=T0 - timedelta(days=1)) == []
    f.wait(3).bye(a, c)
    [rec] = ended(f.run(tracker))
    assert rec["end_seen"] is True and rec["hangup_by"] == "agent" and rec["talk_seconds"] == 18.0


def test_unknown_call_seen_at_connect_is_adopted_and_recorded_once() -> None:
    f, tracker = Flow(), AmiTracker("main")
    c = f.new("trunk", "+15553334444", exten="100")
    a = f.new("201", "201", linkedid=c.linkedid, context="internal", exten="s")
    f.events.clear()  # pbxlink was not connected while these happened
    c.state = a.state = "Up"
    events = tracker.resync(_show(c, a, duration="00:01:00"), T0 + timedelta(minutes=1), None)
    assert [type(e) for e in events] == [CallStarted, CallAnswered]
    assert events[0].call.started_at == T0 and events[1].call.agent == "201"
    f.wait(61).bye(c, a)
    [rec] = ended(f.run(tracker))
    assert rec["caller"] == "+15553334444" and rec["agent"] == "201" and rec["hangup_by"] == "customer"


def test_our_own_restart_resumes_open_calls_from_the_database() -> None:
    f, first = Flow(), AmiTracker("main")
    c, a = _answered_call(f, first)
    open_records = first.open_calls
    second = AmiTracker("main")  # pbxlink restarted: a new tracker, the records come from storage
    second.restore(open_records)
    f.wait(10)
    assert second.resync(_show(c, a), f.at(), None) == []
    f.wait(2).bye(c, a)
    [rec] = ended(f.run(second))
    assert rec["call_id"] == c.linkedid and rec["agent"] == "201" and rec["hangup_by"] == "customer"
    assert len([e for e in f.run(second) if isinstance(e, CallEnded)]) == 0


def test_restored_call_gone_at_restart_is_closed_unseen() -> None:
    f, first = Flow(), AmiTracker("main")
    _answered_call(f, first)
    second = AmiTracker("main")
    second.restore(first.open_calls)
    [rec] = ended(second.resync([], f.at() + timedelta(minutes=5), None))
    assert rec["end_seen"] is False and second.open_calls == []


def test_dahdi_analog_phone_is_an_agent_through_the_device_table() -> None:
    from pbxlink.ami.channels import agent_map

    tracker = AmiTracker("main", agent_map(None, {"DAHDI/3": "203"}))
    f = Flow()
    c = inbound(f)
    phone = f.new("", "203", linkedid=c.linkedid, context="internal", exten="s", channel="DAHDI/3-1")
    f.ring(c, phone).wait(2).answer(c, phone).wait(4).bye(phone, c)
    [rec] = ended(f.run(tracker))
    assert (rec["agent"], rec["hangup_by"], rec["talk_seconds"]) == ("203", "agent", 4.0)


def test_a_call_moved_to_another_queue_keeps_the_first_queue_it_entered() -> None:
    f = Flow()
    c = inbound(f)
    f.ev("QueueCallerJoin", c, Queue="support", Position="1")
    a = f.new("201", "201", linkedid=c.linkedid, context="internal", exten="s")
    f.dest("AgentCalled", c, a, Queue="support").ring(c, a).wait(2).answer(c, a).wait(3)
    f.dest("AgentConnect", c, a, Queue="support", HoldTime="2")
    # 201 sends the caller on to the sales queue, where 202 takes it
    f.ev("BridgeLeave", c, BridgeUniqueid="b1").system_hangup(a)
    f.ev("QueueCallerJoin", c, Queue="sales", Position="1")
    b = f.new("202", "202", linkedid=c.linkedid, context="internal", exten="s")
    f.dest("AgentCalled", c, b, Queue="sales").ring(c, b).wait(1).answer(c, b).wait(4).bye(b, c)
    [rec] = ended(f.run())
    assert rec["queue"] == "support" and rec["agents"] == ["201", "202"]
