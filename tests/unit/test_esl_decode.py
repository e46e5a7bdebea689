"""ESL decoding: real captures frame for frame, plain and json to the same dict, malformed frames skipped."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from urllib.parse import quote

import pytest

from pbxlink.esl.frames import (
    MAX_FRAME,
    Event,
    Frame,
    FrameParser,
    _fast_headers,
    _headers,
    decode_json,
    decode_plain,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "freeswitch"
CAPTURES = [
    *sorted(p for p in FIXTURES.glob("*.esl") if not p.name.endswith(".json.esl")),
    FIXTURES / "sip" / "sip_answered.esl",
]


def reference(capture: Path) -> list[dict[str, object]]:
    """The capture's `.jsonl`: each frame as the capture tool parsed it (headers url-decoded)."""
    return [json.loads(line) for line in capture.with_suffix(".jsonl").read_text().splitlines()]


def expected_event(frame: dict[str, object]) -> Event:
    event: Event = dict(frame["headers"])  # type: ignore[call-overload]
    if frame["body"] is not None:
        event["_body"] = frame["body"]  # type: ignore[assignment]
    return event


def feed_in_chunks(data: bytes, seed: int, parser: FrameParser | None = None) -> list[Event | Frame]:
    parser = parser or FrameParser()
    rng = random.Random(seed)
    out: list[Event | Frame] = []
    pos = 0
    while pos < len(data):
        step = rng.choice((1, 7, 100, 1500, 65536))
        out += parser.feed(data[pos : pos + step])
        pos += step
    return out


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_every_plain_capture_decodes_to_the_reference(capture: Path) -> None:
    parser = FrameParser()
    got = feed_in_chunks(capture.read_bytes(), seed=len(capture.name), parser=parser)
    want = reference(capture)
    assert len(got) == len(want) and parser.malformed == 0
    for item, frame in zip(got, want, strict=True):
        if frame["content_type"] == "text/event-plain":
            assert item == expected_event(frame)
        else:
            assert isinstance(item, Frame)
            # envelope values are url-decoded too (the outbound `connect` reply carries channel data)
            decoded = frame.get("headers") or frame["envelope"]
            assert (item.content_type, item.headers) == (frame["content_type"], decoded)
            assert (item.text or None) == frame["body"]


@pytest.mark.parametrize(
    "capture", [p for p in FIXTURES.glob("1*.json.esl")], ids=lambda p: p.name.split(".")[0]
)
def test_every_json_capture_decodes_with_repeated_headers_and_arrays_as_plain_has_them(capture: Path) -> None:
    parser = FrameParser()
    events = [i for i in feed_in_chunks(capture.read_bytes(), seed=3, parser=parser) if isinstance(i, dict)]
    assert parser.malformed == 0 and events
    assert all(
        type(v) is str or (type(v) is list and all(type(i) is str for i in v))
        for e in events
        for v in e.values()
    )
    completes = [e for e in events if e["Event-Name"] == "CHANNEL_HANGUP_COMPLETE"]
    assert completes and all(
        isinstance(e["Hangup-Cause"], list) and len(e["Hangup-Cause"]) == 2 for e in completes
    )
    (job,) = [e for e in events if e["Event-Name"] == "BACKGROUND_JOB"]
    assert isinstance(job["_body"], str) and job["_body"].startswith(("+OK", "-ERR"))
    assert job["Content-Length"] == str(len(job["_body"].encode()))
    matches = [e["variable_DP_MATCH"] for e in events if "variable_DP_MATCH" in e]
    assert all(isinstance(m, str) and m.startswith("ARRAY::") for m in matches)
    if capture.name.startswith("103"):
        assert "ARRAY::7201|:201" in matches  # `["7201","201"]` in json, as plain writes it


