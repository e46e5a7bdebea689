"""ESL wire formats against the real captures: events re-render byte for byte, times move as a whole,
subscriptions follow mod_event_socket's rules, the channel table answers as mod_commands does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pbxlink.esl.simulator.capture import Capture
from pbxlink.esl.simulator.channels import CALL_COLUMNS, CHANNEL_COLUMNS, ChannelTable
from pbxlink.esl.simulator.event import EslEvent, parse_json, parse_plain, url_decode, url_encode
from pbxlink.esl.simulator.stamp import event_time, shift
from pbxlink.esl.simulator.subscription import Subscription
from pbxlink.esl.simulator.wire import FrameReader

FIXTURES = Path(__file__).parent.parent / "fixtures" / "freeswitch"
CAPTURES = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("**/*.esl"))


@pytest.mark.parametrize("name", CAPTURES)
def test_every_captured_event_re_renders_byte_for_byte(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    reader = FrameReader()
    frames = reader.feed(raw)
    assert reader.pending == 0
    position = events = 0
    for frame in frames:
        wire = raw[position : position + frame.size]
        position += frame.size
        if (event := frame.event()) is not None:
            events += 1
            fmt = "json" if frame.content_type == "text/event-json" else "plain"
            assert event.render(fmt) == wire
    assert position == len(raw) and events > 10


def test_url_encoding_follows_switch_url_encode() -> None:
    assert url_encode("fd00::2") == "fd00%3A%3A2"
    assert url_encode('"Customer" <+15551234567>') == "%22Customer%22%20%3C%2B15551234567%3E"
    assert url_encode("a,b/c(d)$e~f'g!") == "a,b/c(d)$e~f'g!"  # outside SWITCH_URL_UNSAFE
    assert url_encode("José\r\n") == "Jos%C3%A9%0D%0A"
    assert url_encode("tone_stream://%(200,800,440)") == "tone_stream%3A//%25(200,800,440)"
    assert url_encode("already %41 encoded") == "already%20%41%20encoded"  # never double-encoded
    assert url_decode("Jos%C3%A9%20M%C3%BCller") == "José Müller"


def test_plain_and_json_carry_the_same_event() -> None:
    event = EslEvent(
        [
            ("Event-Name", "CHANNEL_HANGUP_COMPLETE"),
            ("Hangup-Cause", "NORMAL_CLEARING"),
            ("Caller-Caller-ID-Name", "山田 太郎"),
            ("variable_DP_MATCH", ("7201", "201")),
            ("Hangup-Cause", "NORMAL_CLEARING"),
            ("variable_empty", ""),
        ],
        "+OK done\n",
    )
    plain = event.plain()
    assert b"variable_DP_MATCH: ARRAY%3A%3A7201%7C%3A201\n" in plain
    assert b"variable_empty: _undef_\n" in plain
    assert plain.endswith(b"Content-Length: 9\n\n+OK done\n")
    assert event.json().endswith(b',"Content-Length":"9","_body":"+OK done\\n"}')
    from_json = parse_json(event.json())
    assert from_json.headers == event.headers and from_json.body == event.body
    from_plain = parse_plain(plain)
    assert from_plain.headers[:5] == event.headers[:5] and from_plain.body == event.body


def test_shift_moves_every_time_field_by_whole_seconds() -> None:
    event = next(
        e.event
        for e in Capture.load(FIXTURES / "100_inbound_answered.esl").events()
        if e.event.name == "CHANNEL_HANGUP_COMPLETE"
    )
    moved = shift(event, 3600 * 24 + 7)
    before, after = dict(event.headers), dict(moved.headers)
    assert event_time(moved) == pytest.approx(event_time(event) + 86407)  # type: ignore[operator]
    assert after["variable_end_uepoch"] == str(int(before["variable_end_uepoch"]) + 86_407_000_000)
    assert after["variable_end_epoch"] == str(int(before["variable_end_epoch"]) + 86407)
    assert after["variable_start_stamp"] == "2026-11-24 12:05:46"  # from 2026-11-23 12:05:39
    assert after["Event-Date-GMT"] == "Tue, 24 Nov 2026 12:05:53 GMT"
    assert (
        after["variable_billsec"] == before["variable_billsec"]
        and after["Caller-Channel-Transfer-Time"] == "0"
    )
    assert after["Unique-ID"] == before["Unique-ID"]


def event(name: str, subclass: str = "", **headers: str) -> EslEvent:
    head = [("Event-Subclass", subclass)] if subclass else []
    return EslEvent([*head, ("Event-Name", name), *headers.items()])


def test_subscription_names_subclasses_and_all() -> None:
    sub = Subscription()
    assert sub.subscribe(["plain", "nonsense"]) == "-ERR no keywords supplied"
    assert sub.subscribe(
        ["json", "channel_create", "SWITCH_EVENT_CHANNEL_ANSWER", "CUSTOM", "callcenter::info"]
    )
    assert sub.fmt == "json"
    assert sub.wants(event("CHANNEL_CREATE")) and sub.wants(event("CHANNEL_ANSWER"))
    assert sub.wants(event("CUSTOM", "callcenter::info")) and not sub.wants(
        event("CUSTOM", "sofia::register")
    )
    assert not sub.wants(event("CHANNEL_STATE"))
    everything = Subscription()
    assert everything.subscribe(["plain", "ALL"]) == "+OK event listener enabled plain"
    assert everything.wants(event("CUSTOM", "sofia::register")) and everything.wants(event("HEARTBEAT"))
    assert everything.unsubscribe(["HEARTBEAT"]) == "+OK events nixed"
    assert not everything.wants(event("HEARTBEAT")) and everything.wants(event("CHANNEL_STATE"))
    assert everything.clear() == "+OK no longer listening for events" and not everything.wants(event("API"))
    assert everything.clear() == "-ERR not listening for events"


def test_filters_and_myevents() -> None:
    sub = Subscription()
    sub.subscribe(["plain", "ALL"])
    assert sub.filter("Unique-ID abc") == "+OK filter added. [Unique-ID]=[abc]"
    assert sub.wants(event("CHANNEL_ANSWER", **{"Unique-ID": "ABC"})) and not sub.wants(event("API"))
    sub.filter("add Event-Name /^HEART/")
    assert sub.wants(event("HEARTBEAT"))
    sub.filter("Channel-Name -sofia/x")  # a negative filter: the match vetoes (no regex after a sign)
    assert not sub.wants(event("CHANNEL_ANSWER", **{"Unique-ID": "abc", "Channel-Name": "sofia/x"}))
    assert sub.filter("delete all") == "+OK filter deleted. [all][]" and sub.wants(event("API"))
    assert sub.filter("Unique-ID") == "-ERR invalid syntax"
    mine = Subscription()
    mine.narrow("abc")
    assert mine.wants(event("CHANNEL_ANSWER", **{"Unique-ID": "abc"}))
    assert not mine.wants(event("CHANNEL_ANSWER", **{"Unique-ID": "def"})) and not mine.wants(
        event("HEARTBEAT")
    )


def test_channel_table_answers_show_channels_and_calls_mid_call() -> None:
    table = ChannelTable()
    events = [e.event for e in Capture.load(FIXTURES / "sip" / "sip_answered.esl").events()]
    bridged = next(i for i, e in enumerate(events) if e.name == "CHANNEL_BRIDGE")
    for e in events[: bridged + 1]:
        table.feed(e)
    channels = json.loads(table.show_channels(as_json=True))
    assert channels["row_count"] == 2 and all(list(row) == list(CHANNEL_COLUMNS) for row in channels["rows"])
    customer, agent = channels["rows"]
    assert customer["name"] == "sofia/cti/+15552220100@127.0.0.1" and customer["cid_num"] == "+15552220100"
    assert (
        customer["dest"] == "100" and customer["callstate"] == "ACTIVE" and customer["read_codec"] == "PCMU"
    )
    assert agent["direction"] == "outbound" and agent["call_uuid"] == customer["uuid"]
    calls = json.loads(table.show_calls(as_json=True))
    assert calls["row_count"] == 1 and list(calls["rows"][0]) == list(CALL_COLUMNS)
    assert calls["rows"][0]["b_uuid"] == agent["uuid"] and calls["rows"][0]["b_dest"] == "201"
    assert table.show_channels(as_json=False).endswith("\n\n2 total.\n")
    for e in events[bridged + 1 :]:
        table.feed(e)
    assert table.show_channels(as_json=True) == table.show_calls(as_json=True) == '{"row_count":0}'
