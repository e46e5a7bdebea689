"""FreeSWITCH call flows the captures lack: hang-up dispositions, queues, restarts, resyncs."""

from __future__ import annotations

from datetime import timedelta

from pbxlink.domain.calls import CallAnswered, CallStarted
from pbxlink.esl.tracker import EslTracker
from tests.unit.esl_flow import T0, Flow, ended


def test_agent_bye_makes_the_agent_the_one_who_hung_up() -> None:
    f = Flow()
    c = f.customer()
    a = f.agent("201", c)
    f.wait(3).bridge(c, a).wait(40)
    f.hangup(a, disposition="recv_bye").hangup(c, disposition="send_bye")
    [rec] = ended(f.run())
    assert (rec["agent"], rec["hangup_by"], rec["wait_seconds"], rec["talk_seconds"]) == (
        "201",
        "agent",
        3.0,
        40.0,
    )


def test_customer_cancel_while_ringing_is_an_abandon() -> None:
    f = Flow()
    c = f.customer()
    a = f.agent("202", c)
    f.wait(4).hangup(c, disposition="recv_cancel", variable_DIALSTATUS="CANCEL")
    f.hangup(a, "ORIGINATOR_CANCEL", disposition="send_cancel")
    [rec] = ended(f.run())
    assert (rec["disposition"], rec["miss_reason"], rec["hangup_by"]) == ("missed", "abandoned", "customer")


def test_dialplan_hangup_after_a_ring_timeout_is_the_system() -> None:
    f = Flow()
    c = f.customer()
    a = f.agent("202", c)
    f.wait(20).hangup(a, "NO_ANSWER")
    f.hangup(c, disposition="send_bye", variable_DIALSTATUS="NOANSWER")
    [rec] = ended(f.run())
    assert (rec["miss_reason"], rec["hangup_by"], rec["wait_seconds"]) == ("no_answer", "system", 20.0)


def test_queue_timeout_from_callcenter_is_not_an_abandon() -> None:
    f = Flow()
    c = f.customer(did="108")
    cc = {"Event-Subclass": "callcenter::info", "CC-Member-Session-UUID": c.uuid, "CC-Queue": "sales@default"}
    f.ev("CUSTOM", **cc, **{"CC-Action": "member-queue-start"})
    f.ev("CUSTOM", **cc, **{"CC-Action": "agent-offering", "CC-Agent": "202@default"})
    f.wait(30).ev(
        "CUSTOM",
        **cc,
        **{"CC-Action": "bridge-agent-fail", "CC-Agent": "202@default", "CC-Hangup-Cause": "NO_ANSWER"},
    )
    f.ev(
        "CUSTOM",
        **cc,
        **{"CC-Action": "member-queue-end", "CC-Cause": "Cancel", "CC-Cancel-Reason": "TIMEOUT"},
    )
    f.hangup(c, disposition="send_bye")
    [rec] = ended(f.run())
    assert (rec["queue"], rec["miss_reason"], rec["hangup_by"]) == ("sales", "queue_timeout", "system")


def test_freeswitch_restart_hangs_up_with_system_shutdown() -> None:
    f = Flow()
    c = f.customer()
    a = f.agent("201", c)
    f.wait(2).bridge(c, a).wait(10)
    f.hangup(a, "SYSTEM_SHUTDOWN", disposition="send_bye").hangup(
        c, "SYSTEM_SHUTDOWN", disposition="send_bye"
    )
    [rec] = ended(f.run())
    assert (rec["hangup_by"], rec["disposition"]) == ("system", "answered")


def test_malformed_events_are_skipped_and_tracking_goes_on() -> None:
    tracker = EslTracker("fs")
    for bad in (
        {},
        {"Event-Name": "CHANNEL_CREATE"},
        {"Event-Name": ["CHANNEL_BRIDGE", "x"], "Unique-ID": []},
        {"Event-Name": "CUSTOM", "Event-Subclass": "callcenter::info", "CC-Action": "agent-offering"},
    ):
        assert tracker.feed(bad, T0) == []  # type: ignore[arg-type]
    f = Flow()
    c = f.customer()
    f.wait(1).hangup(c, disposition="recv_bye")
    [rec] = ended(f.run(tracker))
    assert (rec["miss_reason"], rec["hangup_by"]) == ("not_offered", "customer")