def as_plain(event: Event) -> bytes:
    """How mod_event_socket writes an event for `event plain`: url-encoded values, the body after."""
    body = event.get("_body")
    lines = "".join(
        f"{k}: {quote(v, safe='')}\n"
        for k, values in event.items()
        if k != "_body"
        for v in (values if isinstance(values, list) else [values])
    )
    return (lines + "\n" + (body if isinstance(body, str) else "")).encode()


def as_json(event: Event) -> bytes:
    """How it writes an event for `event json`: repeated keys twice, `ARRAY::a|:b` as an array."""

    def value(v: str) -> str:
        if v.startswith("ARRAY::"):
            return json.dumps(v[7:].split("|:"), ensure_ascii=False)
        return json.dumps(v, ensure_ascii=False)

    items = [
        f"{json.dumps(k)}:{value(v)}"
        for k, values in event.items()
        for v in (values if isinstance(values, list) else [values])
    ]
    return ("{" + ",".join(items) + "}").encode()


def wrap(body: bytes, kind: str) -> bytes:
    return b"Content-Length: %d\nContent-Type: text/event-%s\n\n" % (len(body), kind.encode()) + body


@pytest.mark.parametrize("capture", CAPTURES[:3] + CAPTURES[-1:], ids=lambda p: p.stem)
def test_plain_and_json_give_identical_dicts(capture: Path) -> None:
    events = [expected_event(f) for f in reference(capture) if f["content_type"] == "text/event-plain"]
    plain = FrameParser().feed(b"".join(wrap(as_plain(e), "plain") for e in events))
    as_json_stream = FrameParser().feed(b"".join(wrap(as_json(e), "json") for e in events))
    assert plain == events
    assert as_json_stream == events


def test_url_decoding_keeps_encoded_newlines_and_percent_signs_inside_values() -> None:
    body = (
        b"Event-Name: CHANNEL_ANSWER\n"
        b"variable_switch_r_sdp: v%3D0%0D%0Ao%3D-%201%202%20IN%20IP4%20127.0.0.1%0D%0A\n"
        b"Caller-Caller-ID-Name: Jos%C3%A9%20%e5%b1%b1%e7%94%b0\n"
        b"variable_rate: 100%2520off\n"
        b"variable_empty: \n"
        b"Plain-Value: ab+c/d(e)$f\n\n"
    )
    event, taken = decode_plain(body)
    assert taken == len(body)
    assert event == {
        "Event-Name": "CHANNEL_ANSWER",
        "variable_switch_r_sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n",
        "Caller-Caller-ID-Name": "José 山田",
        "variable_rate": "100%20off",
        "variable_empty": "",
        "Plain-Value": "ab+c/d(e)$f",
    }


def header_blocks(raw: bytes) -> list[bytes]:
    """Each plain event's header lines in a capture, as FreeSWITCH wrote them."""
    blocks, pos = [], 0
    while (end := raw.find(b"\n\n", pos)) >= 0:
        envelope = dict(line.split(b": ", 1) for line in raw[pos:end].split(b"\n"))
        start = end + 2
        pos = start + int(envelope.get(b"Content-Length", b"0"))
        if envelope[b"Content-Type"] == b"text/event-plain":
            blocks.append(raw[start:pos].partition(b"\n\n")[0])
    return blocks


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_the_fast_path_agrees_with_the_line_by_line_one(capture: Path) -> None:
    blocks = header_blocks(capture.read_bytes())
    fast = [_fast_headers(block) for block in blocks]
    assert blocks and all(
        event is not None for event in fast
    )  # FreeSWITCH's own output never needs the slow path
    assert fast == [_headers(block) for block in blocks]


