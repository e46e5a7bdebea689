"""The ESL link over real TCP against the simulator: auth, subscription, events in plain and json,
bgapi, timeouts, drops, silence, a FreeSWITCH restart, resync, the adapter and `pbxlink check`."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import pbxlink.esl.client as client_module
from pbxlink.config import PbxConfig
from pbxlink.domain.calls import CallEnded, CallEvent, CallRecord
from pbxlink.domain.ports import OriginateRequest
from pbxlink.esl.adapter import EslAdapter
from pbxlink.esl.channels import DEFAULT_AGENT_PATTERNS
from pbxlink.esl.check import check_freeswitch
from pbxlink.esl.client import EslClient
from pbxlink.esl.link import EslLink
from pbxlink.esl.simulator import EslSimulator, SimulatorThread
from pbxlink.esl.simulator.synthetic import SyntheticPbx
from pbxlink.simulation.timeline import CallTimeline

FIXTURES = Path(__file__).parent.parent / "fixtures" / "freeswitch"
PASSWORD = "s3cret"
PING = 0.3


class FakeTracker:
    """Records what the client hands the tracker, in order."""

    event_names = ("CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE", "SHUTDOWN", "CUSTOM", "callcenter::info")

    def __init__(self, names: tuple[str, ...] | None = None) -> None:
        self.event_names = names or self.event_names
        self.fed: list[tuple[Mapping[str, str | list[str]], datetime]] = []
        self.resyncs: list[tuple[list[Mapping[str, str]], datetime | None]] = []
        self.lost: list[datetime] = []
        self.log: list[str] = []

    def feed(self, event: Mapping[str, str | list[str]], at: datetime) -> list[CallEvent]:
        self.fed.append((event, at))
        self.log.append(f"feed {event.get('Event-Name')}")
        return []

    def link_lost(self, at: datetime) -> None:
        self.lost.append(at)
        self.log.append("lost")

    def resync(
        self, channels: Sequence[Mapping[str, str]], at: datetime, pbx_started_at: datetime | None
    ) -> list[CallEvent]:
        self.resyncs.append((list(channels), pbx_started_at))
        self.log.append("resync")
        return []

    def names(self) -> list[str | list[str]]:
        return [event["Event-Name"] for event, _ in self.fed]


def config(port: int, password: str = PASSWORD, **kw: float) -> PbxConfig:
    return PbxConfig(
        name="fs",
        type="freeswitch",
        host="127.0.0.1",
        port=port,
        username="",
        secret=password,
        ping_interval=kw.get("ping_interval", PING),
        connect_timeout=1.0,
        reconnect_max_delay=kw.get("reconnect_max_delay", 0.4),
    )


def until(cond: Callable[[], object], timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)
    return time.monotonic() - start


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    thread = SimulatorThread(
        EslSimulator(
            password=PASSWORD,
            synthetic=SyntheticPbx(agents=4, seed=7),
            call_speed=50,
            heartbeat=0,
            restart_downtime=0.3,
        )
    )
    thread.start()
    yield thread
    thread.stop()


@pytest.fixture
def run_client() -> Iterator[Callable[..., tuple[EslClient, FakeTracker]]]:
    started: list[EslClient] = []

    def start(
        sim: SimulatorThread, fmt: str = "plain", tracker: FakeTracker | None = None, **kw: Any
    ) -> tuple[EslClient, FakeTracker]:
        tracker = tracker or FakeTracker()
        pbx = config(sim.port, **kw.pop("pbx", {}))
        client = EslClient(pbx, tracker, lambda e: None, event_format=fmt, command_timeout=2, **kw)
        client.start()
        started.append(client)
        until(lambda: client.status().connected)
        return client, tracker

    yield start
    for client in started:
        client.stop()


def received(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The commands the simulator was sent (it logs each one at debug)."""
    return [r.getMessage().split(" → ", 1)[1] for r in caplog.records if " → " in r.getMessage()]


def calls(sim: SimulatorThread, count: int, *, answered_for_ever: bool = False) -> list[CallTimeline]:
    synthetic = sim.sim.synthetic
    if answered_for_ever:
        return synthetic.long_lived(count, time.time())
    return [synthetic.next_call(time.time()) for _ in range(count)]