def _row(leg: object, callstate: str, created: float) -> dict[str, str]:
    return {
        "uuid": leg.uuid,
        "name": leg.name,
        "cid_num": leg.number,
        "cid_name": leg.cid_name,  # type: ignore[attr-defined]
        "dest": leg.dest,
        "call_uuid": leg.other or leg.uuid,
        "callstate": callstate,  # type: ignore[attr-defined]
        "created_epoch": str(int(created)),
    }


def test_resync_closes_a_call_that_ended_unseen_and_keeps_a_live_one() -> None:
    f, tracker = Flow(), EslTracker("fs")
    gone, live = f.customer("+15550000001"), f.customer("+15550000002")
    agent = f.agent("201", live)
    f.wait(2).bridge(live, agent).wait(5)
    f.run(tracker)
    tracker.link_lost(f.at())
    rows = [_row(live, "ACTIVE", T0.timestamp()), _row(agent, "ACTIVE", T0.timestamp())]
    [rec] = ended(tracker.resync(rows, f.at() + timedelta(seconds=20), pbx_started_at=T0 - timedelta(days=1)))
    assert rec["call_id"] == gone.uuid and rec["end_seen"] is False and rec["hangup_by"] is None
    f.wait(30).hangup(live, disposition="recv_bye").hangup(agent, disposition="send_bye")
    [rec] = ended(f.run(tracker))
    assert rec["call_id"] == live.uuid and rec["hangup_by"] == "customer" and rec["end_seen"] is True


def test_call_cut_by_a_freeswitch_restart_is_closed_by_the_system() -> None:
    f, tracker = Flow(), EslTracker("fs")
    c = f.customer()
    f.wait(5).run(tracker)
    tracker.link_lost(f.at())
    [rec] = ended(
        tracker.resync([], f.at() + timedelta(seconds=9), pbx_started_at=f.at() + timedelta(seconds=3))
    )
    assert (rec["call_id"], rec["hangup_by"], rec["end_seen"]) == (c.uuid, "system", False)


def test_unknown_call_seen_at_connect_is_adopted_once() -> None:
    f, tracker = Flow(), EslTracker("fs")
    c = f.customer()
    a = f.agent("201", c)
    f.events.clear()  # pbxlink was not connected while these happened
    now = T0 + timedelta(minutes=2)
    out = tracker.resync(
        [_row(c, "ACTIVE", T0.timestamp()), _row(a, "ACTIVE", T0.timestamp() + 1)], now, None
    )
    assert [type(e) for e in out] == [CallStarted, CallAnswered]
    assert out[0].call.started_at == T0 and out[1].call.agent == "201"
    f.t = 150
    f.hangup(c, disposition="recv_bye").hangup(a, disposition="send_bye")
    [rec] = ended(f.run(tracker))
    assert (rec["caller"], rec["agent"], rec["hangup_by"]) == ("+15551112222", "201", "customer")


def test_our_own_restart_resumes_open_calls() -> None:
    f, first = Flow(), EslTracker("fs")
    c = f.customer()
    a = f.agent("201", c)
    f.wait(2).bridge(c, a).wait(3).run(first)
    second = EslTracker("fs")
    second.restore(first.open_calls)
    assert (
        second.resync([_row(c, "ACTIVE", T0.timestamp()), _row(a, "ACTIVE", T0.timestamp())], f.at(), None)
        == []
    )
    f.wait(10).hangup(a, disposition="recv_bye").hangup(c, disposition="send_bye")
    [rec] = ended(f.run(second))
    assert (rec["call_id"], rec["agent"], rec["hangup_by"]) == (c.uuid, "201", "agent")


def test_a_call_moved_to_another_queue_keeps_the_first_queue_it_entered() -> None:
    f = Flow()
    c = f.customer(did="108")
    for queue in ("support@default", "sales@default"):  # the support queue gives up; sales takes it
        cc = {"Event-Subclass": "callcenter::info", "CC-Member-Session-UUID": c.uuid, "CC-Queue": queue}
        f.ev("CUSTOM", **cc, **{"CC-Action": "member-queue-start"}).wait(5)
        f.ev(
            "CUSTOM",
            **cc,
            **{"CC-Action": "member-queue-end", "CC-Cause": "Cancel", "CC-Cancel-Reason": "TIMEOUT"},
        )
    f.hangup(c, disposition="send_bye")
    [rec] = ended(f.run())
    assert rec["queue"] == "support"
