"""The AMI link over real TCP against the simulator: login, events, drops, silence, resync, `check`."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pbxlink.ami.adapter import AmiAdapter
from pbxlink.ami.check import check_asterisk
from pbxlink.ami.client import AmiClient
from pbxlink.ami.simulator import AmiSimulator, SimulatorThread
from pbxlink.config import PbxConfig
from pbxlink.domain.calls import CallEnded, CallEvent
from pbxlink.domain.ports import CheckResult, OriginateRequest

FIXTURES = Path(__file__).parent.parent / "fixtures" / "asterisk"
PING = 0.3
SECRET = "s3cret"


class FakeTracker:
    """Records what the client hands the tracker."""

    def __init__(self) -> None:
        self.fed: list[tuple[Mapping[str, str | list[str]], datetime]] = []
        self.resyncs: list[tuple[list[Mapping[str, str]], datetime | None]] = []
        self.lost: list[datetime] = []

    def feed(self, event: Mapping[str, str | list[str]], at: datetime) -> list[CallEvent]:
        self.fed.append((event, at))
        return []

    def link_lost(self, at: datetime) -> None:
        self.lost.append(at)

    def resync(
        self, channels: Sequence[Mapping[str, str]], at: datetime, pbx_started_at: datetime | None
    ) -> list[CallEvent]:
        self.resyncs.append((list(channels), pbx_started_at))
        return []


@pytest.fixture
def start_sim() -> Iterator[Callable[..., SimulatorThread]]:
    """Start a simulator (AmiSimulator keywords) in its own thread; stopped after the test."""
    started: list[SimulatorThread] = []

    def start(**kw: object) -> SimulatorThread:
        kw = {"secret": SECRET, "timestampevents": True, "auth_fail_delay": 0.05, **kw}
        thread = SimulatorThread(AmiSimulator(**kw))  # type: ignore[arg-type]
        thread.start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
def pbx(start_sim: Callable[..., SimulatorThread]) -> SimulatorThread:
    return start_sim()


def received(caplog: pytest.LogCaptureFixture, action: str) -> int:
    """How many `action`s the simulator was sent (it logs each one at debug)."""
    return sum(1 for r in caplog.records if r.getMessage().endswith(f"→ {action}"))


def newchannel(uid: str, name: str = "Bob") -> list[tuple[str, str]]:
    return [
        *[("Event", "Newchannel"), ("Privilege", "call,all"), ("Channel", f"PJSIP/201-{uid[-4:]:0>8}")],
        *[("ChannelState", "6"), ("ChannelStateDesc", "Up"), ("CallerIDNum", "+15551234567")],
        *[("CallerIDName", name), ("Context", "from-internal"), ("Exten", "201"), ("Priority", "1")],
        *[("Uniqueid", uid), ("Linkedid", uid)],
    ]


def config(port: int, secret: str = SECRET, **kw: float) -> PbxConfig:
    return PbxConfig(
        name="main",
        type="asterisk",
        host="127.0.0.1",
        port=port,
        username="pbxlink",
        secret=secret,
        ping_interval=kw.get("ping_interval", PING),
        connect_timeout=1.0,
        reconnect_max_delay=kw.get("reconnect_max_delay", 0.4),
    )


async def until(cond: Callable[[], object], timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


def with_client(server: SimulatorThread, test: Callable[[AmiClient, FakeTracker], Awaitable[None]]) -> None:
    async def main() -> None:
        tracker = FakeTracker()
        client = AmiClient(config(server.port), tracker, lambda e: None, action_timeout=2.0)
        task = asyncio.create_task(client.run())
        try:
            await until(lambda: client.status().connected)
            await test(client, tracker)
        finally:
            task.cancel()

    asyncio.run(main())


NAME = "Zoë Ångström".encode()
NEWCHANNEL = b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/201-00000001\r\nCallerIDName: "


def test_login_resync_and_events_reach_the_tracker_in_order(pbx: SimulatorThread) -> None:
    pbx.call(pbx.sim.broadcast, newchannel("1795400000.1"))  # a call up before we connect

    async def test(client: AmiClient, tracker: FakeTracker) -> None:
        ((channels, started),) = tracker.resyncs
        assert [c["Uniqueid"] for c in channels] == ["1795400000.1"]
        assert started is not None and abs((datetime.now(UTC) - started).total_seconds()) < 5
        assert tracker.fed[0][0]["Event"] == "FullyBooted"  # held during the resync, then fed
        before = len(tracker.fed)
        pbx.inject(NEWCHANNEL + NAME[:3])  # ends inside the two-byte ë
        await asyncio.sleep(0.05)
        stamped = (
            b"Event: Hangup\r\nPrivilege: call,all\r\nTimestamp: 1795436929.995465\r\nUniqueid: 1.1\r\n\r\n"
        )
        pbx.inject(NAME[3:] + b"\r\nUniqueid: 1.1\r\n\r\n" + stamped)
        await until(lambda: len(tracker.fed) >= before + 2)
        (new, new_at), (hangup, hangup_at) = tracker.fed[before : before + 2]
        assert new["CallerIDName"] == "Zoë Ångström"
        assert abs((datetime.now(UTC) - new_at).total_seconds()) < 2  # no Timestamp: receive time
        assert hangup["Event"] == "Hangup" and hangup_at == datetime.fromtimestamp(1795436929.995465, UTC)
        assert client.status().last_event_at is not None

    with_client(pbx, test)


def test_drop_mid_call_reconnects_with_backoff_and_resyncs(
    pbx: SimulatorThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pbxlink.ami.simulator")

    async def test(client: AmiClient, tracker: FakeTracker) -> None:
        pbx.call(pbx.sim.broadcast, newchannel("1795400000.2"))
        await until(lambda: any(e.get("Uniqueid") == "1795400000.2" for e, _ in tracker.fed))
        pbx.drop_connections()
        await until(lambda: tracker.lost)
        await until(lambda: len(tracker.resyncs) == 2 and client.status().connected)
        assert [c["Uniqueid"] for c in tracker.resyncs[1][0]] == ["1795400000.2"]
        assert client.status().reconnects == 1
        assert len(tracker.lost) == 1 and received(caplog, "Login") == 2

    with_client(pbx, test)


def test_silent_pbx_is_noticed_within_two_ping_intervals_and_the_link_comes_back(
    pbx: SimulatorThread,
) -> None:
    async def test(client: AmiClient, tracker: FakeTracker) -> None:
        await asyncio.sleep(PING * 1.5)  # a few healthy pings first
        pbx.go_silent()
        noticed = await until(lambda: tracker.lost)
        assert noticed < 2 * PING + 0.15, noticed
        pbx.resume()
        await until(lambda: len(tracker.resyncs) == 2 and client.status().connected)

    with_client(pbx, test)


def test_pbx_restart_resyncs_with_the_new_start_time(start_sim: Callable[..., SimulatorThread]) -> None:
    pbx = start_sim(restart_downtime=0.2)
    pbx.call(pbx.sim.broadcast, newchannel("1795400000.3"))

    async def test(client: AmiClient, tracker: FakeTracker) -> None:
        await asyncio.sleep(1.5)  # the PBX has been up a while
        first_start = tracker.resyncs[0][1]
        pbx.restart()
        await until(lambda: len(tracker.resyncs) == 2 and client.status().connected)
        assert any(e["Event"] == "Shutdown" for e, _ in tracker.fed)
        channels, started = tracker.resyncs[1]
        assert channels == [] and started is not None and first_start is not None
        assert started - first_start > timedelta(seconds=1)

    with_client(pbx, test)


def test_unanswered_action_fails_on_drop_and_is_never_resent(
    start_sim: Callable[..., SimulatorThread], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pbxlink.ami.simulator")
    pbx = start_sim(call_speed=0.01)  # a synchronous Originate now waits minutes for its answer

    async def test(client: AmiClient, tracker: FakeTracker) -> None:
        action = {
            "Action": "Originate",
            "Channel": "PJSIP/201",
            "Context": "outbound",
            "Exten": "15559876543",
        }
        originate = asyncio.create_task(client.action(action, timeout=30))
        await until(lambda: received(caplog, "Originate") == 1)
        started = time.monotonic()
        pbx.drop_connections()
        with pytest.raises(ConnectionError, match="not re-sent"):
            await originate
        assert time.monotonic() - started < 1.0
        await until(lambda: len(tracker.resyncs) == 2 and client.status().connected)
        await asyncio.sleep(PING)
        assert received(caplog, "Originate") == 1

    with_client(pbx, test)


def test_list_action_cut_by_disconnect_fails_at_once(pbx: SimulatorThread) -> None:
    async def test(client: AmiClient, tracker: FakeTracker) -> None:
        pbx.go_silent()
        pending = asyncio.create_task(client.action({"Action": "QueueStatus"}, timeout=30))
        await asyncio.sleep(0.05)
        pbx.drop_connections()
        assert await until(pending.done) < 1.0
        assert isinstance(pending.exception(), ConnectionError)
        pbx.resume()

    with_client(pbx, test)


def test_every_action_has_a_timeout(pbx: SimulatorThread) -> None:
    async def test(client: AmiClient, tracker: FakeTracker) -> None:
        pbx.go_silent()
        with pytest.raises(TimeoutError, match="CoreSettings"):
            await client.action({"Action": "CoreSettings"}, timeout=0.2)
        pbx.resume()

    with_client(pbx, test)


def test_bad_secret_is_reported_once_and_retried_with_backoff(
    pbx: SimulatorThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        client = AmiClient(config(pbx.port, secret="wrong"), FakeTracker(), lambda e: None)
        task = asyncio.create_task(client.run())
        await until(lambda: received(caplog, "Login") >= 4)
        task.cancel()
        status = client.status()
        assert not status.connected and "authentication failed" in (status.last_error or "")

    asyncio.run(main())
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "AMI main 127.0.0.1" in errors[0] and "check [[pbx]] username/secret" in errors[0]
    assert SECRET not in caplog.text and "wrong" not in errors[0]


def test_adapter_publishes_a_replayed_call_and_originates_from_another_thread(
    start_sim: Callable[..., SimulatorThread],
) -> None:
    pbx = start_sim(call_speed=20)
    published: list[CallEvent] = []
    adapter = AmiAdapter(config(pbx.port, ping_interval=5), published.append, open_calls=list)
    adapter.start()

    def wait(cond: Callable[[], object]) -> None:
        deadline = time.monotonic() + 10
        while not cond():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)

    try:
        wait(lambda: adapter.status().connected)
        pbx.play_capture(FIXTURES / "inbound_answered_recorded.ami", speed=0)
        wait(lambda: any(isinstance(e, CallEnded) for e in published))
        (ended,) = [e.call for e in published if isinstance(e, CallEnded)]
        assert (ended.disposition, ended.agent, ended.caller) == ("answered", "201", "+15551234567")
        assert ended.recording and ended.recording.endswith(".wav")
        request = OriginateRequest(endpoint="201", exten="15559876543", context="outbound")
        handle = adapter.control.originate(request)
        assert handle.pbx == "main" and handle.tag
        wait(lambda: sum(isinstance(e, CallEnded) for e in published) == 2)  # the originated call ran
    finally:
        adapter.stop()
    assert not adapter.status().connected


def test_bad_input_is_logged_and_skipped_and_the_next_call_is_still_tracked(
    start_sim: Callable[..., SimulatorThread], caplog: pytest.LogCaptureFixture
) -> None:
    pbx = start_sim()
    published: list[CallEvent] = []
    adapter = AmiAdapter(config(pbx.port, ping_interval=5), published.append)
    adapter.start()
    try:
        deadline = time.monotonic() + 10
        while not adapter.status().connected and time.monotonic() < deadline:
            time.sleep(0.01)
        huge = b"Event: UserEvent\r\nPrivilege: user,all\r\nData: " + b"x" * (1 << 20) + b"\r\n\r\n"
        pbx.inject(b"\x00\xff\xfe garbage without any structure\r\n\r\n")
        pbx.inject(huge)
        pbx.inject(b"Event: Newchannel\r\nPrivilege: call,all\r\nCallerIDName: Jos\xe9\r\n\r\n")
        pbx.inject(b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/201-0000\r\n\r\n")
        pbx.inject(b"Event: Hangup\r\nPrivilege: call,all\r\nChann")  # truncated, then a new frame
        pbx.inject(b"\r\n\r\n")
        pbx.play_capture(FIXTURES / "inbound_answered_recorded.ami", speed=0)
        while not any(isinstance(e, CallEnded) for e in published) and time.monotonic() < deadline:
            time.sleep(0.01)
        (ended,) = [e.call for e in published if isinstance(e, CallEnded)]
        assert (ended.call_id, ended.disposition, ended.agent) == ("1795435553.0", "answered", "201")
        assert adapter.status().reconnects == 0  # all of it survived on the same link
    finally:
        adapter.stop()
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "malformed frame" in warnings and "oversized frame" in warnings and "UTF-8" in warnings


# -- pbxlink check ------------------------------------------------------------------------------------


def lines(results: list[CheckResult]) -> dict[str, tuple[bool, str]]:
    return {r.what.split(": ", 1)[1].split(" ")[0]: (r.ok, r.detail) for r in results}


def test_check_all_good(pbx: SimulatorThread) -> None:
    results = check_asterisk(config(pbx.port), timeout=2)
    assert all(r.ok for r in results), results
    got = lines(results)
    assert set(got) == {"connect", "AMI", "login", "Asterisk", "read", "write", "timestampevents"}
    assert "22.10.1" in got["Asterisk"][1]
    assert not any(SECRET in r.detail or SECRET in r.what for r in results)


def test_check_refused_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (result,) = check_asterisk(config(port), timeout=2)
    assert not result.ok and f"connection refused by 127.0.0.1:{port}" in result.detail
    assert "manager.conf [general] enabled = yes" in result.detail


def test_check_bad_secret(pbx: SimulatorThread) -> None:
    results = check_asterisk(config(pbx.port, secret="wrong"), timeout=2)
    assert not results[-1].ok and "authentication failed for user pbxlink" in results[-1].detail
    assert not any("wrong" in r.detail for r in results)


def test_check_timestampevents_off(start_sim: Callable[..., SimulatorThread]) -> None:
    pbx = start_sim(timestampevents=False)
    ok, detail = lines(check_asterisk(config(pbx.port), timeout=2))["timestampevents"]
    assert not ok and "timestampevents = yes" in detail and "[general]" in detail


def test_check_missing_read_permission(start_sim: Callable[..., SimulatorThread]) -> None:
    pbx = start_sim(read="system,call")
    ok, detail = lines(check_asterisk(config(pbx.port), timeout=2))["read"]
    assert not ok and "may not read agent, dialplan" in detail
    assert "set read = agent,call,dialplan,system" in detail


def test_check_without_command_permission_warns_it_could_not_verify(
    start_sim: Callable[..., SimulatorThread],
) -> None:
    """The documented, least-privilege user (no `command`) passes `check`, with what was not verified."""
    pbx = start_sim(write="system,call,originate")
    results = check_asterisk(config(pbx.port), timeout=2)
    assert all(r.ok for r in results)
    warned = {r.what.split(": ", 1)[1].split()[0]: r.detail for r in results if r.warning}
    assert set(warned) == {"read", "timestampevents"}
    assert "not verified" in warned["read"] and "`command` to write=" in warned["read"]