def test_whenever_the_fast_path_answers_the_line_by_line_path_agrees() -> None:
    rng = random.Random(11)
    good = [b"A", b"b", b"_", b"-", b"3", b"%41", b"%e5%b1%b1", b"%0A", b"%3D", b"%25", b"%c3%a9"]
    bad = [b"%", b"%00", b"%zz", b"%C3", b":", b" ", b"=", b"\r", b"\x00", b"\xc3\xa9", b"\xff", b"A:B"]

    def text(n: int) -> bytes:
        return b"".join(rng.choice(bad if rng.random() < 0.04 else good) for _ in range(n))

    answered = 0
    for _ in range(3000):
        block = b"\n".join(
            text(rng.randint(1, 3))
            + (b": " if rng.random() < 0.97 else rng.choice([b":", b" "]))
            + text(rng.randint(0, 4))
            for _ in range(rng.randint(1, 5))
        )
        fast = _fast_headers(block)
        if fast is not None:
            answered += 1
            assert fast == _headers(block), block
    assert answered > 1000


@pytest.mark.parametrize(
    ("line", "value"),
    [
        (b"A: x=1", "x=1"),  # a raw `=` (FreeSWITCH writes %3D)
        (b"A: x y", "x y"),  # a raw space
        (b"A: x:y", "x:y"),  # a raw colon
        (b"A:x", "x"),  # no space after the colon
        (b"A:x y", "x y"),  # one colon and one space, but not together
        (b"A: x\ry", "x\ry"),  # a raw CR
        (b"A: %41%00b", "A\x00b"),  # an encoded NUL
    ],
)
def test_what_freeswitch_would_not_write_still_decodes_line_by_line(line: bytes, value: str) -> None:
    event, _ = decode_plain(b"Event-Name: X\n" + line + b"\n\n")
    assert event == {"Event-Name": "X", "A": value}


def test_repeated_headers_become_lists_in_wire_order() -> None:
    event, _ = decode_plain(b"Event-Name: X\nA: 1\nB: x\nA: 2\nA: 3\n\n")
    assert event == {"Event-Name": "X", "A": ["1", "2", "3"], "B": "x"}
    obj, _ = decode_json(b'{"Event-Name":"X","A":"1","B":"x","A":"2","A":"3"}')
    assert obj == event


def test_a_body_is_read_by_its_byte_length_and_kept_under__body() -> None:
    text = "+OK Ünïcødé 山田\nsecond line\n"
    body = b"Event-Name: BACKGROUND_JOB\nJob-UUID: j\nContent-Length: %d\n\n" % len(text.encode())
    parser = FrameParser()
    stream = wrap(body + text.encode(), "plain") + wrap(as_plain({"Event-Name": "HEARTBEAT"}), "plain")
    first, second = feed_in_chunks(stream, seed=1, parser=parser)
    assert first == {
        "Event-Name": "BACKGROUND_JOB",
        "Job-UUID": "j",
        "Content-Length": str(len(text.encode())),
        "_body": text,
    }
    assert second == {"Event-Name": "HEARTBEAT"}


def test_replies_and_responses_are_frames() -> None:
    stream = (
        b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: j1\nJob-UUID: j1\n\n"
        b"Content-Type: api/response\nContent-Length: 7\n\n+OK \xc3\xa9\n"
        b"Content-Type: text/disconnect-notice\nContent-Length: 3\n\nbye"
    )
    reply, response, notice = FrameParser().feed(stream)
    assert isinstance(reply, Frame) and reply.headers["Job-UUID"] == "j1"
    assert (
        isinstance(response, Frame) and response.content_type == "api/response" and response.text == "+OK é\n"
    )
    assert isinstance(notice, Frame) and notice.body == b"bye"


HEARTBEAT = wrap(as_plain({"Event-Name": "HEARTBEAT", "Event-Sequence": "1"}), "plain")
AFTER = wrap(as_plain({"Event-Name": "CHANNEL_CREATE", "Unique-ID": "u2"}), "plain")


