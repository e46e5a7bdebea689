"""Generated AMI traffic: well-formed frames, consistent channels, outcomes that match the events."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest

from pbxlink.ami.simulator.capture import Capture
from pbxlink.ami.simulator.synthetic import SyntheticPbx, TrafficMix, render_bulk
from pbxlink.ami.simulator.wire import Headers, WireEvent, encode, event_mask, parse_classes
from pbxlink.simulation.timeline import CallTimeline, split_chunks

FIXTURES = Path(__file__).parent.parent / "fixtures" / "asterisk"
FRAME = re.compile(rb"Event: [A-Za-z]+\r\nPrivilege: [a-z]+,all\r\n(?:[A-Za-z0-9-]+: [^\r\n]*\r\n)*\r\n")


@pytest.fixture(scope="module")
def calls() -> list[CallTimeline]:
    return SyntheticPbx(agents=30, seed=7).calls(400, time.time(), calls_per_minute=20)


def named(timeline: CallTimeline, event: str) -> list[dict[str, str]]:
    return [dict(h) for _, h in timeline.events if h[0][1] == event]


def test_every_event_is_a_well_formed_frame_and_channel_events_carry_the_calls_linkedid(
    calls: list[CallTimeline],
) -> None:
    for timeline in calls:
        for _, headers in timeline.events:
            assert FRAME.fullmatch(encode(headers)), headers
            fields = dict(headers)
            if "Uniqueid" in fields and fields["Event"] != "OriginateResponse":
                assert fields["Linkedid"] == timeline.call_id
            if "DestUniqueid" in fields:
                assert fields["DestLinkedid"] == timeline.call_id


def test_channels_live_from_newchannel_to_hangup(calls: list[CallTimeline]) -> None:
    for timeline in calls:
        live: set[str] = set()
        for _offset, headers in timeline.events:
            fields = dict(headers)
            if fields["Event"] == "Newchannel":
                live.add(fields["Uniqueid"])
            elif "ChannelState" in fields:
                assert fields["Uniqueid"] in live, fields
            if fields["Event"] == "Hangup":
                live.remove(fields["Uniqueid"])
        assert not live, timeline.expected
        offsets = [offset for offset, _ in timeline.events]
        assert offsets == sorted(offsets)
        assert timeline.call_id == named(timeline, "Newchannel")[0]["Uniqueid"]


def test_the_mix_yields_every_kind_of_call_and_multibyte_names(calls: list[CallTimeline]) -> None:
    kinds = Counter(
        (c.expected.disposition, c.expected.miss_reason, c.expected.hangup_by, bool(c.expected.queue))
        for c in calls
    )
    assert {
        ("answered", None, "agent", False),
        ("answered", None, "customer", False),
        ("answered", None, "agent", True),
        ("answered", None, "customer", True),
        ("missed", "no_answer", "system", False),
        ("missed", "busy", "system", False),
        ("missed", "abandoned", "customer", True),
    } <= set(kinds)
    names = {c.expected.caller_name for c in calls}
    assert {"José Müller", "Zoë Ægir"} <= names
    assert any(c.expected.recording for c in calls)


def test_expected_outcomes_are_what_the_events_say(calls: list[CallTimeline]) -> None:
    for timeline in calls:
        expected = timeline.expected
        requests = named(timeline, "HangupRequest")
        ends = {e["DialStatus"] for e in named(timeline, "DialEnd")}
        if expected.hangup_by == "agent":
            assert requests[0]["Channel"].startswith(f"PJSIP/{expected.agent}-")
        elif expected.hangup_by == "customer":
            assert requests[0]["Channel"].startswith("PJSIP/trunk-")
        else:
            assert not requests
        if expected.miss_reason == "no_answer":
            assert ends == {"NOANSWER"}
        if expected.miss_reason == "busy":
            assert ends == {"BUSY"}
        if expected.miss_reason == "abandoned":
            assert named(timeline, "QueueCallerAbandon")[0]["Queue"] == expected.queue
            assert not named(timeline, "AgentConnect")
        if expected.queue and expected.disposition == "answered":
            assert named(timeline, "AgentConnect")[0]["MemberName"] == f"Agent {expected.agent}"
            complete = named(timeline, "AgentComplete")[0]
            assert complete["Reason"] == ("agent" if expected.hangup_by == "agent" else "caller")
        if expected.recording:
            variables = {e["Variable"]: e["Value"] for e in named(timeline, "VarSet")}
            assert variables["MIXMONITOR_FILENAME"] == expected.recording
        assert named(timeline, "Newchannel")[0]["CallerIDNum"].removeprefix("+1") in expected.caller


def test_answered_times_match_the_event_times(calls: list[CallTimeline]) -> None:
    for timeline in (c for c in calls if c.expected.disposition == "answered"):
        times = {(h[0][1], dict(h).get("Channel", "")[:11]): t for t, h in reversed(timeline.events)}
        answered = times[("BridgeCreate", "")]
        ended = max(t for t, h in timeline.events if h[0][1] == "Hangup")
        assert timeline.expected.wait_seconds == pytest.approx(answered, abs=0.01)
        assert timeline.expected.talk_seconds == pytest.approx(ended - answered, abs=0.01)


def test_long_lived_calls_stay_up() -> None:
    pbx = SyntheticPbx(agents=10, seed=1)
    kept = pbx.long_lived(1000, time.time())
    assert len({c.call_id for c in kept}) == 1000
    assert not any(named(c, "Hangup") for c in kept)
    assert all(c.expected.ended is False and c.expected.talk_seconds is None for c in kept)


def test_originate_makes_a_click_to_call_that_answers_with_the_action_id() -> None:
    timeline = SyntheticPbx(agents=2, seed=4).originate(
        "PJSIP/202",
        "15559876543",
        time.time(),
        context="outbound",
        callerid='"Zoë Ægir" <202>',
        action_id="a-1",
    )
    response = named(timeline, "OriginateResponse")[0]
    assert response["ActionID"] == "a-1" and response["Channel"].startswith("PJSIP/202-")
    assert response["CallerIDName"] == "Zoë Ægir"
    assert named(timeline, "DialBegin")[0]["DestChannel"].startswith("PJSIP/trunk-")
    expected = timeline.expected
    assert (expected.direction, expected.agent, expected.callee) == ("outbound", "202", "15559876543")
    assert expected.disposition == "answered" and expected.hangup_by in {"agent", "customer"}


def test_bulk_blob_counts_its_events_repeats_headers_and_splits_multibyte_characters() -> None:
    stream = render_bulk(3000, seed=9)
    frames = stream.blob.split(b"\r\n\r\n")[:-1]
    assert len(frames) == stream.events >= 3000
    assert all(f.split(b"\r\n")[2].startswith(b"Timestamp: ") for f in frames)
    assert any(f.count(b"\r\nChanVariable: ") == 2 for f in frames)
    stream.blob.decode("utf-8")
    chunks = split_chunks(stream.blob, max_chunk=4096, seed=1)
    assert b"".join(chunks) == stream.blob
    split_inside = [c for c in chunks[1:] if 0x80 <= c[0] <= 0xBF]  # starts with a continuation byte
    assert split_inside
    with pytest.raises(UnicodeDecodeError):
        split_inside[0].decode("utf-8")


def test_traffic_mix_parses_the_cli_form() -> None:
    mix = TrafficMix.parse("answered=2, busy=0,agent_hangs_up=1")
    assert (mix.answered, mix.busy, mix.agent_hangs_up, mix.no_answer) == (2.0, 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="unknown mix entry"):
        TrafficMix.parse("lunch=1")


def test_capture_replay_events_leave_out_login_events_responses_and_list_items() -> None:
    startup = Capture.load(FIXTURES / "startup_sync.ami")
    assert [m.kind for m in startup.messages].count("response") == 9
    assert startup.replay_events() == []
    sip = Capture.load(FIXTURES / "sip" / "sip_answered")
    events = sip.replay_events()
    assert events[0].event == "Newchannel" and len(events) == 87
    assert b"".join(m.raw for m in sip.messages) == (FIXTURES / "sip" / "sip_answered.ami").read_bytes()
    assert sip.chunks[-1].eof


def test_wire_event_keeps_captured_bytes_and_moves_only_the_timestamp() -> None:
    raw = Capture.load(FIXTURES / "sip" / "sip_answered.ami").replay_events()[0].raw
    event = WireEvent.from_raw(raw)
    assert event.timestamp == 1795438404.433348 and event.classes == {"call"}
    assert event.render(1795438404.433348) == raw
    assert event.render(None) == raw.replace(b"Timestamp: 1795438404.433348\r\n", b"")
    built: Headers = [("Event", "Shutdown"), ("Privilege", "system,all"), ("Restart", "True")]
    assert WireEvent.from_headers(built).render(12.5) == (
        b"Event: Shutdown\r\nPrivilege: system,all\r\nTimestamp: 12.500000\r\nRestart: True\r\n\r\n"
    )


def test_permission_and_event_masks_read_like_asterisk() -> None:
    assert parse_classes("system,call,agent,user") == {"system", "call", "agent", "user"}
    assert "security" in parse_classes("all")
    assert event_mask("off") == frozenset() and event_mask("") is None
    assert event_mask("on") == parse_classes("all")
    assert event_mask("3") == frozenset({"system", "call"})