def test_connects_authenticates_subscribes_and_resyncs(
    sim: SimulatorThread, run_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pbxlink.esl.simulator")
    (call,) = calls(sim, 1, answered_for_ever=True)
    sim.call(sim.sim.spawn_call, call)
    until(lambda: len(sim.sim.channels.channels) == 2)  # the customer's and the agent's legs, bridged
    client, tracker = run_client(sim)
    assert received(caplog)[:4] == [
        f"auth {PASSWORD}",
        "event plain CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE SHUTDOWN BACKGROUND_JOB CUSTOM callcenter::info",
        "api show channels as json",
        "api status",
    ]
    ((rows, started),) = tracker.resyncs
    assert {row["uuid"] for row in rows} == set(call.uuids)
    assert started is not None
    assert abs(started - datetime.fromtimestamp(sim.sim.started, UTC)) < timedelta(milliseconds=50)
    status = client.status()
    assert status.connected and status.reconnects == 0 and status.last_error is None


def test_events_reach_the_tracker_identically_in_plain_and_json(
    sim: SimulatorThread, run_client: Any
) -> None:
    channels = (
        "CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE "
        "CHANNEL_DESTROY CHANNEL_STATE CHANNEL_EXECUTE RECORD_START RECORD_STOP CUSTOM callcenter::info",
    )
    _, plain = run_client(sim, "plain", FakeTracker(channels))  # not API: the probes would race
    _, as_json = run_client(sim, "json", FakeTracker(channels))
    sim.play_capture(FIXTURES / "100_inbound_answered.esl", speed=0)
    multibyte = next(c for c in calls(sim, 30) if not (c.expected.caller_name or "").isascii())
    sim.call(sim.sim.spawn_call, multibyte)
    until(
        lambda: any(
            e.get("Unique-ID") == multibyte.call_id and e["Event-Name"] == "CHANNEL_DESTROY"
            for e, _ in plain.fed
        )
    )
    until(lambda: len(as_json.fed) == len(plain.fed))
    assert [e for e, _ in as_json.fed] == [e for e, _ in plain.fed]
    events = [e for e, _ in plain.fed]
    assert len(events) > 100
    for event, at in plain.fed:
        assert at == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
            microseconds=int(event["Event-Date-Timestamp"])
        )
    completes = [e for e in events if e["Event-Name"] == "CHANNEL_HANGUP_COMPLETE"]
    assert all(isinstance(e["Hangup-Cause"], list) and len(e["Hangup-Cause"]) == 2 for e in completes)
    names = {e.get("Caller-Caller-ID-Name") for e in events}
    assert multibyte.expected.caller_name in names


def test_bgapi_results_come_from_their_background_jobs(sim: SimulatorThread, run_client: Any) -> None:
    client, tracker = run_client(sim)
    status = client.bgapi("status", job_uuid="11111111-2222-3333-4444-555555555555")
    version = client.bgapi("version")
    assert version.result(2) == "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"
    assert status.result(2).startswith("UP 0 years, 0 days")
    jobs = [e for e, _ in tracker.fed if e["Event-Name"] == "BACKGROUND_JOB"]
    assert "11111111-2222-3333-4444-555555555555" in [j["Job-UUID"] for j in jobs]
    clicked = client.bgapi(
        "originate {origination_caller_id_number=+15557654321}user/201 +15557654321 XML default"
    )
    assert clicked.result(5).startswith("+OK ")  # when the agent's phone answered


def test_a_background_job_without_result_times_out(sim: SimulatorThread) -> None:
    sim.call(setattr, sim.sim, "call_speed", 1)  # the agent's phone rings for a second at least
    tracker = FakeTracker()
    client = EslClient(config(sim.port), tracker, lambda e: None)
    client.start()
    try:
        until(lambda: client.status().connected)
        job = client.bgapi("originate user/202 &bridge(user/+15557654321)", timeout=0.2)
        with pytest.raises(TimeoutError, match="no BACKGROUND_JOB"):
            job.result(2)
    finally:
        client.stop()


def test_every_command_has_a_timeout_and_a_late_reply_keeps_replies_in_step(
    sim: SimulatorThread, run_client: Any
) -> None:
    sim.call(
        setattr, sim.sim, "call_speed", 4
    )  # `api originate` blocks until the agent answers: 0.25 s at least
    client, _ = run_client(sim, pbx={"ping_interval": 5})
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        client.api("originate user/203 +15557654321 XML default", timeout=0.1)
    assert time.monotonic() - start < 0.5
    assert client.api("version", timeout=5).startswith("FreeSWITCH Version")  # not the originate's answer