def _cut_length(frame: bytes, delta: int) -> bytes:
    head, _, body = frame.partition(b"\n")
    n = int(head.split(b": ")[1])
    return b"Content-Length: %d\n" % (n + delta) + body


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(
            b"Content-Length: abc\nContent-Type: text/event-plain\n\n", id="non-numeric Content-Length"
        ),
        pytest.param(b"Content-Length: -5\nContent-Type: text/event-plain\n\n", id="negative Content-Length"),
        pytest.param(b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % (MAX_FRAME + 1), id="huge"),
        pytest.param(_cut_length(HEARTBEAT, -10), id="Content-Length too short (truncated body)"),
        pytest.param(b"\x00\xff garbage \x17 with no frame\n\n", id="garbage"),
        pytest.param(b"Event-Name: HEARTBEAT\nno colon here\n\n", id="lines that are no envelope"),
        pytest.param(wrap(b"Event-Name: X\nBad: 100%\n\n", "plain"), id="bare percent"),
        pytest.param(wrap(b"Event-Name: X\nBad: %zz\n\n", "plain"), id="invalid escape"),
        pytest.param(wrap(b"Event-Name: X\nBad: %FF%FE\n\n", "plain"), id="escapes that are not UTF-8"),
        pytest.param(wrap(b"Event-Name: X\nno colon\n\n", "plain"), id="event line without colon"),
        pytest.param(wrap(b"Event-Name: X\nContent-Length: 50\n\nshort", "plain"), id="truncated inner body"),
        pytest.param(wrap(b"Event-Name: X\n", "plain"), id="headers never end"),
        pytest.param(wrap(b'{"Event-Name":"X","A":', "json"), id="truncated json"),
        pytest.param(wrap(b'["not", "an", "object"]', "json"), id="json array"),
        pytest.param(wrap(b'{"Event-Name":"X","A":{"nested":"1"}}', "json"), id="json non-string value"),
    ],
)
def test_a_malformed_frame_is_logged_and_skipped(bad: bytes, caplog: pytest.LogCaptureFixture) -> None:
    parser = FrameParser("ESL test")
    with caplog.at_level(logging.WARNING, logger="pbxlink.esl.frames"):
        out = feed_in_chunks(HEARTBEAT + bad + AFTER, seed=7, parser=parser)
    assert out[0] == {"Event-Name": "HEARTBEAT", "Event-Sequence": "1"}
    assert out[-1] == {"Event-Name": "CHANNEL_CREATE", "Unique-ID": "u2"}
    assert len(out) == 2
    assert parser.malformed >= 1
    assert any("ESL test: skipped a malformed" in r.getMessage() for r in caplog.records)


def test_a_truncated_json_event_does_not_take_the_next_frames_with_it() -> None:
    good = wrap(as_json({"Event-Name": "CHANNEL_CREATE", "Unique-ID": "u2"}), "json")
    cut = _cut_length(wrap(as_json({"Event-Name": "X", "A": "1"}), "json"), -5)
    parser = FrameParser()
    out = parser.feed(good + cut + good + good)
    assert out == [{"Event-Name": "CHANNEL_CREATE", "Unique-ID": "u2"}] * 3
    assert parser.malformed == 2  # the cut event, then its tail before the next frame


@pytest.mark.parametrize("kind", ["plain", "json"])
def test_a_content_length_too_long_gives_the_swallowed_frames_back(kind: str) -> None:
    encode = as_plain if kind == "plain" else as_json
    first = wrap(encode({"Event-Name": "A"}), kind)
    rest = [wrap(encode({"Event-Name": name}), kind) for name in ("B", "C", "D")]
    parser = FrameParser()
    out = parser.feed(_cut_length(first, len(rest[0]) + 20) + b"".join(rest))
    assert [e["Event-Name"] for e in out if isinstance(e, dict)] == ["A", "B", "C", "D"]


def test_any_corruption_of_a_capture_is_survived() -> None:
    data = bytearray((FIXTURES / "103_queue_answered.esl").read_bytes())
    rng = random.Random(5)
    for _ in range(200):
        data[rng.randrange(len(data))] = rng.randrange(256)
    parser = FrameParser()
    out = feed_in_chunks(bytes(data), seed=9, parser=parser)
    assert len([i for i in out if isinstance(i, dict)]) > 100  # most events still arrive
    assert parser.malformed > 0
