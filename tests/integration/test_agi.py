"""The FastAGI server over real TCP, with Asterisk's side played from the capture.

Asterisk connects, sends its `agi_*` environment in the captured chunks and a blank line,
answers each command with the captured `200 result=1`, and after pbxlink closes writes the
captured `HANGUP`. Then the ways a connection goes wrong: early closes, hangups mid-command,
silence, slow and failing lookups, hostile CRM data, a crowd, a foreign client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pbxlink.ami.agi import AgiBindError, AgiServer, agi_server
from pbxlink.ami.agi_session import Timeouts
from pbxlink.config import AgiConfig
from pbxlink.domain.ports import CallerInfo
from tests.lookup_fakes import FakeLookup, LookupServers

FIXTURE = Path(__file__).parent.parent / "fixtures" / "asterisk" / "agi_lookup.agi.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
SUMMARY = next(r for r in ROWS if r.get("summary"))
CHUNKS = [r["data"].encode() for r in ROWS if r.get("dir") == "asterisk->server"]
ENVIRONMENT = CHUNKS[:2]  # the environment block, in the two chunks Asterisk wrote it in
REPLY = CHUNKS[2]  # b"200 result=1\n"
GOODBYE = CHUNKS[3]  # b"HANGUP\n", written after pbxlink closed
CALLER = "+15557770105"
UNIQUEID = "1795435635.31"
ACME = 'SET VARIABLE CALLERID(name) "ACME Corp"'
BUDGET = 0.3
TIMEOUTS = Timeouts(environment=1.0, reply=1.0, overall=3.0)

Serve = Callable[..., tuple[str, int]]


def environment(script: str = "lookup?num=+15557770105", callerid: str = CALLER) -> list[bytes]:
    """The captured environment chunks with another script (the part after agi://host:port/) or caller."""
    return [
        chunk.replace(b"lookup?num=+15557770105", script.encode()).replace(
            b"agi_callerid: +15557770105", f"agi_callerid: {callerid}".encode()
        )
        for chunk in ENVIRONMENT
    ]


class FakeAsterisk:
    """Asterisk's side of one AGI() call: the environment, then a reply to each command.

    `reply_at` replaces the reply to the n-th command (1-based) with other bytes (`HANGUP`);
    `close_at` closes the socket on receiving the n-th command instead of answering it.
    """

    def __init__(
        self,
        address: tuple[str, int],
        chunks: list[bytes] = ENVIRONMENT,
        reply_at: dict[int, bytes] | None = None,
        close_at: int | None = None,
    ) -> None:
        self.address, self.chunks, self.reply_at, self.close_at = address, chunks, reply_at or {}, close_at
        self.raw: list[bytes] = []  # each line pbxlink sent, as sent
        self.first_after: float | None = None  # seconds from the end of the environment to the 1st command
        self.closed_after: float | None = None  # … to pbxlink closing
        self.closed_by_pbxlink = False

    @property
    def commands(self) -> list[str]:
        return [line.decode().removesuffix("\n") for line in self.raw]

    def run(self) -> FakeAsterisk:
        with socket.create_connection(self.address, timeout=5) as sock:
            for chunk in self.chunks:
                sock.sendall(chunk)
            sent = time.monotonic()
            with contextlib.suppress(ConnectionError), sock.makefile("rb") as lines:
                while line := lines.readline():
                    self.raw.append(line)
                    self.first_after = self.first_after or time.monotonic() - sent
                    if len(self.raw) == self.close_at:
                        return self
                    sock.sendall(self.reply_at.get(len(self.raw), REPLY))
                self.closed_by_pbxlink = True
            self.closed_after = time.monotonic() - sent
            with contextlib.suppress(OSError):
                sock.sendall(GOODBYE)  # as captured: Asterisk's last word, into the closed socket
        return self


def acme() -> FakeLookup:
    return FakeLookup({CALLER: CallerInfo(name="ACME Corp", hint="201", contact_id="c-105", owner="ann")})


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start an AgiServer on a free loopback port; stopped after the test."""
    servers = LookupServers()

    def start(
        lookup: FakeLookup, budget: float = BUDGET, timeouts: Timeouts = TIMEOUTS, **kw: int
    ) -> tuple[str, int]:
        server = AgiServer(lookup, "127.0.0.1", 0, budget, pbx="test", timeouts=timeouts, **kw)
        return servers.start(server, lookup)

    yield start
    servers.stop_all()


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pbxlink")


def logged(caplog: pytest.LogCaptureFixture, text: str, count: int = 1) -> list[logging.LogRecord]:
    """The records containing `text`, once there are `count`: the server thread may still be on them."""
    deadline = time.monotonic() + 3.0
    while len(found := [r for r in caplog.records if text in r.getMessage()]) < count:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return found


def trouble(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info or r.name == "asyncio"]


def test_capture_holds_what_the_fake_plays() -> None:
    env = b"".join(ENVIRONMENT).decode()
    assert env.startswith("agi_network: yes\n") and env.endswith("\n\n") and len(ENVIRONMENT[0]) == 430
    lines = env.removesuffix("\n\n").split("\n")
    assert dict(line.split(": ", 1) for line in lines) == SUMMARY["env"]
    assert [REPLY.decode(), GOODBYE.decode()] == [SUMMARY["reply"] + "\n", "HANGUP\n"]


def test_captured_exchange_sets_the_name_first_then_the_rest(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    lookup = acme()
    fake = FakeAsterisk(serve(lookup)).run()
    assert lookup.asked == [CALLER]  # from ?num=, its `+` kept
    assert fake.raw[0] == SUMMARY["command"].encode()  # byte for byte what the capture's server sent
    assert fake.commands == [
        ACME,
        'SET VARIABLE PBXLINK_CONTACT_ID "c-105"',
        'SET VARIABLE PBXLINK_OWNER "201"',  # the hint is an extension: it wins over the CRM owner
        'SET VARIABLE PBXLINK_LOOKUP "hit"',
    ]
    assert fake.closed_by_pbxlink and fake.closed_after is not None and fake.closed_after < BUDGET
    assert not trouble(caplog)


def test_number_from_agi_callerid_without_num(serve: Serve) -> None:
    lookup = FakeLookup({CALLER: CallerInfo(name="ACME Corp", owner="ann.lee@acme.example")})
    fake = FakeAsterisk(serve(lookup), environment(script="lookup")).run()
    assert lookup.asked == [CALLER]
    assert fake.commands == [
        ACME,
        'SET VARIABLE PBXLINK_OWNER "ann.lee@acme.example"',
        'SET VARIABLE PBXLINK_LOOKUP "hit"',
    ]


def test_url_encoded_num_and_unknown_numbers(serve: Serve) -> None:
    lookup = acme()
    address = serve(lookup)
    FakeAsterisk(address, environment(script="lookup?num=%2B15557770105&x=1")).run()
    anonymous = FakeAsterisk(address, environment(script="lookup", callerid="unknown")).run()
    stranger = FakeAsterisk(address, environment(script="lookup?num=+15550000000")).run()
    assert lookup.asked == [CALLER, "+15550000000"]  # "unknown" (no caller ID) is not looked up
    assert anonymous.commands == stranger.commands == ['SET VARIABLE PBXLINK_LOOKUP "miss"']


def test_client_closing_inside_the_environment_costs_nothing(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    address = serve(acme())
    partial = [b"", b"agi_network: yes\n", ENVIRONMENT[0], ENVIRONMENT[0] + b"agi_exten"]
    for data in partial:
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(data)
    started = time.monotonic()
    fake = FakeAsterisk(address).run()  # the next call is served at once
    assert fake.commands[0] == ACME and time.monotonic() - started < 1.0
    early = logged(caplog, "closed before the end of its environment", count=len(partial))
    assert [r.levelno for r in early] == [logging.INFO] * len(partial)  # one line each
    cpu = time.process_time()
    time.sleep(1.0)
    cpu = time.process_time() - cpu
    assert cpu < 0.25, f"{cpu:.2f} s of CPU in 1 s idle: a loop spins"  # panoramisk: ~1 s
    assert not trouble(caplog)


@pytest.mark.parametrize(
    "reply", [b"HANGUP\n", b"511 Command Not Permitted on a dead channel or intercept routine\n"]
)
def test_hangup_mid_command_stops_and_closes(
    serve: Serve, caplog: pytest.LogCaptureFixture, reply: bytes
) -> None:
    fake = FakeAsterisk(serve(acme()), reply_at={1: reply}).run()
    assert fake.commands == [ACME] and fake.closed_by_pbxlink  # nothing sent after the hangup
    (record,) = logged(caplog, "hung up after 0 of 4 commands")
    assert UNIQUEID in record.getMessage() and "Local/105@incoming-0000000f;2" in record.getMessage()
    assert not trouble(caplog)


def test_asterisk_closing_mid_command_is_one_line_and_the_server_goes_on(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    address = serve(acme())
    cut = FakeAsterisk(address, close_at=2).run()
    assert cut.commands == [ACME, 'SET VARIABLE PBXLINK_CONTACT_ID "c-105"']
    (record,) = logged(caplog, "closed the connection after 1 of 4 commands")
    assert record.levelno == logging.INFO and UNIQUEID in record.getMessage()
    assert FakeAsterisk(address).run().commands[-1] == 'SET VARIABLE PBXLINK_LOOKUP "hit"'
    assert not trouble(caplog)


def test_refused_commands_are_logged_and_the_rest_still_sent(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    usage = b"520-Invalid command syntax.  Proper usage follows:\nUsage: SET VARIABLE <name> <value>\n"
    refusals = {1: b"510 Invalid or unknown command\n", 3: usage + b"520 End of proper usage.\n"}
    fake = FakeAsterisk(serve(acme()), reply_at=refusals).run()
    assert len(fake.commands) == 4 and fake.closed_by_pbxlink
    (warning,) = trouble(caplog)
    assert warning.getMessage().endswith(
        "Asterisk refused 2 of 4 commands (510 Invalid or unknown command; 520 End of proper usage.); "
        "the dialplan goes on"
    )


def test_a_reply_that_is_not_asterisks_ends_the_session(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeAsterisk(serve(acme()), reply_at={1: b"2" * 10_000 + b"\n"}).run()
    assert fake.commands == [ACME] and fake.closed_by_pbxlink
    (warning,) = trouble(caplog)
    assert "not Asterisk's reply (a line longer than 4096 bytes)" in warning.getMessage()


def test_silent_client_is_dropped_after_the_read_timeout(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    address = serve(acme(), timeouts=Timeouts(environment=0.8, reply=1.0, overall=3.0))
    with socket.create_connection(address, timeout=5) as silent:
        started = time.monotonic()
        fake = FakeAsterisk(address).run()  # served meanwhile, long before the silent one is let go
        assert fake.commands[0] == ACME and time.monotonic() - started < 0.6
        assert silent.recv(1) == b""  # closed by pbxlink …
        dropped = time.monotonic() - started
    assert 0.7 < dropped < 2.0  # … at the environment timeout
    (warning,) = trouble(caplog)
    assert "no complete AGI environment within 0.8 s (0 lines)" in warning.getMessage()


def test_slow_lookup_answers_at_the_budget(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    lookup = FakeLookup({CALLER: CallerInfo(name="Too Late")}, delay=5.0)
    fake = FakeAsterisk(serve(lookup, budget=0.2)).run()
    assert fake.commands == ['SET VARIABLE PBXLINK_LOOKUP "timeout"']  # and no name
    assert fake.first_after is not None and 0.15 < fake.first_after < 0.2 + 0.3
    (warning,) = trouble(caplog)
    assert UNIQUEID in warning.getMessage() and "took longer than the 0.2 s budget" in warning.getMessage()


def test_failing_lookup_answers_error(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeAsterisk(serve(FakeLookup(error=ConnectionError("CRM unreachable\nretry later")))).run()
    assert fake.commands == ['SET VARIABLE PBXLINK_LOOKUP "error"'] and fake.closed_by_pbxlink
    (warning,) = trouble(caplog)
    assert "CRM unreachable retry later" in warning.getMessage() and UNIQUEID in warning.getMessage()


def test_hostile_crm_data_is_sent_escaped_on_one_line(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    name = 'Evil "Corp" \\ x\r\nSET VARIABLE X 1\x00 ${SHELL(id)} Zoë 日本\u202e'
    info = CallerInfo(name=name, hint="1\nHANGUP", contact_id="7\r\nEXEC Dial", owner="201,,tT")
    fake = FakeAsterisk(serve(FakeLookup({CALLER: info}))).run()
    assert fake.commands == [
        'SET VARIABLE CALLERID(name) "Evil \\"Corp\\" \\\\ x SET VARIABLE X 1 ${SHELL(id)} Zoë 日本"',
        'SET VARIABLE PBXLINK_LOOKUP "hit"',  # id, hint and owner would change a dial string: dropped
    ]
    assert all(line.count(b"\n") == 1 and b"\r" not in line and b"\0" not in line for line in fake.raw)
    warnings = [r.getMessage() for r in trouble(caplog)]
    assert len(warnings) == 2 and all(UNIQUEID in w and "\n" not in w for w in warnings)
    assert "routing hint '1\\nHANGUP'" in warnings[0] and "contact id '7\\r\\nEXEC Dial'" in warnings[1]


def test_long_name_is_capped(serve: Serve) -> None:
    fake = FakeAsterisk(serve(FakeLookup({CALLER: CallerInfo(name="A" * 500)}))).run()
    assert fake.commands[0] == f'SET VARIABLE CALLERID(name) "{"A" * 64}"'


def test_two_hundred_calls_at_once_are_all_served(serve: Serve) -> None:
    numbers = [f"+1555000{i:04d}" for i in range(200)]
    lookup = FakeLookup({n: CallerInfo(name=f"Caller {n[-4:]}") for n in numbers})
    address = serve(lookup, budget=2.0)  # generous: this is about the count, not the speed
    fakes = [FakeAsterisk(address, environment(script=f"lookup?num={n}")) for n in numbers]
    threads = [threading.Thread(target=fake.run) for fake in fakes]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    took = time.monotonic() - started
    for n, fake in zip(numbers, fakes, strict=True):
        assert fake.commands == [
            f'SET VARIABLE CALLERID(name) "Caller {n[-4:]}"',
            'SET VARIABLE PBXLINK_LOOKUP "hit"',
        ]
    assert sorted(lookup.asked) == numbers
    assert took < 20, f"200 calls took {took:.1f} s"


def test_unknown_script_sets_nothing(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    lookup = acme()
    fake = FakeAsterisk(serve(lookup), environment(script="reverse?num=1")).run()
    assert lookup.asked == []
    assert fake.commands == ["VERBOSE \"pbxlink: no FastAGI script 'reverse' here, only 'lookup'\" 1"]
    assert fake.closed_by_pbxlink
    (warning,) = trouble(caplog)
    assert "no script 'reverse' here" in warning.getMessage() and UNIQUEID in warning.getMessage()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"GET / HTTP/1.1\r\nHost: pbxlink\r\n\r\n", "is not an agi_* line"),
        (b"agi_network: " + b"x" * 10_000 + b"\n", "a line longer than 4096 bytes"),
        (b"".join(b"agi_arg_%d: x\n" % i for i in range(300)) + b"\n", "more than 200 lines"),
    ],
    ids=["http", "long-line", "many-lines"],
)
def test_foreign_client_is_closed_at_once(
    serve: Serve, caplog: pytest.LogCaptureFixture, data: bytes, why: str
) -> None:
    lookup = acme()
    address = serve(lookup)
    with socket.create_connection(address, timeout=5) as sock:
        started = time.monotonic()
        with contextlib.suppress(ConnectionError):
            sock.sendall(data)
            assert sock.recv(1) == b""
        assert time.monotonic() - started < 1.0
    assert lookup.asked == []
    (warning,) = logged(caplog, "not a FastAGI client")
    assert why in warning.getMessage()


def test_bind_failure_is_a_clear_error_not_a_dead_thread() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(AgiBindError) as info:
            AgiServer(FakeLookup(), "127.0.0.1", port, pbx="bind").start()
    assert str(info.value) == (
        f"cannot listen on 127.0.0.1:{port} for FastAGI: address already in use (another pbxlink?) — "
        "change listen in [agi] (and the agi:// address of AGI() in the dialplan to match)"
    )
    assert not [t for t in threading.enumerate() if t.name == "pbxlink-agi-bind"]


def test_server_from_agi_config() -> None:
    server = agi_server(AgiConfig(host="127.0.0.1", port=0, budget=0.5), FakeLookup())
    assert (server.host, server.port, server.budget) == ("127.0.0.1", 0, 0.5)
    with pytest.raises(RuntimeError):
        _ = server.address
    try:
        host, port = server.start()
        assert server.address == (host, port) and port > 0
    finally:
        server.stop()
