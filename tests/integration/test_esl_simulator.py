"""The ESL simulator over real TCP, seen by a bare asyncio client (the exact wire) and by greenswitch."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from pbxlink.esl.simulator import EslSimulator, SimulatorThread
from pbxlink.esl.simulator.capture import Capture
from pbxlink.esl.simulator.event import EslEvent
from pbxlink.esl.simulator.synthetic import SyntheticPbx, TrafficMix, render_bulk
from pbxlink.esl.simulator.wire import Frame, FrameReader

FIXTURES = Path(__file__).parent.parent / "fixtures" / "freeswitch"
CAPTURES = sorted(
    str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("**/*.esl") if Capture.load(p).is_inbound()
)
FAST = TrafficMix(ring=(0.2, 0.3), talk=(0.3, 0.5))
GOODBYE = b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n" + (
    b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
)


def run(coro: Coroutine[Any, Any, None], timeout: float = 15.0) -> None:
    async def main() -> None:
        try:
            await asyncio.wait_for(coro, timeout)
        finally:
            while Client.opened:
                Client.opened.pop().writer.close()

    asyncio.run(main())


def simulator(**kwargs: Any) -> EslSimulator:
    kwargs.setdefault("heartbeat", 0)
    kwargs.setdefault("synthetic", SyntheticPbx(agents=4, mix=FAST, seed=5))
    return EslSimulator(**kwargs)


class Client:
    """A bare inbound ESL client: frames in, commands out; events are kept apart from replies."""

    opened: list[Client] = []

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = FrameReader()
        self.frames: deque[Frame] = deque()
        self.unread = bytearray()  # received, not yet returned as a frame
        self.events: list[EslEvent] = []
        Client.opened.append(self)

    @classmethod
    async def connect(cls, port: int, password: str | None = "ClueCon") -> Client:
        client = cls(*await asyncio.open_connection("127.0.0.1", port))
        assert (await client.frame()).content_type == "auth/request"
        if password is not None:
            assert (await client.command(f"auth {password}")).headers["Reply-Text"] == "+OK accepted"
        return client

    def send(self, line: str, *headers: tuple[str, str]) -> None:
        self.writer.write((line + "\n" + "".join(f"{k}: {v}\n" for k, v in headers) + "\n").encode())

    async def frame(self, timeout: float = 3.0) -> Frame:
        while not self.frames:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError
            self.unread += data
            self.frames.extend(self.decoder.feed(data))
        frame = self.frames.popleft()
        del self.unread[: frame.size]
        return frame

    async def reply(self, timeout: float = 3.0) -> Frame:
        """The next reply (command/reply, api/response…); events on the way are kept in `events`."""
        while (frame := await self.frame(timeout)).content_type.startswith("text/event-"):
            self.events.append(frame.event())  # type: ignore[arg-type]
        return frame

    async def command(self, line: str, *headers: tuple[str, str]) -> Frame:
        self.send(line, *headers)
        return await self.reply()

    async def api(self, command: str, timeout: float = 3.0) -> str:
        self.send(f"api {command}")
        frame = await self.reply(timeout)
        assert frame.content_type == "api/response"
        return frame.body.decode()

    async def until(self, test: Callable[[EslEvent], bool], timeout: float = 5.0) -> list[EslEvent]:
        """Events up to and including the first that passes `test` (those already kept count)."""
        seen = []
        while self.events:
            seen.append(self.events.pop(0))
            if test(seen[-1]):
                return seen
        while True:
            frame = await self.frame(timeout)
            if (event := frame.event()) is not None:
                seen.append(event)
                if test(event):
                    return seen

    async def rest(self, timeout: float = 3.0) -> bytes:
        """Everything up to the server closing the connection."""
        with contextlib.suppress(ConnectionResetError):
            self.unread += await asyncio.wait_for(self.reader.read(), timeout)
        return bytes(self.unread)


def named(name: str) -> Callable[[EslEvent], bool]:
    return lambda event: event.name == name


# --- the session ---------------------------------------------------------------------------------


def test_auth_request_then_commands_before_auth_are_refused_and_the_password_accepted() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
            assert await reader.readexactly(28) == b"Content-Type: auth/request\n\n"
            writer.write(b"api status\n\nauth ClueCon\r\n\r\n")
            expected = b"Content-Type: command/reply\nReply-Text: -ERR command not found\n\n"
            expected += b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
            assert await reader.readexactly(len(expected)) == expected
            writer.write(b"exit\n\n")
            assert await reader.read() == b"Content-Type: command/reply\nReply-Text: +OK bye\n\n" + GOODBYE
            writer.close()

    run(scenario())


def test_wrong_password_is_refused_with_the_goodbye_notice_and_a_silent_client_times_out() -> None:
    async def scenario() -> None:
        async with simulator(auth_timeout=0.3) as sim:
            client = await Client.connect(sim.port, password=None)
            assert (await client.command("auth wrong")).headers["Reply-Text"] == "-ERR invalid"
            assert await client.rest() == GOODBYE
            idle = await Client.connect(sim.port, password=None)
            started = time.monotonic()
            assert await idle.rest() == GOODBYE and time.monotonic() - started >= 0.3

    run(scenario())


def test_greenswitch_inbound_connects_runs_api_and_sees_background_jobs() -> None:
    sim = simulator()
    result: dict[str, Any] = {"events": []}

    def client(port: int) -> None:
        import gevent  # this thread gets its own hub; nothing is monkey-patched
        from greenswitch.esl import InboundESL

        with pytest.raises(ValueError, match="Invalid password"):
            InboundESL("127.0.0.1", port, "wrong").connect()
        esl = InboundESL("127.0.0.1", port, "ClueCon")
        esl.connect()
        esl.register_handle("BACKGROUND_JOB", lambda event: result["events"].append(event.headers))
        result["status"] = esl.send("api status").data
        result["subscribe"] = esl.send("event plain BACKGROUND_JOB").data
        result["job"] = esl.send("bgapi version").headers["Job-UUID"]
        with gevent.Timeout(5):
            while not result["events"]:
                gevent.sleep(0.05)
        esl.stop()

    with SimulatorThread(sim) as thread:
        worker = threading.Thread(target=client, args=(thread.port,))
        worker.start()
        worker.join(20)
    assert not worker.is_alive()
    assert result["status"].startswith("UP 0 years, 0 days, 0 hours, 0 minutes, ")
    assert "FreeSWITCH (Version 1.10.12-release  64bit) is ready\n" in result["status"]
    assert result["subscribe"] == "+OK event listener enabled plain"
    assert (
        result["events"][0]["Job-UUID"] == result["job"] and result["events"][0]["Job-Command"] == "version"
    )


def test_api_and_bgapi_answer_as_freeswitch_with_the_job_result_as_the_event_body() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            client = await Client.connect(sim.port)
            assert await client.api("version") == "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"
            assert re.fullmatch(r"\d\n", await client.api("uptime"))
            assert await client.api("frobnicate now") == "-ERR frobnicate Command not found!\n"
            assert await client.api("global_getvar hostname") == "vm"
            assert await client.api("global_getvar nothing_here") == "-ERR no reply\n"
            assert await client.api("uuid_kill 0000") == "-ERR No such channel!\n"
            assert (await client.command("event json BACKGROUND_JOB API")).headers["Reply-Text"] == (
                "+OK event listener enabled json"
            )
            reply = await client.command("bgapi uptime s", ("Job-UUID", "job-1"))
            assert reply.headers == {
                "Content-Type": "command/reply",
                "Reply-Text": "+OK Job-UUID: job-1",
                "Job-UUID": "job-1",
            }
            api, job = await client.until(named("BACKGROUND_JOB"))
            assert (api.get("API-Command"), api.get("API-Command-Argument")) == ("uptime", "s")
            assert (job.get("Job-UUID"), job.get("Job-Command"), job.get("Job-Command-Arg")) == (
                "job-1",
                "uptime",
                "s",
            )
            assert re.fullmatch(r"\d\n", job.body or "")
            assert (await client.command("nixevent API")).headers["Reply-Text"] == "+OK events nixed"
            assert (await client.command("noevents")).headers[
                "Reply-Text"
            ] == "+OK no longer listening for events"
            assert (await client.command("linger")).headers["Reply-Text"] == "-ERR not controlling a session"
            assert (await client.command("log info")).headers["Reply-Text"] == "+OK log level info [6]"

    run(scenario())


# --- replays ---------------------------------------------------------------------------------------


def captured_sequence(name: str) -> list[tuple[str, str | None]]:
    """(Event-Name, Unique-ID) of every event in the capture, read independently of the simulator."""
    path = FIXTURES / name
    if not name.endswith(".json.esl"):
        rows = [json.loads(line) for line in path.with_suffix(".jsonl").read_text().splitlines()]
        return [(r["event_name"], r["headers"].get("Unique-ID")) for r in rows if r.get("event_name")]
    bodies = re.findall(rb"Content-Type: text/event-json\n\n(\{.*?\})(?=Content-|$)", path.read_bytes(), re.S)
    return [(e["Event-Name"], e.get("Unique-ID")) for e in map(json.loads, bodies)]


@pytest.mark.parametrize("capture", CAPTURES)
def test_replay_emits_exactly_the_captures_events_in_both_formats(capture: str) -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            plain, as_json = await Client.connect(sim.port), await Client.connect(sim.port)
            await plain.command("event plain ALL")
            await as_json.command("event json ALL")
            started = time.time()
            count = await sim.play_capture(FIXTURES / capture, speed=0)
            plain_events = [await next_event(plain) for _ in range(count)]
            json_events = [await next_event(as_json) for _ in range(count)]
            assert [(e.name, dict(e.headers).get("Unique-ID")) for e in plain_events] == captured_sequence(
                capture
            )
            assert [e.headers for e in plain_events] == [e.headers for e in json_events]
            assert {e.get("Core-UUID") for e in plain_events} == {sim.switch.core_uuid}
            recorded = [e.event for e in Capture.load(FIXTURES / capture).events()]
            moved = {
                int(e.get("Event-Date-Timestamp")) - int(r.get("Event-Date-Timestamp"))
                for e, r in zip(plain_events, recorded, strict=True)
            }  # type: ignore[arg-type]
            assert len(moved) == 1 and moved.pop() % 1_000_000 == 0  # whole seconds, spacing kept
            assert abs(int(plain_events[0].get("Event-Date-Timestamp")) / 1e6 - started) < 2  # type: ignore[arg-type]

    run(scenario())


async def next_event(client: Client) -> EslEvent:
    return (await client.until(lambda _: True))[0]


def test_replay_keeps_the_recorded_pace_divided_by_speed() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            started = time.monotonic()
            await sim.play_capture(FIXTURES / "102_inbound_busy.json.esl", speed=2)
            assert 0.3 <= time.monotonic() - started < 1.0  # 0.73 s recorded

    run(scenario())


def test_show_channels_and_calls_list_the_live_channels_mid_replay_and_none_after() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            watcher, asker = await Client.connect(sim.port), await Client.connect(sim.port)
            await watcher.command("event plain CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_BRIDGE")
            replay = asyncio.create_task(sim.play_capture(FIXTURES / "100_inbound_answered.esl", speed=4))
            seen = await watcher.until(named("CHANNEL_BRIDGE"))
            live = {e.unique_id for e in seen if e.name == "CHANNEL_CREATE"}
            live -= {e.unique_id for e in seen if e.name == "CHANNEL_DESTROY"}
            channels = json.loads(await asker.api("show channels as json"))
            assert channels["row_count"] == len(live) == 4
            assert {row["uuid"] for row in channels["rows"]} == live
            assert {row["name"] for row in channels["rows"]} >= {"loopback/100-b", "loopback/201-a"}
            calls = json.loads(await asker.api("show calls as json"))
            bridged = next(r for r in calls["rows"] if r["b_uuid"])
            assert (bridged["name"], bridged["b_name"], bridged["cid_num"]) == (
                "loopback/100-b",
                "loopback/201-a",
                "+15551234567",
            )
            await replay
            assert await asker.api("show channels as json") == '{"row_count":0}'
            assert await asker.api("show calls as json") == '{"row_count":0}'

    run(scenario())


def test_subscriptions_get_only_their_events_and_custom_subclasses() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            client = await Client.connect(sim.port)
            reply = await client.command("event plain CHANNEL_HANGUP_COMPLETE CUSTOM callcenter::info")
            assert reply.headers["Reply-Text"] == "+OK event listener enabled plain"
            count = await sim.play_capture(FIXTURES / "104_queue_abandoned.esl", speed=0)
            assert count == 143
            wanted = [e.event for e in Capture.load(FIXTURES / "104_queue_abandoned.esl").events()]
            wanted = [
                e for e in wanted if e.name == "CHANNEL_HANGUP_COMPLETE" or e.subclass == "callcenter::info"
            ]
            got = [await next_event(client) for _ in wanted]
            assert [(e.name, e.get("CC-Action")) for e in got] == [
                (e.name, e.get("CC-Action")) for e in wanted
            ]
            assert await client.api("uptime") and not client.events  # nothing else arrived
            one = await Client.connect(sim.port)
            await one.command("event plain ALL")
            await one.command("filter Unique-ID none-such")
            await sim.play_capture(FIXTURES / "102_inbound_busy.esl", speed=0)
            assert await one.api("version") and not one.events

    run(scenario())


# --- generated calls and what clients can do to them ----------------------------------------------


def test_originate_answers_once_the_agent_does_and_bgapi_reports_through_background_job() -> None:
    async def scenario() -> None:
        async with simulator(call_speed=10) as sim:
            client = await Client.connect(sim.port)
            await client.command("event plain ALL")
            line = (
                "originate {origination_caller_id_number=+15557654321,origination_caller_id_name=Zoë}user/201"
            )
            result = await client.api(f"{line} &bridge(sofia/gateway/trunk/+15557654321)", timeout=5)
            agent_leg = re.fullmatch(r"\+OK ([0-9a-f-]{36})\n", result).group(1)  # type: ignore[union-attr]
            assert client.events == []  # the events of a blocking api follow its response
            created = await client.until(named("CHANNEL_ANSWER"))
            assert created[0].unique_id == agent_leg and created[0].get("Caller-Caller-ID-Name") == "Zoë"
            ended = await client.until(lambda e: e.name == "CHANNEL_DESTROY" and e.unique_id != agent_leg)
            bridge = next(e for e in ended if e.name == "CHANNEL_BRIDGE")
            assert bridge.get("Other-Leg-Caller-ID-Number") == "+15557654321"
            assert await client.api("originate user/299 &park()") == "-ERR USER_NOT_REGISTERED\n"
            assert await client.api("originate user/201") == (
                "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
                "[<cid_name>] [<cid_num>] [<timeout_sec>]\n"
            )
            job = (await client.command("bgapi originate user/202 +15550001111 XML default")).headers[
                "Job-UUID"
            ]
            done = await client.until(lambda e: e.name == "BACKGROUND_JOB" and e.get("Job-UUID") == job)
            leg = re.fullmatch(r"\+OK ([0-9a-f-]{36})\n", done[-1].body or "").group(1)  # type: ignore[union-attr]
            assert done[-1].get("Job-Command-Arg") == "user/202 +15550001111 XML default"
            assert any(e.name == "CHANNEL_ANSWER" and e.unique_id == leg for e in done)

    run(scenario())


def test_uuid_kill_record_setvar_transfer_and_hupall_act_on_a_live_call() -> None:
    async def scenario() -> None:
        sim = simulator(call_speed=1)
        async with sim:
            pbx = sim.synthetic
            client = await Client.connect(sim.port)
            await client.command("event plain ALL")
            calls = pbx.long_lived(2, time.time())
            sim.spawn(sim.play_timelines(calls, speed=50))
            await client.until(named("CALL_UPDATE"))
            await client.until(named("CALL_UPDATE"))
            await client.until(named("CALL_UPDATE"))
            first, second = (c.call_id for c in calls)
            assert await client.api(f"uuid_setvar {first} crm_ticket 42") == "+OK\n"
            assert await client.api(f"uuid_getvar {first} crm_ticket") == "42"
            assert await client.api(f"uuid_getvar {first} nothing") == "_undef_"
            assert await client.api(f"uuid_record {first} start /tmp/x.wav") == "+OK Success\n"
            assert await client.api(f"uuid_record {first} stop /tmp/x.wav") == "+OK Success\n"
            started, stopped = (
                e for e in await client.until(named("RECORD_STOP")) if e.name.startswith("RECORD_")
            )
            assert started.get("Record-File-Path") == stopped.get("Record-File-Path") == "/tmp/x.wav"
            assert started.unique_id == first and stopped.get("variable_crm_ticket") == "42"
            assert await client.api(f"uuid_kill {first} USER_BUSY") == "+OK\n"
            down = await client.until(lambda e: e.name == "CHANNEL_DESTROY" and e.unique_id != first)
            causes = {e.unique_id: e.get("Hangup-Cause") for e in down if e.name == "CHANNEL_HANGUP"}
            assert causes[first] == "USER_BUSY" and set(causes.values()) == {"USER_BUSY", "NORMAL_CLEARING"}
            rows = json.loads(await client.api("show channels as json"))["rows"]
            assert {row["call_uuid"] for row in rows} == {second}
            assert await client.api(f"uuid_transfer {second} 203") == "+OK\n"
            moved = await client.until(lambda e: e.name == "CHANNEL_BRIDGE" and e.unique_id == second)
            assert moved[-1].get("Other-Leg-Destination-Number") == "203"
            assert (
                await client.api("hupall NORMAL_CLEARING")
                == "+OK hangup all channels with cause NORMAL_CLEARING\n"
            )
            assert await client.api("show channels as json") == '{"row_count":0}'

    run(scenario())


def test_generated_traffic_flows_to_subscribers_and_the_history_keeps_its_outcomes() -> None:
    async def scenario() -> None:
        async with simulator(call_speed=20) as sim:
            client = await Client.connect(sim.port)
            await client.command("event json CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE CUSTOM callcenter::info")
            sim.start_traffic(calls_per_minute=600)
            events = [await next_event(client) for _ in range(60)]
            sim.stop_traffic()
            assert {e.name for e in events} <= {"CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE", "CUSTOM"}
            assert any((e.get("Channel-Name") or "").startswith("sofia/external/+1555") for e in events)
            assert sim.synthetic.history

    run(scenario())


def test_myevents_sendmsg_sendevent_xml_and_heartbeats() -> None:
    async def scenario() -> None:
        async with simulator(heartbeat=0.2, call_speed=1) as sim:
            watcher = await Client.connect(sim.port)
            await watcher.command("event xml HEARTBEAT RE_SCHEDULE CUSTOM my::thing")
            calls = sim.synthetic.long_lived(2, time.time())
            sim.spawn(sim.play_timelines(calls, speed=50))
            mine = await Client.connect(sim.port)
            await asyncio.sleep(0.3)
            first, second = (c.call_id for c in calls)
            assert (await mine.command(f"myevents {first} json")).headers[
                "Reply-Text"
            ] == "+OK Events Enabled"
            assert (await mine.command("linger")).headers["Reply-Text"] == "+OK will linger"
            assert (await mine.command("getvar direction")).headers["Reply-Text"] == "inbound"
            reply = await mine.command(
                f"sendmsg {second}", ("call-command", "hangup"), ("hangup-cause", "USER_BUSY")
            )
            assert reply.headers["Reply-Text"] == "+OK"
            assert (await mine.command("sendmsg nobody")).headers[
                "Reply-Text"
            ] == "-ERR invalid session id [nobody]"
            reply = await mine.command(
                "sendevent CUSTOM", ("Event-Subclass", "my::thing"), ("Colour", "blue")
            )
            assert reply.headers["Reply-Text"].startswith("+OK ")
            await mine.command(f"sendmsg {first}", ("call-command", "hangup"))
            down = await mine.until(named("CHANNEL_DESTROY"))
            assert {e.unique_id for e in down} == {first}  # nothing of the other call
            bodies = b""
            while b"<Colour>" not in bodies or b"HEARTBEAT" not in bodies:
                frame = await watcher.frame()
                assert frame.content_type == "text/event-xml"
                bodies += frame.body
            assert (
                b"<Event-Subclass>my%3A%3Athing</Event-Subclass>" in bodies
                and b"<Colour>blue</Colour>" in bodies
            )
            assert (
                b"<Event-Name>HEARTBEAT</Event-Name>" in bodies
                and b"<Event-Info>System%20Ready</Event-Info>" in bodies
            )

    run(scenario())


# --- faults ------------------------------------------------------------------------------------


def test_drop_silence_resume_and_inject() -> None:
    async def scenario() -> None:
        async with simulator() as sim:
            client = await Client.connect(sim.port)
            sim.go_silent()
            client.send("api version")
            with pytest.raises(TimeoutError):
                await client.frame(timeout=0.3)
            sim.resume()
            assert await client.api("version")
            sim.inject(b"Content-Length: 5\nContent-Type: text/event-plain\n\n%zz\n\n")
            frame = await client.frame()
            assert frame.body == b"%zz\n\n"
            sim.drop_connections()
            assert await client.rest() == b""  # no notice, no bye: the line is just gone

    run(scenario())


def test_restart_hangs_everything_up_closes_without_bye_refuses_then_comes_back() -> None:
    async def scenario() -> None:
        sim = simulator(restart_downtime=0.4)
        async with sim:
            client = await Client.connect(sim.port)
            await client.command("event plain ALL")
            calls = sim.synthetic.long_lived(2, time.time())
            sim.spawn(sim.play_timelines(calls, speed=50))
            for _ in range(3):
                await client.until(named("CALL_UPDATE"))
            old_core = sim.switch.core_uuid
            restart = asyncio.create_task(sim.restart())
            down = await client.until(named("SHUTDOWN"))
            hangups = [e for e in down if e.name == "CHANNEL_HANGUP"]
            assert len(hangups) == 4 and {e.get("Hangup-Cause") for e in hangups} == {"SYSTEM_SHUTDOWN"}
            assert [e.name for e in down].count("CHANNEL_DESTROY") == 4
            notice = await client.rest()
            shutting_down = b"Content-Type: text/disconnect-notice\nContent-Length: 31\n\n"
            assert notice == shutting_down + b"The system is being shut down.\n"  # and no +OK bye
            await asyncio.sleep(0.1)
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", sim.port)
            await restart
            again = await Client.connect(sim.port)
            assert await again.api("show channels as json") == '{"row_count":0}'
            assert await again.api("global_getvar core_uuid") != old_core
            assert (await again.api("status")).startswith("UP 0 years, 0 days, 0 hours, 0 minutes, 0 seconds")

    run(scenario())


def test_bulk_mode_blasts_the_prerendered_stream_once_subscribed() -> None:
    async def scenario() -> None:
        stream = render_bulk(1500, seed=2)
        async with simulator(bulk=stream.blob, bulk_chunk=4096) as sim:
            client = await Client.connect(sim.port)
            assert (await client.command("event plain ALL")).headers["Reply-Text"].startswith("+OK")
            events = [await next_event(client) for _ in range(stream.events)]
            assert b"".join(e.render("plain") for e in events) == stream.blob
            assert await client.rest() == GOODBYE

    run(scenario())


def test_cli_help_and_a_served_replay() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pbxlink.esl.simulator", "--help"], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0
    for option in (
        "--port",
        "--password",
        "--replay",
        "--speed",
        "--agents",
        "--calls-per-minute",
        "--bulk-events",
    ):
        assert option in result.stdout
    command = [sys.executable, "-m", "pbxlink.esl.simulator", "--port", "0", "--heartbeat", "0"]
    command += ["--replay", str(FIXTURES / "102_inbound_busy.esl"), "--speed", "0"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", server.stderr.readline()).group(1))  # type: ignore[union-attr]

        async def scenario() -> None:
            client = await Client.connect(port)
            await client.command("event plain ALL")
            events = [await next_event(client) for _ in range(76)]
            assert [e.name for e in events[:3]] == ["CODEC", "CODEC", "CHANNEL_OUTGOING"]
            assert (
                events[-1].name == "CHANNEL_STATE"
                and await client.api("show channels as json") == '{"row_count":0}'
            )

        run(scenario())
    finally:
        server.terminate()
        server.communicate(timeout=10)
