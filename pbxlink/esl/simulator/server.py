"""A real TCP server that speaks inbound ESL like FreeSWITCH 1.10.12, for tests, benchmark and demo.

It plays scenarios on one server-wide timeline, like a switch: replays of real captures and
generated call traffic. Every authenticated client gets the events it subscribed to, in its
format, while it is connected; one that reconnects has missed what happened meanwhile and must ask
`show channels`. Faults (dropped sockets, a hung switch, garbage, a restart) can be injected.

    python -m pbxlink.esl.simulator --port 8021 --password ClueCon --agents 10 --calls-per-minute 6
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from pbxlink.esl.simulator.channels import ChannelTable
from pbxlink.esl.simulator.event import EslEvent
from pbxlink.esl.simulator.originate import USAGE, parse_originate
from pbxlink.esl.simulator.player import Player
from pbxlink.esl.simulator.session import Session
from pbxlink.esl.simulator.stamp import Switch, base_headers, restamp
from pbxlink.esl.simulator.switchboard import Switchboard
from pbxlink.esl.simulator.synthetic import SyntheticPbx
from pbxlink.simulation.thread import SimulatorThread
from pbxlink.simulation.timeline import CallTimeline, split_chunks

__all__ = ["EslSimulator", "SimulatorThread"]

log = logging.getLogger("pbxlink.esl.simulator")


class EslSimulator(Switchboard):
    """The server. Fault methods run on its loop; from another thread go through SimulatorThread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        password: str = "ClueCon",
        synthetic: SyntheticPbx | None = None,
        replay: str | Path | None = None,
        replay_speed: float = 1.0,
        bulk: bytes | None = None,
        bulk_close: bool = True,
        bulk_chunk: int = 65536,
        restart_downtime: float = 0.5,
        call_speed: float = 1.0,
        heartbeat: float = 20.0,
        auth_timeout: float = 25.0,
    ) -> None:
        self.host, self.port, self.password = host, port, password
        self.synthetic = synthetic or SyntheticPbx(agents=4)
        self.replay, self.replay_speed = replay, replay_speed
        self.bulk, self.bulk_close, self.bulk_chunk = bulk, bulk_close, bulk_chunk
        self.restart_downtime, self.call_speed = restart_downtime, call_speed
        self.heartbeat, self.auth_timeout = heartbeat, auth_timeout
        self.max_sessions = 200
        self.silent = False
        self.auto_replay: asyncio.Task[int] | None = None
        self.channels = ChannelTable()
        self.globals: dict[str, str] = {}
        self._sessions: set[Session] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._traffic: tuple[asyncio.Task[None], float] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._watch: dict[str, Callable[[EslEvent], None]] = {}
        self.recordings: dict[str, set[str]] = {}
        self.player = Player(self.emit)
        self._boot()

    def _boot(self) -> None:
        """A fresh switch: new Core-UUID, uptime and event count from zero."""
        self.switch = Switch(str(uuid.uuid4()))
        self.synthetic.switch = self.switch
        self.started = time.time()
        self.sequence = 0
        self.globals = {
            "hostname": self.switch.hostname,
            "local_ip_v4": self.switch.ipv4,
            "domain": self.switch.ipv4,
        }
        self.globals |= {"core_uuid": self.switch.core_uuid, "switch_serial": "1"}

    async def start(self) -> None:
        await self._listen()
        log.info("ESL simulator listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server:
            self._server.close()
        for session in list(self._sessions):
            session.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> EslSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def uptime(self) -> float:
        return time.time() - self.started

    # --- events -----------------------------------------------------------------------------

    def emit(self, event: EslEvent) -> None:
        """Stamp `event` as this switch's, apply it to the channel table, send it to who subscribed."""
        self.sequence += 1
        event = restamp(event, self.switch.core_uuid, self.sequence)
        self.channels.feed(event)
        if self._watch and (watcher := self._watch.get(event.unique_id or "")):
            watcher(event)
        frames: dict[str, bytes] = {}
        for session in list(self._sessions):
            sub = session.subscription
            if sub.wants(event):
                frame = frames.get(sub.fmt) or frames.setdefault(sub.fmt, event.render(sub.fmt))
                session.send(frame, event=True)

    def subscribed(self, session: Session) -> None:
        """A connection turned events on: start the replay or the bulk blast if configured."""
        if self.replay is not None and self.auto_replay is None:
            self.auto_replay = self.spawn(self.play_capture(self.replay, self.replay_speed))
        if self.bulk is not None:
            self.spawn(self._blast(session, self.bulk))

    # --- scenarios --------------------------------------------------------------------------

    async def play_capture(self, path: str | Path, speed: float = 1.0) -> int:
        """Replay a capture's events at their recorded pace / `speed` (0 or inf: flat out); returns the count.

        Each client gets them in its own format; times move to now by whole seconds, keeping the
        recorded spacing; Core-UUID and Event-Sequence become this switch's.
        """
        return await self.player.play_capture(path, speed)

    async def play_timelines(self, timelines: Iterable[CallTimeline], speed: float = 1.0) -> None:
        """Run generated calls, each starting at its `start` relative to the first, until all end."""
        timelines = list(timelines)
        if not timelines:
            return
        base = min(tl.start for tl in timelines)
        scale = 0.0 if speed in (0, math.inf) else 1.0 / speed
        tasks = [self.spawn(self.player.run_call(tl, speed, (tl.start - base) * scale)) for tl in timelines]
        await asyncio.gather(*tasks, return_exceptions=True)

    def start_traffic(self, calls_per_minute: float) -> None:
        """Generated calls arriving at `calls_per_minute` (Poisson) until stop_traffic."""
        self.stop_traffic()
        self._traffic = (self.spawn(self._traffic_loop(calls_per_minute)), calls_per_minute)
        log.info(
            "synthetic traffic: %s calls/min over %d agents", calls_per_minute, len(self.synthetic.agents)
        )

    def stop_traffic(self) -> None:
        if self._traffic:
            self._traffic[0].cancel()
            self._traffic = None

    def spawn_call(self, timeline: CallTimeline) -> None:
        self.spawn(self.player.run_call(timeline, self.call_speed))

    async def originate(self, argument: str) -> str:
        """`originate`: a click-to-call; the result once the agent's phone answers (or refuses)."""
        request = parse_originate(argument)
        if request is None:
            return USAGE
        if request.agent not in self.synthetic.agents:
            return "-ERR USER_NOT_REGISTERED\n"
        timeline, agent_leg = self.synthetic.originate(
            request.agent, request.number, time.time(), request.shown, request.sent
        )
        result: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def watch(event: EslEvent) -> None:
            if event.name == "CHANNEL_ANSWER":
                settle(f"+OK {agent_leg}\n")
            elif event.name == "CHANNEL_HANGUP":
                settle(f"-ERR {event.get('Hangup-Cause')}\n")

        def settle(text: str) -> None:
            self._watch.pop(agent_leg, None)
            if not result.done():
                result.set_result(text)

        self._watch[agent_leg] = watch
        task = self.spawn(self.player.run_call(timeline, self.call_speed))
        task.add_done_callback(lambda _: settle("-ERR ORIGINATOR_CANCEL\n"))
        return await result

    # --- faults -----------------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Close every client socket abruptly."""
        log.info("fault: dropping %d connections", len(self._sessions))
        for session in list(self._sessions):
            session.abort()

    def go_silent(self) -> None:
        """Send nothing at all (events, replies, heartbeats) while keeping sockets open: a hung switch."""
        log.info("fault: silent")
        self.silent = True

    def resume(self) -> None:
        log.info("fault: resumed")
        self.silent = False

    def inject(self, raw: bytes) -> None:
        """Write raw bytes (garbage, truncated frames, bad url-encoding, huge events) to every client."""
        log.info("fault: injecting %d bytes", len(raw))
        for session in list(self._sessions):
            session.write_raw(raw)

    async def restart(self) -> None:
        """A FreeSWITCH restart, as its clients live it.

        Every live channel hangs up with SYSTEM_SHUTDOWN (CHANNEL_HANGUP, CHANNEL_HANGUP_COMPLETE,
        CHANNEL_DESTROY), then SHUTDOWN; each connection gets mod_event_socket's `The system is being
        shut down.` notice (never `+OK bye`) and is closed; connections are refused for
        `restart_downtime` seconds; then a new switch (Core-UUID, uptime) listens on the same port.
        """
        log.info("fault: restart")
        self.player.interrupt()
        rate = self._traffic[1] if self._traffic else None
        self.stop_traffic()
        self.hangup(list(self.channels.channels), "SYSTEM_SHUTDOWN", "SYSTEM_SHUTDOWN")
        event = base_headers(self.switch, "SHUTDOWN", time.time())
        self.emit(EslEvent([*event, ("Event-Info", "System Shutting Down")]))
        if self._server:
            self._server.close()
        for session in list(self._sessions):
            session.shut_down()
        if self._heartbeat:
            self._heartbeat.cancel()
        self.channels.clear()
        self.recordings.clear()
        self.synthetic.reset()
        await asyncio.sleep(self.restart_downtime)
        self._boot()
        await self._listen()
        if rate:
            self.start_traffic(rate)

    # --- internals --------------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.heartbeat > 0:
            self._heartbeat = self.spawn(self.heartbeats(self.heartbeat))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self._sessions.add(session)
        log.info("%s:%d connected", *session.peer)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            log.info("%s:%d disconnected", *session.peer)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _traffic_loop(self, calls_per_minute: float) -> None:
        """Arrivals on the calls' own clock (sped up by `call_speed`), so agents free up in step."""
        at = time.time()
        while True:
            call = self.synthetic.next_call(at)
            log.debug("call %s: %s", call.call_id, call.expected)
            self.spawn(self.player.run_call(call, self.call_speed))
            gap = self.synthetic.rng.expovariate(calls_per_minute / 60.0)
            at += gap
            await asyncio.sleep(gap / self.call_speed)

    async def _blast(self, session: Session, blob: bytes) -> None:
        log.info("bulk: sending %d bytes to %s:%d", len(blob), *session.peer)
        await session.blast(split_chunks(blob, self.bulk_chunk))
        if self.bulk_close:
            session.close()
