"""The FreeSWITCH outbound socket server over real TCP, with FreeSWITCH's side played from the capture.

FreeSWITCH connects, pbxlink sends `connect`, FreeSWITCH answers with the channel data (the
captured reply, byte for byte), pbxlink sets the looked-up variables, `resume`s and `exit`s.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pbxlink.config import PbxConfig
from pbxlink.domain.ports import CallerInfo
from pbxlink.esl.outbound import OutboundBindError, OutboundServer, outbound_server
from tests.lookup_fakes import FakeLookup, LookupServers

FIXTURES = Path(__file__).parent.parent / "fixtures" / "freeswitch"
UUID = "dc4202ca-a32a-4c50-889c-27f1372adb9f"
CALLER = "+15551234567"
BUDGET = 0.4

Serve = Callable[..., tuple[str, int]]


def captured(name: str) -> dict[str, bytes]:
    """FreeSWITCH's replies in a capture: to `connect`, to the first `sendmsg`, to `exit`."""
    raw = (FIXTURES / name).read_bytes()
    io = [json.loads(line) for line in (FIXTURES / f"{name}.io.jsonl").read_text().splitlines()]
    replies: dict[str, bytes] = {}
    for sent, received in itertools.pairwise(io):
        if sent["dir"] == "send" and received["dir"] == "recv":
            command = sent["data"].split("\n", 1)[0].split(" ", 1)[0]
            end = None if command == "exit" else received["offset"] + received["len"]  # bye, then goodbye
            replies.setdefault(command, raw[received["offset"] : end])
    return replies


PLAIN = captured("outbound_socket.esl")
OK = b"Content-Type: command/reply\nReply-Text: +OK\n\n"  # FreeSWITCH's reply to `resume`


@pytest.mark.parametrize("capture", ["outbound_socket.esl", "outbound_socket.json.esl"])
def test_capture_holds_the_replies_the_fake_plays(capture: str) -> None:
    replies = captured(capture)
    assert replies["connect"].startswith(b"Event-Name: CHANNEL_DATA\n")
    assert replies["connect"].endswith(b"Reply-Text: %2BOK%0A\nSocket-Mode: async\nControl: full\n\n")
    assert replies["sendmsg"] == OK
    assert replies["exit"].startswith(b"Content-Type: command/reply\nReply-Text: +OK bye\n\n")
    assert replies["exit"].endswith(
        b"Content-Length: 67\n\nDisconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
    )