def test_pending_commands_fail_at_once_when_the_link_drops(sim: SimulatorThread, run_client: Any) -> None:
    sim.call(setattr, sim.sim, "call_speed", 1)
    client, tracker = run_client(sim, pbx={"ping_interval": 5})
    job = client.bgapi("originate user/204 &bridge(user/+15557654321)")
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            client.api("originate user/201 &bridge(user/+15557654322)", timeout=30)
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=call)
    waiter.start()
    time.sleep(0.1)
    start = time.monotonic()
    sim.drop_connections()
    waiter.join(5)
    assert isinstance(outcome[0], ConnectionError)
    assert time.monotonic() - start < 1
    with pytest.raises(ConnectionError, match="may still have run"):
        job.result(1)
    until(lambda: tracker.lost)
    until(lambda: client.status().connected)


def test_reconnects_with_backoff_and_resyncs_every_time(
    sim: SimulatorThread, run_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    caps: list[float] = []

    def uniform(low: float, high: float) -> float:
        caps.append(high)
        return high / 2

    monkeypatch.setattr(client_module.random, "uniform", uniform)
    client, tracker = run_client(sim, reconnect_base_delay=0.05)
    sim.call(setattr, sim.sim, "password", "changed")  # the next attempts fail, so the delay grows
    sim.drop_connections()
    until(lambda: len(caps) >= 5)
    assert caps[:5] == [0.05, 0.1, 0.2, 0.4, 0.4]  # exponential, capped at reconnect_max_delay
    assert "check [[pbx]] secret" in (client.status().last_error or "")
    sim.call(setattr, sim.sim, "password", PASSWORD)
    until(lambda: len(tracker.resyncs) == 2)
    until(lambda: client.status().connected)
    assert tracker.log[:3] == ["resync", "lost", "resync"]
    assert client.status().reconnects == 1


def test_events_during_the_resync_are_held_and_fed_after_it(
    sim: SimulatorThread, run_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = EslLink.api

    def early_event(link: EslLink, text: str, timeout: float | None = None) -> str:
        if text == "show channels as json":  # an event arrives while the resync asks for the channels
            link.on_event({"Event-Name": "CHANNEL_CREATE", "Unique-ID": "early", "Event-Date-Timestamp": "1"})
        return api(link, text, timeout)

    monkeypatch.setattr(EslLink, "api", early_event)
    _, tracker = run_client(sim)
    assert tracker.log[:2] == ["resync", "feed CHANNEL_CREATE"]


def plain_frame(body: bytes, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % size + body


def test_malformed_frames_are_skipped_and_the_link_stays(
    sim: SimulatorThread, run_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client, tracker = run_client(sim)
    sim.inject(
        b"Content-Length: 12x\nContent-Type: text/event-plain\n\n"  # a bad Content-Length
        + b"\x00\xffnot a frame at all\n\n"  # garbage
        + plain_frame(b"Event-Name: CHANNEL_CREATE\nUnique-ID: bad\nBad: 1%zz\n\n")  # invalid url-encoding
        + plain_frame(b"Event-Name: CHANNEL_CREATE\nUnique-ID: short\n\n", length=20)  # a truncated body
        + plain_frame(b"Event-Name: CHANNEL_CREATE\nUnique-ID: after\nCaller-Caller-ID-Name: Jos%C3%A9\n\n")
    )
    until(lambda: tracker.fed)
    time.sleep(0.1)
    ((event, _),) = tracker.fed
    assert event == {"Event-Name": "CHANNEL_CREATE", "Unique-ID": "after", "Caller-Caller-ID-Name": "José"}
    assert client.status().connected and client.status().reconnects == 0
    assert sum("skipped a malformed" in r.getMessage() for r in caplog.records) >= 4


def test_a_silent_link_is_noticed_within_two_intervals(sim: SimulatorThread, run_client: Any) -> None:
    client, tracker = run_client(sim)
    sim.go_silent()
    took = until(lambda: tracker.lost, timeout=3)
    assert took <= 2 * PING + 0.15
    assert "half-open" in (client.status().last_error or "")
    sim.resume()
    until(lambda: client.status().connected)


def test_a_freeswitch_restart_without_bye_is_a_drop_then_a_resync(
    sim: SimulatorThread, run_client: Any
) -> None:
    (call,) = calls(sim, 1, answered_for_ever=True)
    sim.call(sim.sim.spawn_call, call)
    until(lambda: len(sim.sim.channels.channels) == 2)
    _, tracker = run_client(sim)
    restarted = datetime.now(UTC)
    sim.restart()
    until(lambda: len(tracker.resyncs) == 2)
    causes = [e["Hangup-Cause"] for e, _ in tracker.fed if e["Event-Name"] == "CHANNEL_HANGUP_COMPLETE"]
    assert len(causes) == 2 and all("SYSTEM_SHUTDOWN" in c for c in causes)
    assert tracker.names()[-1] == "SHUTDOWN" and len(tracker.lost) == 1
    rows, started = tracker.resyncs[1]
    assert rows == [] and started is not None and started > restarted


def test_stop_says_exit(sim: SimulatorThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pbxlink.esl.simulator")
    tracker = FakeTracker()
    client = EslClient(config(sim.port), tracker, lambda e: None)
    client.start()
    until(lambda: client.status().connected)
    client.stop()
    assert received(caplog)[-1] == "exit"
    assert tracker.lost and not client.status().connected
    with pytest.raises(ConnectionError):
        client.api("status")


def test_the_adapter_restores_publishes_and_steers(
    sim: SimulatorThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pbxlink.esl.simulator")
    published: list[CallEvent] = []

    def ended() -> list[CallRecord]:
        return [e.call for e in published if isinstance(e, CallEnded)]

    gone = CallRecord(
        "fs", "a1b2c3d4-0000-4000-8000-000000000001", "inbound", datetime.now(UTC), "+15550000000"
    )
    pbx = replace(config(sim.port), agent_patterns=(r"^loopback/(?P<ext>2\d\d)-a$", *DEFAULT_AGENT_PATTERNS))
    adapter = EslAdapter(pbx, published.append, lambda: [gone])
    adapter.start()
    try:
        until(lambda: adapter.status().connected)
        assert [c.call_id for c in ended()] == [gone.call_id]  # not up on the PBX: closed by the resync
        sim.play_capture(FIXTURES / "100_inbound_answered.esl", speed=0)
        until(lambda: len(ended()) == 2)
        assert (ended()[1].disposition, ended()[1].agent, ended()[1].caller) == (
            "answered",
            "201",
            "+15551234567",
        )
        handle = adapter.control.originate(
            OriginateRequest(endpoint="202", exten="+15557654321", context="default", caller_id="ACME <1000>")
        )
        until(lambda: len(ended()) == 3)
        assert ended()[2].agent == "202" and ended()[2].callee == "+15557654321"
        (sent,) = [c for c in received(caplog) if c.startswith("bgapi originate")]
        assert f"pbxlink_tag={handle.tag}}}user/202 +15557654321 XML default" in sent
    finally:
        adapter.stop()


@pytest.fixture
def acl_denied() -> Iterator[int]:
    """A port that answers as FreeSWITCH does an address its inbound ACL denies."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            text = b"Access Denied, go away.\n"
            conn.sendall(b"Content-Type: text/rude-rejection\nContent-Length: %d\n\n" % len(text) + text)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def test_an_address_the_acl_denies_is_said_with_the_fix(acl_denied: int) -> None:
    client = EslClient(config(acl_denied), FakeTracker(), lambda e: None)
    client.start()
    try:
        until(lambda: client.status().last_error)
        error = client.status().last_error or ""
        assert "turned pbxlink's address away (Access Denied, go away.)" in error
        assert "apply-inbound-acl" in error
    finally:
        client.stop()
    failed = [r for r in check_freeswitch(config(acl_denied), timeout=2) if not r.ok]
    assert [r.what for r in failed] == ["fs: ESL access"] and "apply-inbound-acl" in failed[0].detail


def test_check_ok(sim: SimulatorThread) -> None:
    results = check_freeswitch(config(sim.port), timeout=2)
    assert all(r.ok for r in results), results
    assert any("1.10.12" in r.detail for r in results)
    assert PASSWORD not in repr(results)


def test_check_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (result,) = check_freeswitch(config(port), timeout=1)
    assert not result.ok and "listen-ip" in result.detail


def test_check_wrong_password(sim: SimulatorThread) -> None:
    results = check_freeswitch(config(sim.port, password="wrong-Secret"), timeout=2)
    failed = [r for r in results if not r.ok]
    assert [r.what for r in failed] == ["fs: authentication"]
    assert "event_socket.conf.xml" in failed[0].detail
    assert "wrong-Secret" not in repr(results)
