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
import time
import uuid
from collections.abc import Callable
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
from pbxlink.simulation.callbacks import Customers
from pbxlink.simulation.server import SimulatorServer
from pbxlink.simulation.thread import SimulatorThread
from pbxlink.simulation.timeline import CallTimeline

__all__ = ["EslSimulator", "SimulatorThread"]

log = logging.getLogger("pbxlink.esl.simulator")


class EslSimulator(Switchboard, SimulatorServer):
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
        self.customers = Customers()  # what each customer's phone does when a callback rings it
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

    def spawn_call(self, timeline: CallTimeline) -> None:
        self.spawn(self.player.run_call(timeline, self.call_speed))

    async def originate(self, argument: str) -> str:
        """`originate`: a click-to-call or a callback; the result once its first party answers (or not).

        `-ERR <cause>` at once when no channel can be made (an unknown agent or queue, a customer
        marked `fail` in `customers`).
        """
        request = parse_originate(argument)
        if request is None:
            return USAGE
        placed = self.synthetic.originate(
            request.endpoint,
            request.number,
            time.time(),
            request.shown,
            request.sent,
            context=request.context,
            variables=request.variables,
            timeout=request.timeout,
            customers=self.customers,
        )
        if isinstance(placed, str):
            return placed
        timeline, agent_leg = placed
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

    def _new_session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Session:
        return Session(self, reader, writer)