class FakeFreeSwitch:
    """FreeSWITCH's side of one `socket` app call: connects, answers each command as captured."""

    def __init__(
        self,
        address: tuple[str, int],
        replies: dict[str, bytes] = PLAIN,
        connect_reply: bytes | None = None,
        answer_connect: bool = True,
    ) -> None:
        self.address, self.replies, self.answer_connect = address, replies, answer_connect
        self.connect_reply = replies["connect"] if connect_reply is None else connect_reply
        self.commands: list[str] = []
        self.closed_after: float | None = None  # seconds from connecting to the end (exit, or pbxlink closed)

    def run(self) -> FakeFreeSwitch:
        started = time.monotonic()
        # pbxlink may close while this side is still talking: a reset is then part of the story
        with socket.create_connection(self.address, timeout=5) as sock, contextlib.suppress(ConnectionError):
            self.converse(sock)
        self.closed_after = time.monotonic() - started
        return self

    def converse(self, sock: socket.socket) -> None:
        """Answer commands until pbxlink closes, or until `exit` (then close, as FreeSWITCH does)."""
        buffer = b""
        while True:
            while b"\n\n" not in buffer:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                buffer += chunk
            raw, buffer = buffer.split(b"\n\n", 1)
            command = raw.decode()
            self.commands.append(command)
            sock.sendall(self.reply_to(command.split("\n", 1)[0]))
            if command == "exit":
                return

    def reply_to(self, command: str) -> bytes:
        if command == "connect":
            return self.connect_reply if self.answer_connect else b""
        return {"sendmsg": self.replies["sendmsg"], "exit": self.replies["exit"]}.get(command, OK)

    @property
    def sets(self) -> list[str]:
        """The `set` arguments pbxlink sent, checking that each sendmsg has exactly the captured shape."""
        found = []
        for command in self.commands:
            if command.startswith("sendmsg"):
                m = re.fullmatch(
                    r"sendmsg\ncall-command: execute\nexecute-app-name: set\n"
                    r"execute-app-arg: ([^\n]*)\nevent-lock: true",
                    command,
                )
                assert m is not None, command
                found.append(m[1])
        return found


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start an OutboundServer on a free loopback port; stopped after the test."""
    servers = LookupServers()

    def start(lookup: FakeLookup, budget: float = BUDGET, **kw: object) -> tuple[str, int]:
        server = OutboundServer(lookup, "127.0.0.1", 0, budget, pbx="main", grace=0.5, **kw)  # type: ignore[arg-type]
        return servers.start(server, lookup)

    yield start
    servers.stop_all()


def warnings_once_logged(caplog: pytest.LogCaptureFixture, timeout: float = 2.0) -> list[logging.LogRecord]:
    """The warnings logged, once there is one: the server thread may still be finishing the call."""
    deadline = time.monotonic() + timeout
    while not (found := [r for r in caplog.records if r.levelno >= logging.WARNING]):
        if time.monotonic() > deadline:
            return []
        time.sleep(0.01)
    return found


def jane() -> FakeLookup:
    return FakeLookup({CALLER: CallerInfo(name="Jane Doe", hint="201")})


@pytest.mark.parametrize("capture", ["outbound_socket.esl", "outbound_socket.json.esl"])
def test_captured_exchange_sets_name_and_hint_then_resumes(serve: Serve, capture: str) -> None:
    lookup = jane()
    fs = FakeFreeSwitch(serve(lookup), captured(capture)).run()
    assert lookup.asked == [CALLER]  # url-decoded from Caller-Caller-ID-Number: %2B15551234567
    assert fs.commands[0] == "connect"
    assert fs.sets == [
        "effective_caller_id_name=Jane Doe",
        "pbxlink_caller_name=Jane Doe",
        "pbxlink_route=201",
        "pbxlink_owner=201",  # the hint is an extension: the one to route to
        "pbxlink_lookup=hit",
    ]
    assert fs.commands[-2:] == ["resume", "exit"]
    assert fs.closed_after is not None and fs.closed_after < BUDGET


def test_unknown_caller_is_a_miss(serve: Serve) -> None:
    lookup = FakeLookup()
    fs = FakeFreeSwitch(serve(lookup)).run()
    assert (lookup.asked, fs.sets, fs.commands[-2:]) == (
        [CALLER],
        ["pbxlink_lookup=miss"],
        ["resume", "exit"],
    )


def test_anonymous_caller_is_not_looked_up(serve: Serve) -> None:
    lookup = jane()
    reply = PLAIN["connect"].replace(
        b"Caller-Caller-ID-Number: %2B15551234567", b"Caller-Caller-ID-Number: anonymous"
    )
    fs = FakeFreeSwitch(serve(lookup), connect_reply=reply).run()
    assert (lookup.asked, fs.sets) == ([], ["pbxlink_lookup=miss"])


def test_client_that_disconnects_at_once_is_cleaned_up_quietly(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pbxlink")
    address = serve(jane())
    for _ in range(20):
        socket.create_connection(address, timeout=5).close()
    fs = FakeFreeSwitch(address).run()  # the server still serves the next call as usual
    assert fs.sets[-1] == "pbxlink_lookup=hit"
    early = [r for r in caplog.records if "closed the socket early" in r.getMessage()]
    assert len(early) <= 20 and all(r.levelno == logging.INFO for r in early)  # one line each at most
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not [r for r in caplog.records if r.name == "asyncio"]


def test_client_that_never_answers_connect_is_let_go_at_the_budget(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    lookup = jane()
    fs = FakeFreeSwitch(serve(lookup), answer_connect=False).run()
    assert fs.commands == ["connect", "resume", "exit"]  # the call goes on if FreeSWITCH ever wakes up
    assert fs.closed_after is not None and BUDGET * 0.9 < fs.closed_after < BUDGET + 0.3
    assert lookup.asked == []
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "no reply to connect within the 0.4 s budget" in warning.getMessage()


def test_slow_lookup_resumes_the_call_at_the_budget(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    lookup = FakeLookup({CALLER: CallerInfo(name="Too Late")}, delay=5.0)
    fs = FakeFreeSwitch(serve(lookup)).run()
    assert fs.sets == ["pbxlink_lookup=timeout"]
    assert fs.commands[-2:] == ["resume", "exit"]
    assert fs.closed_after is not None and fs.closed_after < BUDGET + 0.3
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert UUID in warning.getMessage() and "lookup took longer than the 0.4 s budget" in warning.getMessage()


def test_failing_lookup_resumes_the_call_with_error(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    fs = FakeFreeSwitch(serve(FakeLookup(error=ConnectionError("CRM unreachable\nretry later")))).run()
    assert fs.sets == ["pbxlink_lookup=error"]
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "\n" not in warning.getMessage() and "CRM unreachable retry later" in warning.getMessage()


def test_caller_name_from_a_crm_is_sanitised(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    evil = "Jane\r\nexecute-app-name: hangup\x00\x07 ${system(reboot)} \\${x}\u202eDoe\n\n" + "x" * 200
    lookup = FakeLookup({CALLER: CallerInfo(name=evil, hint="201\nhangup")})
    fs = FakeFreeSwitch(serve(lookup)).run()
    name = "Jane execute-app-name: hangup {system(reboot)} {x} Doe " + "x" * 200
    assert fs.sets == [
        f"effective_caller_id_name={name[:64]}",
        f"pbxlink_caller_name={name[:64]}",
        "pbxlink_lookup=hit",  # the hint is not an extension: dropped, and said so
    ]
    assert any("routing hint" in r.getMessage() and UUID in r.getMessage() for r in caplog.records)


def test_contact_id_and_owner_from_the_crm(serve: Serve) -> None:
    lookup = FakeLookup(
        {CALLER: CallerInfo(name="Jane Doe", contact_id="5012", owner="jane.roe@acme.example")}
    )
    fs = FakeFreeSwitch(serve(lookup)).run()
    assert fs.sets == [
        "effective_caller_id_name=Jane Doe",
        "pbxlink_caller_name=Jane Doe",
        "pbxlink_contact_id=5012",
        "pbxlink_owner=jane.roe@acme.example",  # no extension known: the CRM owner's login
        "pbxlink_lookup=hit",
    ]


def test_a_contact_id_alone_is_a_hit(serve: Serve) -> None:
    fs = FakeFreeSwitch(serve(FakeLookup({CALLER: CallerInfo(contact_id="77")}))).run()
    assert fs.sets == ["pbxlink_contact_id=77", "pbxlink_lookup=hit"]


def test_contact_id_and_owner_that_would_change_a_dial_string_are_dropped(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    info = CallerInfo(name="Jane Doe", contact_id="42,sofia/gateway/x/900", owner="201|sofia/gateway/x/900")
    fs = FakeFreeSwitch(serve(FakeLookup({CALLER: info}))).run()
    assert fs.sets == [
        "effective_caller_id_name=Jane Doe",
        "pbxlink_caller_name=Jane Doe",
        "pbxlink_lookup=hit",
    ]
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "contact id" in warning.getMessage() and UUID in warning.getMessage()


def test_an_escaped_expansion_does_not_survive_cleaning(serve: Serve) -> None:
    evil = "A $\\{system(reboot)} $\\${x} ${y}"
    fs = FakeFreeSwitch(serve(FakeLookup({CALLER: CallerInfo(name=evil)}))).run()
    assert fs.sets[0] == "effective_caller_id_name=A {system(reboot)} {x} {y}"
    assert not [s for s in fs.sets if "${" in s]


def test_twenty_calls_at_once_each_get_their_own_caller(serve: Serve) -> None:
    numbers = [f"+1555000{i:04d}" for i in range(20)]
    lookup = FakeLookup(
        {n: CallerInfo(name=f"Caller {n[-2:]}", hint=f"2{n[-2:]}") for n in numbers}, delay=0.1
    )
    address = serve(lookup, budget=2.0, lookup_threads=8)
    fakes = [
        FakeFreeSwitch(
            address,
            connect_reply=PLAIN["connect"].replace(b"%2B15551234567", n.encode().replace(b"+", b"%2B")),
        )
        for n in numbers
    ]
    started = time.monotonic()
    threads = [threading.Thread(target=fake.run) for fake in fakes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert time.monotonic() - started < 1.5  # 20 lookups of 0.1 s on 8 threads, not one after the other
    for n, fake in zip(numbers, fakes, strict=True):
        assert fake.sets == [
            f"effective_caller_id_name=Caller {n[-2:]}",
            f"pbxlink_caller_name=Caller {n[-2:]}",
            f"pbxlink_route=2{n[-2:]}",
            f"pbxlink_owner=2{n[-2:]}",
            "pbxlink_lookup=hit",
        ]
    assert sorted(lookup.asked) == numbers


def test_refused_commands_are_logged(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    refusing = {**PLAIN, "sendmsg": b"Content-Type: command/reply\nReply-Text: -ERR invalid session id\n\n"}
    fs = FakeFreeSwitch(serve(jane()), refusing).run()
    assert fs.commands[-1] == "exit"
    (warning,) = warnings_once_logged(caplog)
    assert "refused 5 of 7 commands" in warning.getMessage() and UUID in warning.getMessage()


def test_bind_failure_is_a_clear_error_not_a_dead_thread() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = OutboundServer(FakeLookup(), "127.0.0.1", port, pbx="main")
        with pytest.raises(OutboundBindError) as info:
            server.start()
    assert str(info.value) == (
        f"cannot listen on 127.0.0.1:{port} for the FreeSWITCH outbound socket: address already in use "
        '(another pbxlink?) — change outbound_listen in [[pbx]] "main" (and the socket app\'s address '
        "in the dialplan to match)"
    )
    assert not [t for t in threading.enumerate() if t.name == "pbxlink-outbound-main"]


def test_stop_lets_a_call_in_progress_go_on() -> None:
    server = OutboundServer(FakeLookup(), "127.0.0.1", 0, 0.3, pbx="stop", grace=0.2)
    address = server.start()
    fake = FakeFreeSwitch(address, answer_connect=False)
    thread = threading.Thread(target=fake.run)
    thread.start()
    time.sleep(0.05)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    thread.join(5)
    assert fake.commands == ["connect", "resume", "exit"]
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=1).close()


def test_server_from_pbx_config() -> None:
    fs = PbxConfig(name="fs", type="freeswitch", host="h", port=8021, username="u", secret="x")
    assert outbound_server(fs, FakeLookup()) is None
    configured = PbxConfig(
        name="fs", type="freeswitch", host="h", port=8021, username="u", secret="x",
        outbound_listen=("127.0.0.1", 8084), outbound_budget=0.5,
    )  # fmt: skip
    server = outbound_server(configured, FakeLookup())
    assert server is not None
    assert (server.host, server.port, server.budget, server.pbx) == ("127.0.0.1", 8084, 0.5, "fs")
