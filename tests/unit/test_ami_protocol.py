"""The AMI frame parser: any input is survived, nothing is split or merged wrongly."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pbxlink.ami.protocol import RAW_KEY, FrameParser
from pbxlink.ami.tracker import AmiTracker

FIXTURES = Path(__file__).parent.parent / "fixtures" / "asterisk"
CAPTURES = sorted(FIXTURES.glob("*.ami")) + sorted(FIXTURES.glob("*/*.ami"))

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
NAME = "Zoë Ångström 日本"
EVENT = (
    "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/201-00000001\r\n"
    f"CallerIDName: {NAME}\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r\n\r\n"
).encode()
VARS = (
    b"Event: Status\r\nActionID: a1\r\nChanVariable: A=1\r\nChannel: x\r\n"
    b"ChanVariable: B=2\r\nChanVariable: C=3\r\n\r\n"
)


def parse_all(parser: FrameParser, *chunks: bytes) -> list[dict]:
    out: list[dict] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.relative_to(FIXTURES).as_posix())
def test_every_capture_parses_as_its_index_says(path: Path) -> None:
    expected = [json.loads(line) for line in path.with_suffix(".jsonl").read_text().splitlines()]
    parser = FrameParser()
    got = parse_all(parser, path.read_bytes())
    assert parser.banner == expected[0]["fields"]["Banner"]
    assert got == [m["fields"] for m in expected[1:]]


def test_split_at_every_byte_position_including_inside_multibyte_characters() -> None:
    stream = BANNER + EVENT + VARS + EVENT
    whole = parse_all(FrameParser(), stream)
    assert len(whole) == 3 and whole[0]["CallerIDName"] == NAME
    for cut in range(1, len(stream)):
        assert parse_all(FrameParser(), stream[:cut], stream[cut:]) == whole, cut


def test_one_byte_at_a_time() -> None:
    stream = BANNER + EVENT * 3
    parser = FrameParser()
    got = parse_all(parser, *(stream[i : i + 1] for i in range(len(stream))))
    assert [m["CallerIDName"] for m in got] == [NAME] * 3
    assert parser.banner == "Asterisk Call Manager/11.0.0"


def test_repeated_headers_become_a_list_in_wire_order() -> None:
    (msg,) = FrameParser().feed(BANNER + VARS)
    assert msg["ChanVariable"] == ["A=1", "B=2", "C=3"]
    assert msg["Channel"] == "x"


def test_oversized_frame_is_dropped_and_the_next_frame_parsed(caplog: pytest.LogCaptureFixture) -> None:
    big = b"Event: Huge\r\nPrivilege: call,all\r\n" + b"Data: " + b"x" * (1024 * 1024) + b"\r\n\r\n"
    stream = BANNER + EVENT + big + EVENT
    parser = FrameParser()
    with caplog.at_level(logging.WARNING):
        got = parse_all(parser, *(stream[i : i + 65536] for i in range(0, len(stream), 65536)))
    assert [m["Event"] for m in got] == ["Newchannel", "Newchannel"]
    warnings = [r.getMessage() for r in caplog.records if "oversized" in r.getMessage()]
    assert len(warnings) == 1 and "Event: Huge" in warnings[0]
    assert len(parser._buf) < 1024  # nothing of the big frame kept


def test_oversized_frame_in_one_read_is_dropped() -> None:
    big = b"Event: Huge\r\nData: " + b"y" * (300 * 1024) + b"\r\n\r\n"
    got = FrameParser().feed(BANNER + big + EVENT)
    assert [m["Event"] for m in got] == ["Newchannel"]


def test_invalid_utf8_becomes_replacement_character_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = b"Event: Newchannel\r\nCallerIDName: Jos\xe9\r\nUniqueid: 9\r\n\r\n"
    with caplog.at_level(logging.WARNING):
        got = parse_all(FrameParser(), BANNER, bad, bad, EVENT)
    assert [m["CallerIDName"] for m in got] == ["Jos\ufffd", "Jos\ufffd", NAME]
    assert len([r for r in caplog.records if "UTF-8" in r.getMessage()]) == 1


def test_garbage_frames_are_skipped_and_parsing_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    garbage = b"\x00\xff\xfe random noise without structure\r\nmore noise\r\n\r\n"
    with caplog.at_level(logging.WARNING):
        got = parse_all(FrameParser(), BANNER, garbage, EVENT)
    assert [m["Event"] for m in got] == ["Newchannel"]
    assert any("malformed" in r.getMessage() for r in caplog.records)


def test_truncated_frame_is_held_then_reported_as_pending() -> None:
    parser = FrameParser()
    got = parse_all(parser, BANNER + EVENT + EVENT[:40])
    assert len(got) == 1
    assert parser.pending() == len(EVENT[:40].strip())


def test_lines_without_colon_are_kept_not_fatal() -> None:
    old_command = (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\n"
        b"Asterisk 1.8 built by root\r\nno colon here\r\nEmpty:\r\n--END COMMAND--\r\n\r\n"
    )
    (msg,) = FrameParser().feed(BANNER + old_command)
    assert msg["Response"] == "Follows"
    assert msg[RAW_KEY] == ["Asterisk 1.8 built by root", "no colon here", "--END COMMAND--"]
    assert msg["Empty"] == ""


def test_bare_lf_is_tolerated() -> None:
    stream = BANNER + EVENT.replace(b"\r\n", b"\n") + EVENT
    got = parse_all(FrameParser(), stream[:50], stream[50:])
    assert [m["CallerIDName"] for m in got] == [NAME, NAME]


def test_no_banner_means_first_frame_is_still_parsed() -> None:
    parser = FrameParser()
    assert [m["Event"] for m in parser.feed(EVENT)] == ["Newchannel"]
    assert parser.banner is None


def test_a_foreign_banner_is_not_taken_for_ami() -> None:
    parser = FrameParser()
    assert parser.feed(b"SSH-2.0-OpenSSH_9.6\r\n") == []
    assert parser.banner is None


def test_values_containing_colon_space_split_on_the_first_only() -> None:
    frame = b"Event: Newexten\r\nAppData: Set(X=a: b)\r\nMessage: one: two: three\r\nUniqueid: 1\r\n\r\n"
    (msg,) = FrameParser().feed(BANNER + frame)
    assert msg == {
        "Event": "Newexten",
        "AppData": "Set(X=a: b)",
        "Message": "one: two: three",
        "Uniqueid": "1",
    }


def test_repeated_headers_of_a_layout_seen_before_are_still_lists() -> None:
    parser = FrameParser()
    first, second = parser.feed(BANNER + VARS + VARS.replace(b"A=1", b"A=9"))
    assert first["ChanVariable"] == ["A=1", "B=2", "C=3"]
    assert second["ChanVariable"] == ["A=9", "B=2", "C=3"]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.relative_to(FIXTURES).as_posix())
def test_the_trackers_interest_filter_changes_no_call_event(path: Path) -> None:
    """Events outside the tracker's declared interest are dropped unparsed: that must not matter."""
    interest = getattr(AmiTracker("main"), "interest", None)
    if interest is None:
        pytest.skip("the tracker declares no interest: every event is parsed")

    def run(parser: FrameParser) -> list[dict]:
        tracker, out = AmiTracker("main"), []
        for frame in parser.feed(path.read_bytes()):
            if "Event" in frame:
                out += [e.to_dict() for e in tracker.feed(frame, datetime(2026, 1, 1, tzinfo=UTC))]
        return out

    filtered = FrameParser(interest=interest)
    assert run(filtered) == run(FrameParser())
    assert filtered.skipped > 0 or b"\r\nEvent: " not in path.read_bytes()  # login_failed has no event
