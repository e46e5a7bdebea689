"""The AMI simulator over real TCP, seen by a plain asyncio client: exactly what is on the wire."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from pbxlink.ami.simulator import AmiSimulator, SimulatorThread
from pbxlink.ami.simulator.capture import Capture
from pbxlink.ami.simulator.synthetic import SyntheticPbx, TrafficMix, render_bulk

FIXTURES = Path(__file__).parent.parent / "fixtures" / "asterisk"
CAPTURES = sorted(
    str(p.relative_to(FIXTURES).with_suffix(""))
    for p in FIXTURES.glob("**/*.ami")
    if Capture.load(p).replay_events()
)
FAST = TrafficMix(ring=(0.2, 0.3), talk=(0.3, 0.5))
TS_LINE = re.compile(rb"Timestamp: \d+\.\d{6}\r\n")


def run(coro: Coroutine[Any, Any, None], timeout: float = 15.0) -> None:
    async def main() -> None:
        try:
            await asyncio.wait_for(coro, timeout)
        finally:
            while Client.opened:
                Client.opened.pop().writer.close()

    asyncio.run(main())


class Client:
    """A bare AMI client: raw frames in, parsed into header → first value."""

    opened: list[Client] = []  # closed by run() when the scenario ends

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, banner: bytes) -> None:
        self.reader, self.writer, self.banner = reader, writer, banner
        Client.opened.append(self)

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, await reader.readline())

    def send(self, action: str, **headers: str) -> None:
        lines = [f"Action: {action}", *(f"{k}: {v}" for k, v in headers.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def raw(self, timeout: float = 2.0) -> bytes:
        return await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)

    async def read(self, timeout: float = 2.0) -> dict[str, str]:
        return fields(await self.raw(timeout))

    async def until(
        self, test: Callable[[dict[str, str]], bool], timeout: float = 5.0
    ) -> list[dict[str, str]]:
        """Every message up to and including the first that passes `test`."""
        seen = []
        while True:
            seen.append(await self.read(timeout))
            if test(seen[-1]):
                return seen

    async def response(self, action: str, **headers: str) -> dict[str, str]:
        """Send an action and return its response, skipping the events in between."""
        self.send(action, **headers)
        return (await self.until(lambda m: "Response" in m))[-1]

    async def login(self, secret: str = "s", **headers: str) -> list[dict[str, str]]:
        self.send("Login", Username="pbxlink", Secret=secret, ActionID="login-1", **headers)
        return [await self.read()]

    async def eof(self, timeout: float = 2.0) -> bool:
        """Whether the server closes the connection (whatever it sent before) within `timeout`."""
        with contextlib.suppress(ConnectionResetError):
            await asyncio.wait_for(self.reader.read(), timeout)
        return self.reader.at_eof()


def fields(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in raw.decode().split("\r\n"):
        name, _, value = line.partition(": ")
        if line:
            out.setdefault(name, value)
    return out


def simulator(**kwargs: Any) -> AmiSimulator:
    kwargs.setdefault("secret", "s")
    return AmiSimulator(**kwargs)


async def logged_in(sim: AmiSimulator, **headers: str) -> Client:
    client = await Client.connect(sim.port)
    response = (await client.login(**headers))[0]
    assert response["Message"] == "Authentication accepted"
    if headers.get("Events", "on") == "on":  # the login's own events, when this user may read them
        last = "SuccessfulAuth" if "security" in sim.read_perms else "FullyBooted"
        await client.until(lambda m: m.get("Event") == last)
    return client


async def drain(client: Client, quiet: float = 0.3) -> list[bytes]:
    """Every frame until the line has been quiet for `quiet` seconds."""
    frames = []
    while True:
        try:
            frames.append(await client.raw(quiet))
        except TimeoutError:
            return frames


def test_login_sends_banner_response_fullybooted_and_successfulauth() -> None:
    async def scenario() -> None:
        async with simulator(timestampevents=True) as sim:
            client = await Client.connect(sim.port)
            assert client.banner == b"Asterisk Call Manager/11.0.0\r\n"
            client.send("Login", username="pbxlink", SECRET="s", ActionID="a-1")
            assert (
                await client.raw()
                == b"Response: Success\r\nActionID: a-1\r\nMessage: Authentication accepted\r\n\r\n"
            )
            booted = await client.raw()
            assert re.fullmatch(
                rb"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: \d+\r\nLastReload: \d+\r\n"
                rb"Status: Fully Booted\r\n\r\n",
                booted,
            )
            auth = await client.raw()
            assert auth.startswith(b"Event: SuccessfulAuth\r\nPrivilege: security,all\r\nTimestamp: ")
            assert fields(auth)["AccountID"] == "pbxlink"
            assert fields(auth)["RemoteAddress"].startswith("IPV4/TCP/127.0.0.1/")

    run(scenario())


def test_wrong_secret_is_answered_after_the_delay_then_the_socket_closes() -> None:
    async def scenario() -> None:
        async with simulator(auth_fail_delay=0.3) as sim:
            client = await Client.connect(sim.port)
            started = time.monotonic()
            client.send("Login", Username="pbxlink", Secret="wrong", ActionID="x-9")
            assert (
                await client.raw()
                == b"Response: Error\r\nActionID: x-9\r\nMessage: Authentication failed\r\n\r\n"
            )
            assert time.monotonic() - started >= 0.3
            assert await client.eof()

    run(scenario())


def test_actions_before_login_unknown_actions_and_missing_permissions_get_asterisks_errors() -> None:
    async def scenario() -> None:
        async with simulator(write="system,call") as sim:
            client = await Client.connect(sim.port)
            denied = await client.response("Ping", ActionID="early")
            assert denied == {"Response": "Error", "ActionID": "early", "Message": "Permission denied"}
            await client.login()
            unknown = await client.response("Frobnicate")
            assert unknown["Message"].startswith("Invalid/unknown command: Frobnicate.")
            assert "ActionID" not in unknown
            no_write = await client.response("Originate", Channel="PJSIP/201", Exten="1", ActionID="o")
            assert no_write["Message"] == "Permission denied"

    run(scenario())


def test_ping_echoes_the_action_id_and_logoff_says_goodbye_and_closes() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            client = await logged_in(sim)
            pong = await client.response("Ping", ActionID="p-42")
            assert list(pong) == ["Response", "ActionID", "Ping", "Timestamp"]
            assert pong["ActionID"] == "p-42" and pong["Ping"] == "Pong"
            assert re.fullmatch(r"\d+\.\d{6}", pong["Timestamp"])
            assert abs(float(pong["Timestamp"]) - time.time()) < 5
            assert "ActionID" not in await client.response("Ping")
            goodbye = await client.response("Logoff", ActionID="bye")
            assert goodbye == {
                "Response": "Goodbye",
                "ActionID": "bye",
                "Message": "Thanks for all the fish.",
            }
            assert await client.eof()

    run(scenario())


@pytest.mark.parametrize("timestamps", [True, False])
def test_command_reports_timestamp_setting_version_and_user_permissions(timestamps: bool) -> None:
    async def scenario() -> None:
        async with simulator(timestampevents=timestamps, read="system,call,agent,user") as sim:
            client = await logged_in(sim)
            client.send("Command", Command="manager show settings", ActionID="c1")
            settings = (await client.raw()).decode()
            assert settings.startswith(
                "Response: Success\r\nActionID: c1\r\nMessage: Command output follows\r\n"
            )
            expected = "Yes" if timestamps else "No"
            assert re.search(rf"\r\nOutput:   Timestamp events: +{expected} *\r\n", settings)
            client.send("Command", Command="manager show user pbxlink")
            user = (await client.raw()).decode()
            assert "Output:          read perm: system,call,agent,user\r\n" in user
            assert re.search(r"Output:         write perm: system,call,.*,message,all\r\n", user)
            version = await client.response("Command", Command="core show version")
            assert version["Output"].startswith("Asterisk 22.10.1 built by")
            assert (await client.response("Command", Command="core fly"))["Response"] == "Error"

    run(scenario())


@pytest.mark.parametrize("capture", CAPTURES)
def test_replay_emits_exactly_the_captures_events_in_order(capture: str) -> None:
    timestamped = capture.startswith(("timestamped/", "sip/"))
    index = [json.loads(line) for line in (FIXTURES / f"{capture}.jsonl").read_text().splitlines()]
    broadcast = [m["fields"] for m in index if m["kind"] == "event" and "Privilege" in m["fields"]]
    while broadcast and broadcast[0]["Event"] in ("FullyBooted", "SuccessfulAuth"):
        broadcast.pop(0)
    captured = [m.raw for m in Capture.load(FIXTURES / f"{capture}.ami").replay_events()]

    async def scenario() -> None:
        async with simulator(timestampevents=timestamped) as sim:
            client = await logged_in(sim)
            assert await sim.play_capture(FIXTURES / f"{capture}.ami", speed=0) == len(broadcast)
            frames = await drain(client, quiet=0.2)
            got = [fields(f) for f in frames]
            assert [(m["Event"], m.get("Uniqueid")) for m in got] == [
                (m["Event"], m.get("Uniqueid")) for m in broadcast
            ]
            assert [TS_LINE.sub(b"", f) for f in frames] == [TS_LINE.sub(b"", raw) for raw in captured]
            assert not sim.channels.channels  # every call of a capture ends

    run(scenario())


def test_timestamped_replay_shifts_timestamps_to_now_keeping_their_spacing() -> None:
    original = [
        float(fields(m.raw)["Timestamp"])
        for m in Capture.load(FIXTURES / "sip/sip_answered.ami").replay_events()
    ]

    async def scenario() -> None:
        async with simulator(timestampevents=True) as sim:
            client = await logged_in(sim)
            before = time.time()
            await sim.play_capture(FIXTURES / "sip/sip_answered.ami", speed=0)
            frames = await drain(client, quiet=0.2)
            assert all(f.split(b"\r\n")[2].startswith(b"Timestamp: ") for f in frames)
            stamps = [float(fields(f)["Timestamp"]) for f in frames]
            assert before - 0.01 <= stamps[0] <= time.time()
            shifted = [s - stamps[0] for s in stamps]
            assert shifted == pytest.approx([o - original[0] for o in original], abs=2e-6)
            assert shifted[-1] == pytest.approx(7.02, abs=0.01)  # the call's 7 s, replayed in no time

    run(scenario())


def test_replay_without_timestampevents_strips_them_and_plain_captures_gain_them() -> None:
    async def scenario() -> None:
        async with simulator(timestampevents=False) as sim:
            client = await logged_in(sim)
            await sim.play_capture(FIXTURES / "timestamped/inbound_busy.ami", speed=0)
            frames = await drain(client, quiet=0.2)
            assert frames and not any(b"Timestamp:" in f for f in frames)
        messages = Capture.load(FIXTURES / "inbound_busy.ami").replay_events()
        async with simulator(timestampevents=True) as sim:
            client = await logged_in(sim)
            await sim.play_capture(FIXTURES / "inbound_busy.ami", speed=0)
            stamps = [float(fields(f)["Timestamp"]) for f in await drain(client, quiet=0.2)]
            assert [s - stamps[0] for s in stamps] == pytest.approx(
                [m.recv_ts - messages[0].recv_ts for m in messages], abs=2e-6
            )

    run(scenario())


def test_replay_keeps_the_recorded_pace_divided_by_speed() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            started = time.monotonic()
            await sim.play_capture(FIXTURES / "sip/sip_answered.ami", speed=20)
            assert 7.02 / 20 - 0.02 <= time.monotonic() - started < 1.5

    run(scenario())


def test_core_show_channels_and_status_answer_from_the_server_wide_state() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            watcher = await logged_in(sim)
            replay = asyncio.create_task(sim.play_capture(FIXTURES / "sip/sip_answered.ami", speed=4))
            await watcher.until(
                lambda m: m.get("Event") == "BridgeEnter" and m["Channel"].startswith("PJSIP/trunk")
            )
            late = await logged_in(sim)  # connected mid-call: it missed the events, it asks
            late.send("CoreShowChannels", ActionID="cs-1")
            listing = await late.until(lambda m: m.get("Event") == "CoreShowChannelsComplete")
            assert listing[0] == {
                "Response": "Success",
                "ActionID": "cs-1",
                "EventList": "start",
                "Message": "Channels will follow",
            }
            items = [m for m in listing if m.get("Event") == "CoreShowChannel"]
            assert sorted(m["Channel"] for m in items) == ["PJSIP/201-00000001", "PJSIP/trunk-00000000"]
            assert all(m["ActionID"] == "cs-1" and m["ChannelStateDesc"] == "Up" for m in items)
            assert {m["Linkedid"] for m in items} == {"1795438404.0"}
            assert items[0]["BridgeId"] == "afd77c4c-b201-4ecf-8fd4-28f94b85e780"
            assert re.fullmatch(r"\d\d:\d\d:\d\d", items[0]["Duration"])
            assert listing[-1] == {
                "Event": "CoreShowChannelsComplete",
                "ActionID": "cs-1",
                "EventList": "Complete",
                "ListItems": "2",
            }
            late.send("Status", ActionID="st")
            status = await late.until(lambda m: m.get("Event") == "StatusComplete")
            assert [m["Channel"] for m in status if m.get("Event") == "Status"] == [
                i["Channel"] for i in items
            ]
            assert status[-1]["Items"] == "2"
            await replay
            late.send("CoreShowChannels", ActionID="cs-2")
            after = await late.until(lambda m: m.get("Event") == "CoreShowChannelsComplete")
            assert after[-1]["ListItems"] == "0"
            core = await late.response("CoreStatus")
            assert core["CoreCurrentCalls"] == "0" and core["CoreProcessedCalls"] == "1"

    run(scenario())


def test_queue_lists_show_a_waiting_caller_and_the_members() -> None:
    abandoning = TrafficMix(answered=0, no_answer=0, busy=0, queue_answered=0, queue_abandoned=1)
    pbx = SyntheticPbx(agents=2, mix=abandoning, seed=2)

    async def scenario() -> None:
        async with simulator(synthetic=pbx) as sim:
            client = await logged_in(sim)
            call = pbx.next_call(time.time())
            playing = asyncio.create_task(sim.play_timelines([call]))
            joined = (await client.until(lambda m: m.get("Event") == "QueueCallerJoin"))[-1]
            client.send("QueueSummary", Queue=joined["Queue"], ActionID="qs")
            summary = await client.until(lambda m: m.get("Event") == "QueueSummaryComplete")
            item = next(m for m in summary if m.get("Event") == "QueueSummary")
            assert (item["Queue"], item["Callers"], item["ActionID"]) == (joined["Queue"], "1", "qs")
            client.send("QueueStatus", ActionID="qst")
            status = await client.until(lambda m: m.get("Event") == "QueueStatusComplete")
            entry = next(m for m in status if m.get("Event") == "QueueEntry")
            assert (entry["Channel"], entry["Position"]) == (joined["Channel"], "1")
            members = [m["Name"] for m in status if m.get("Event") == "QueueMember"]
            assert members == ["Agent 201", "Agent 202", "Agent 202"]  # support: both, sales: the second half
            items = [m for m in status if m.get("ActionID") == "qst" and "Response" not in m]
            assert status[-1]["ListItems"] == str(len(items) - 1) == "6"  # 2 QueueParams, 3 members, 1 entry
            playing.cancel()

    run(scenario())


def test_core_settings_setvar_and_getvar() -> None:
    pbx = SyntheticPbx(agents=1, seed=8)

    async def scenario() -> None:
        async with simulator(synthetic=pbx) as sim:
            client = await logged_in(sim)
            settings = await client.response("CoreSettings", ActionID="cs")
            assert (settings["AMIversion"], settings["AsteriskVersion"]) == ("11.0.0", "22.10.1")
            assert (await client.response("Setvar", Variable="CAMPAIGN", Value="spring"))[
                "Message"
            ] == "Variable Set"
            got = await client.response("Getvar", Variable="CAMPAIGN", ActionID="g")
            assert (got["ActionID"], got["Variable"], got["Value"]) == ("g", "CAMPAIGN", "spring")
            await sim.play_timelines(pbx.long_lived(1, time.time()), speed=0)
            await drain(client, quiet=0.1)
            trunk = next(c.name for c in sim.channels.channels.values() if c.name.startswith("PJSIP/trunk-"))
            assert (await client.response("Setvar", Channel=trunk, Variable="CRM_ID", Value="42"))[
                "Response"
            ] == "Success"
            varset = fields((await drain(client, quiet=0.1))[0])
            assert (varset["Event"], varset["Channel"], varset["Variable"], varset["Value"]) == (
                "VarSet",
                trunk,
                "CRM_ID",
                "42",
            )
            missing = await client.response("Getvar", Channel="PJSIP/nope-1", Variable="X")
            assert missing["Message"] == "No such channel"

    run(scenario())


def test_events_off_and_read_permissions_filter_what_a_session_gets() -> None:
    async def scenario() -> None:
        async with simulator(read="system,call,agent,user") as sim:
            muted = await logged_in(sim, Events="off")
            limited = await logged_in(sim)
            switched = await logged_in(sim, Events="off")
            assert (await switched.response("Events", EventMask="call", ActionID="e"))["Events"] == "On"
            await sim.play_capture(FIXTURES / "sip/sip_queue_answered.ami", speed=0)
            assert await drain(muted, quiet=0.2) == []
            names = {fields(f)["Event"] for f in await drain(limited, quiet=0.2)}
            assert {"Newchannel", "AgentConnect", "Hangup"} <= names
            assert not names & {"VarSet", "Newexten", "Cdr", "RTCPSent"}  # dialplan, cdr, reporting
            assert {fields(f)["Event"] for f in await drain(switched, quiet=0.2)} <= {
                "Newchannel",
                "Newstate",
                "Hangup",
                "HangupRequest",
                "SoftHangupRequest",
                "NewConnectedLine",
                "NewCallerid",
                "DialBegin",
                "DialState",
                "DialEnd",
                "BridgeCreate",
                "BridgeEnter",
                "BridgeLeave",
                "BridgeDestroy",
                "MusicOnHoldStart",
                "MusicOnHoldStop",
                "DeviceStateChange",
            }  # call only: no agent class

    run(scenario())


def test_drop_connections_closes_every_socket_and_new_logins_work() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            clients = [await logged_in(sim) for _ in range(2)]
            sim.drop_connections()
            assert all([await c.eof() for c in clients])
            again = await logged_in(sim)
            assert (await again.response("Ping"))["Ping"] == "Pong"

    run(scenario())


def test_silent_pbx_answers_nothing_until_it_resumes() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            client = await logged_in(sim)
            sim.go_silent()
            client.send("Ping", ActionID="lost")
            await sim.play_capture(FIXTURES / "inbound_busy.ami", speed=0)
            assert await drain(client, quiet=0.5) == []
            assert not client.reader.at_eof()
            sim.resume()
            assert (await client.response("Ping", ActionID="back"))["ActionID"] == "back"

    run(scenario())


def test_inject_writes_raw_bytes_to_every_client() -> None:
    garbage = (
        b"\xff\xfe not AMI \xc3\r\nEvent: Trunc"
        + b"Event: Big\r\nPrivilege: call,all\r\nData: "
        + b"x" * 1_000_000
    )

    async def scenario() -> None:
        async with simulator() as sim:
            clients = [await logged_in(sim) for _ in range(2)]
            await drain(clients[0], quiet=0.1)  # the second login's SuccessfulAuth
            sim.inject(garbage)
            for client in clients:
                assert await asyncio.wait_for(client.reader.readexactly(len(garbage)), 5) == garbage

    run(scenario())


def test_restart_says_shutdown_closes_forgets_channels_refuses_then_accepts() -> None:
    pbx = SyntheticPbx(agents=2, seed=3)

    async def scenario() -> None:
        async with simulator(timestampevents=True, restart_downtime=0.4, synthetic=pbx) as sim:
            client = await logged_in(sim)
            await sim.play_timelines(pbx.long_lived(2, time.time()), speed=0)
            assert len(sim.channels.channels) == 4
            started_before = sim.started
            restart = asyncio.create_task(sim.restart())
            shutdown = (await client.until(lambda m: m.get("Event") == "Shutdown"))[-1]
            assert shutdown["Shutdown"] == "Cleanly" and shutdown["Restart"] == "True"
            assert "Timestamp" in shutdown
            assert await client.eof()
            with pytest.raises(OSError):
                await Client.connect(sim.port)
            await restart
            client = await Client.connect(sim.port)
            await client.login()
            booted = await client.read()
            assert booted["Event"] == "FullyBooted" and booted["Uptime"] == "0"
            assert sim.started > started_before
            client.send("CoreShowChannels")
            listing = await client.until(lambda m: m.get("Event") == "CoreShowChannelsComplete")
            assert listing[-1]["ListItems"] == "0"

    run(scenario())


@pytest.mark.parametrize("async_", [True, False])
def test_originate_answers_and_generates_a_click_to_call(async_: bool) -> None:
    async def scenario() -> None:
        async with simulator(synthetic=SyntheticPbx(agents=3, mix=FAST, seed=1), call_speed=10) as sim:
            client = await logged_in(sim)
            headers = {"Channel": "PJSIP/202", "Exten": "15559876543", "Context": "outbound"}
            headers |= {"CallerID": '"Agent 202" <202>', "ActionID": "ctc-7"}
            client.send("Originate", Async="true" if async_ else "false", **headers)
            messages = await client.until(
                lambda m: m.get("Event") == "Hangup" and m["Channel"].startswith("PJSIP/202")
            )
            kinds = [m.get("Event") or m["Response"] for m in messages]
            response = next(m for m in messages if "Response" in m and "Event" not in m)
            assert response == {
                "Response": "Success",
                "ActionID": "ctc-7",
                "Message": "Originate successfully queued",
            }
            originated = next(m for m in messages if m.get("Event") == "OriginateResponse")
            assert originated["ActionID"] == "ctc-7" and originated["Response"] == "Success"
            assert originated["Channel"].startswith("PJSIP/202-") and originated["Exten"] == "15559876543"
            assert (
                kinds.index("Success") < kinds.index("Newchannel")
                if async_
                else kinds.index("OriginateResponse") < kinds.index("Success")
            )
            dialed = [m for m in messages if m.get("Event") == "DialBegin"]
            assert dialed and dialed[0]["DestChannel"].startswith("PJSIP/trunk-")
            assert {m["Linkedid"] for m in messages if "Linkedid" in m} == {originated["Uniqueid"]}

    run(scenario())


def test_hangup_action_ends_a_live_generated_call() -> None:
    pbx = SyntheticPbx(agents=1, seed=5)

    async def scenario() -> None:
        async with simulator(synthetic=pbx) as sim:
            client = await logged_in(sim)
            await sim.play_timelines(pbx.long_lived(1, time.time()), speed=0)
            await drain(client, quiet=0.2)
            agent_leg = next(
                c.name for c in sim.channels.channels.values() if c.name.startswith("PJSIP/201-")
            )
            assert (await client.response("Hangup", Channel=agent_leg, ActionID="h"))[
                "Message"
            ] == "Channel Hungup"
            hangups = [fields(f) for f in await drain(client, quiet=0.2)]
            assert next(m["Channel"] for m in hangups if m["Event"] == "Hangup") == agent_leg
            assert len([m for m in hangups if m["Event"] == "Hangup"]) == 2
            assert not sim.channels.channels
            assert (await client.response("Hangup", Channel=agent_leg))["Message"] == "No such channel"

    run(scenario())


def test_live_traffic_runs_overlapping_calls_with_linkedids() -> None:
    pbx = SyntheticPbx(agents=6, mix=FAST, seed=11)

    async def scenario() -> None:
        async with simulator(synthetic=pbx, call_speed=5) as sim:
            client = await logged_in(sim)
            sim.start_traffic(calls_per_minute=600)
            await asyncio.sleep(1.0)
            sim.stop_traffic()
            events = [fields(f) for f in await drain(client, quiet=0.3)]
            calls = {m["Linkedid"] for m in events if m["Event"] == "Newchannel"}
            assert len(calls) >= 3
            assert all("Linkedid" in m for m in events if "Channel" in m and m["Event"] != "Cdr")
            assert calls <= {c.call_id for c in pbx.history}

    run(scenario())


def test_bulk_mode_blasts_the_blob_after_login_then_closes() -> None:
    stream = render_bulk(500, seed=2)

    async def scenario() -> None:
        async with simulator(bulk=stream.blob, bulk_chunk=997) as sim:
            client = await logged_in(sim)
            received = await asyncio.wait_for(client.reader.read(), 10)
            assert received == stream.blob
            assert received.count(b"\r\n\r\nEvent: ") + 1 == stream.events

    run(scenario())


def test_simulator_thread_serves_synchronous_code_and_injects_faults() -> None:
    with SimulatorThread(simulator()) as pbx:
        with socket.create_connection((pbx.host, pbx.port), timeout=2) as sock:
            assert sock.recv(100) == b"Asterisk Call Manager/11.0.0\r\n"
            sock.sendall(b"Action: Login\r\nUsername: pbxlink\r\nSecret: s\r\n\r\n")
            assert sock.recv(4096).startswith(b"Response: Success\r\nMessage: Authentication accepted")
            assert pbx.play_capture(FIXTURES / "inbound_busy.ami", speed=0) == 63
            pbx.drop_connections()
            data = b"x"
            while data:
                data = sock.recv(65536)
        pbx.restart()
        with socket.create_connection((pbx.host, pbx.port), timeout=2) as sock:
            assert sock.recv(100).startswith(b"Asterisk Call Manager/")


def test_replay_starts_once_the_first_client_has_logged_in() -> None:
    async def scenario() -> None:
        async with simulator(replay=FIXTURES / "inbound_busy.ami", replay_speed=0) as sim:
            client = await Client.connect(sim.port)
            await asyncio.sleep(0.1)
            assert sim.auto_replay is None  # connected is not enough
            await client.login()
            assert await asyncio.wait_for(sim.auto_replay, 5) == 63  # type: ignore[arg-type]
            frames = await drain(client, quiet=0.2)
            assert sum(fields(f)["Event"] not in ("FullyBooted", "SuccessfulAuth") for f in frames) == 63

    run(scenario())


def test_cli_help_describes_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pbxlink.ami.simulator", "--help"], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0
    for option in (
        "--port",
        "--secret",
        "--timestamps",
        "--replay",
        "--speed",
        "--agents",
        "--calls-per-minute",
    ):
        assert option in result.stdout


def test_cli_serves_a_replay_on_a_free_port() -> None:
    command = [sys.executable, "-m", "pbxlink.ami.simulator", "--port", "0", "--secret", "s", "--timestamps"]
    command += ["--replay", str(FIXTURES / "inbound_busy.ami"), "--speed", "0"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]

        async def scenario() -> None:
            client = await Client.connect(port)
            await client.login()
            frames = await drain(client, quiet=0.3)
            assert len(frames) == 2 + 63 and all(b"\r\nTimestamp: " in f for f in frames[1:])

        run(scenario())
    finally:
        server.terminate()
        server.communicate(timeout=10)
