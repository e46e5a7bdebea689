"""Generated FreeSWITCH traffic: well-formed frames, consistent channels, outcomes that match the events."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest

from pbxlink.esl.simulator.capture import Capture
from pbxlink.esl.simulator.event import EslEvent
from pbxlink.esl.simulator.synthetic import SyntheticPbx, TrafficMix, render_bulk
from pbxlink.esl.simulator.wire import FrameReader
from pbxlink.simulation.timeline import CallTimeline, split_chunks

FIXTURES = Path(__file__).parent.parent / "fixtures" / "freeswitch"
PLAIN_LINE = re.compile(rb"[A-Za-z0-9_-]+: [\x21-\x7e]*\n")


@pytest.fixture(scope="module")
def calls() -> list[CallTimeline]:
    return SyntheticPbx(agents=30, seed=7).calls(300, time.time(), calls_per_minute=20)


def named(timeline: CallTimeline, name: str, subclass_action: str = "") -> list[EslEvent]:
    return [
        e
        for _, e in timeline.events
        if e.name == name and (not subclass_action or e.get("CC-Action") == subclass_action)
    ]


def at(timeline: CallTimeline, event: EslEvent) -> float:
    return next(t for t, e in timeline.events if e is event)


def test_every_event_is_a_well_formed_frame_in_both_formats(calls: list[CallTimeline]) -> None:
    for timeline in calls[:60]:
        for _, event in timeline.events:
            plain, json_frame = event.render("plain"), event.render("json")
            head = event.plain().split(b"\n\n", 1)[0]
            assert all(PLAIN_LINE.fullmatch(line + b"\n") for line in head.split(b"\n")), head
            [plain_frame] = FrameReader().feed(plain)
            [json_again] = FrameReader().feed(json_frame)
            assert plain_frame.event().headers == json_again.event().headers == event.headers  # type: ignore[union-attr]
            assert event.headers[0][0] in ("Event-Name", "Event-Subclass") and event.get(
                "Event-Date-Timestamp"
            )


def test_a_sofia_call_reads_like_the_sip_capture() -> None:
    """Same events in the same order, same header names in the same order, as the real sofia call."""
    real = [e.event for e in Capture.load(FIXTURES / "sip" / "sip_answered.esl").events()]
    real = [e for e in real if e.name not in ("CUSTOM", "API", "HEARTBEAT", "RE_SCHEDULE")]
    real = [e for e in real if e.get("Application") in (None, "bridge")]
    pbx = SyntheticPbx(
        agents=1,
        mix=TrafficMix(
            answered=1, no_answer=0, busy=0, queue_answered=0, queue_abandoned=0, agent_hangs_up=0, recorded=0
        ),
        seed=3,
    )
    generated = [e for _, e in pbx.next_call(time.time()).events if e.get("Application") in (None, "bridge")]
    assert [(e.name, e.get("Call-Direction")) for e in generated] == [
        (e.name, e.get("Call-Direction")) for e in real
    ]
    for ours, theirs in zip(generated, real, strict=True):
        block = [k for k, _ in ours.headers if not k.startswith("variable_")]
        assert block == [k for k, _ in theirs.headers if not k.startswith("variable_")], ours.name


def test_channels_live_from_create_to_destroy(calls: list[CallTimeline]) -> None:
    for timeline in calls:
        created: set[str] = set()
        destroyed: set[str] = set()
        for _, event in timeline.events:
            uuid = event.unique_id
            if uuid is None:
                continue
            assert uuid in timeline.uuids
            assert (
                uuid not in destroyed or event.get("Channel-State") == "CS_DESTROY"
            )  # its last CHANNEL_STATE
            if event.name == "CHANNEL_CREATE":
                created.add(uuid)
            if event.name == "CHANNEL_DESTROY":
                destroyed.add(uuid)
        assert created == destroyed == timeline.uuids
        offsets = [t for t, _ in timeline.events]
        assert offsets == sorted(offsets)
        assert timeline.call_id == named(timeline, "CHANNEL_CREATE")[0].unique_id


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
    assert {"José Müller", "山田 太郎"} <= {c.expected.caller_name for c in calls}
    assert any(c.expected.recording for c in calls)
    assert any(len(named(c, "CUSTOM", "agent-offering")) == 2 for c in calls)  # a queue tried two agents


def test_expected_outcomes_are_what_the_events_say(calls: list[CallTimeline]) -> None:
    for timeline in calls:
        expected = timeline.expected
        customer = named(timeline, "CHANNEL_CREATE")[0]
        assert customer.get("Channel-Name") == f"sofia/external/{expected.caller}@203.0.113.5"
        assert customer.get("Caller-Caller-ID-Name") == expected.caller_name
        assert customer.get("Caller-Destination-Number") == expected.callee
        bridges = named(timeline, "CHANNEL_BRIDGE")
        bridged = at(timeline, bridges[0]) if bridges else 0.0
        hangups = [e for e in named(timeline, "CHANNEL_HANGUP") if at(timeline, e) >= bridged]
        complete = named(timeline, "CHANNEL_HANGUP_COMPLETE")[-1]
        if expected.disposition == "answered":
            agent_leg = bridges[0].get("Other-Leg-Channel-Name") or ""
            assert agent_leg.startswith(f"sofia/internal/{expected.agent}@192.0.2.")
            first = hangups[0].get("Channel-Name") or ""
            assert first.startswith("sofia/internal/" if expected.hangup_by == "agent" else "sofia/external/")
            assert hangups[0].get("variable_sip_hangup_disposition") == "recv_bye"
            talk = at(timeline, hangups[0]) - at(timeline, bridges[0])
            assert expected.talk_seconds == pytest.approx(talk, abs=0.01)
        else:
            assert not bridges and expected.agent is None and expected.agents == []
        if expected.miss_reason == "busy":
            assert (
                complete.get("Hangup-Cause") == "USER_BUSY" and complete.get("variable_DIALSTATUS") == "BUSY"
            )
        if expected.miss_reason == "no_answer":
            assert complete.get("Hangup-Cause") == "NORMAL_CLEARING"
            assert complete.get("variable_originate_disposition") == "NO_ANSWER"
        if expected.queue:
            start = named(timeline, "CUSTOM", "member-queue-start")[0]
            assert start.get("CC-Queue") == f"{expected.queue}@default"
            end = named(timeline, "CUSTOM", "member-queue-end")[0]
            cause = "Terminated" if expected.disposition == "answered" else "Cancel"
            assert end.get("CC-Cause") == cause
            if expected.disposition == "answered":
                started = named(timeline, "CUSTOM", "bridge-agent-start")[0]
                assert started.get("CC-Agent") == f"{expected.agent}@default"
                waited = int(started.get("CC-Agent-Answered-Time")) - int(
                    started.get("CC-Member-Joined-Time")
                )  # type: ignore[arg-type]
                assert abs(waited - expected.wait_seconds) <= 1.0
        if expected.recording:
            assert named(timeline, "RECORD_START")[0].get("Record-File-Path") == expected.recording
            assert named(timeline, "RECORD_STOP")[0].get("Record-File-Path") == expected.recording


def test_long_lived_calls_stay_up() -> None:
    kept = SyntheticPbx(agents=10, seed=1).long_lived(1000, time.time())
    assert len({c.call_id for c in kept}) == 1000
    assert not any(named(c, "CHANNEL_HANGUP") for c in kept)
    assert all(c.expected.ended is False and c.expected.talk_seconds is None for c in kept)


def test_originate_makes_a_click_to_call_from_the_agent_leg() -> None:
    pbx = SyntheticPbx(agents=2, seed=4)
    timeline, agent_leg = pbx.originate(
        "202", "+15557654321", time.time(), ("+15557654321", "Zoë"), ("+15550001000", "ACME")
    )
    expected = timeline.expected
    assert (expected.call_id, expected.direction, expected.agent, expected.callee) == (
        agent_leg,
        "outbound",
        "202",
        "+15557654321",
    )
    created = named(timeline, "CHANNEL_CREATE")
    assert created[0].get("Channel-Name") == "sofia/internal/202@192.0.2.22:5060"
    assert created[0].get("Caller-Caller-ID-Name") == "Zoë"
    assert created[1].get("Channel-Name") == "sofia/external/+15557654321"
    assert created[1].get("Caller-Caller-ID-Number") == "+15550001000"
    assert created[1].get("Other-Leg-Unique-ID") == agent_leg
    busy, _ = pbx.originate("202", "+15557654321", time.time(), ("1", "x"), ("1", "x"))
    assert busy.expected.miss_reason == "busy"  # 202 is still on the first call


def test_bulk_blob_counts_its_events_and_splits_inside_characters_and_escapes() -> None:
    for fmt, inside in (("json", rb"[\x80-\xbf]"), ("plain", rb"[0-9A-F]")):
        stream = render_bulk(2000, seed=9, fmt=fmt)
        reader = FrameReader()
        chunks = split_chunks(stream.blob, max_chunk=4096, seed=1)
        assert b"".join(chunks) == stream.blob
        events = [f.event() for chunk in chunks for f in reader.feed(chunk)]
        assert len(events) == stream.events >= 2000 and reader.pending == 0
        assert [int(e.get("Event-Sequence")) for e in events] == list(range(1, len(events) + 1))  # type: ignore[union-attr, arg-type]
        cut = [c for c in chunks[1:] if re.match(inside, c)]
        assert cut, fmt
    json_cut = next(
        c for c in split_chunks(render_bulk(500, fmt="json").blob, 4096, 1)[1:] if 0x80 <= c[0] <= 0xBF
    )
    with pytest.raises(UnicodeDecodeError):
        json_cut.decode("utf-8")


def test_traffic_mix_parses_the_cli_form() -> None:
    mix = TrafficMix.parse("answered=2, busy=0,agent_hangs_up=1")
    assert (mix.answered, mix.busy, mix.agent_hangs_up, mix.no_answer) == (2.0, 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="unknown mix entry"):
        TrafficMix.parse("lunch=1")
