"""A real TCP server that speaks AMI like Asterisk 22, for the tests, the benchmark and `pbxlink demo`.

It plays scenarios on one server-wide timeline, like a PBX: replays of real captures and
generated call traffic. Every logged-in client with events on gets the events while it is
connected; one that reconnects has missed what happened meanwhile and must ask
CoreShowChannels. Faults (dropped sockets, a hung PBX, garbage, a restart) can be injected.

    python -m pbxlink.ami.simulator --port 5038 --secret S --agents 10 --calls-per-minute 6
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pbxlink.ami.simulator.channels import ChannelTable, hangup_events
from pbxlink.ami.simulator.player import Player
from pbxlink.ami.simulator.session import Session
from pbxlink.ami.simulator.synthetic import SyntheticPbx
from pbxlink.ami.simulator.wire import Headers, WireEvent, parse_classes
from pbxlink.simulation.callbacks import Customers
from pbxlink.simulation.server import SimulatorServer
from pbxlink.simulation.thread import SimulatorThread

__all__ = ["AmiSimulator", "SimulatorThread"]

log = logging.getLogger("pbxlink.ami.simulator")


class AmiSimulator(SimulatorServer):
    """The server. Fault methods run on its loop; from another thread go through SimulatorThread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "pbxlink",
        secret: str = "pbxlink",
        timestampevents: bool = False,
        read: str = "all",
        write: str = "all",
        synthetic: SyntheticPbx | None = None,
        replay: str | Path | None = None,
        replay_speed: float = 1.0,
        bulk: bytes | None = None,
        bulk_close: bool = True,
        bulk_chunk: int = 65536,
        auth_fail_delay: float = 1.0,
        restart_downtime: float = 0.5,
        call_speed: float = 1.0,
    ) -> None:
        self.host, self.port, self.username, self.secret = host, port, username, secret
        self.timestampevents = timestampevents
        self.read_perms, self.write_perms = parse_classes(read), parse_classes(write)
        self.synthetic = synthetic or SyntheticPbx(agents=4)
        self.queues = self.synthetic.queues
        self.replay, self.replay_speed = replay, replay_speed
        self.bulk, self.bulk_close, self.bulk_chunk = bulk, bulk_close, bulk_chunk
        self.auth_fail_delay, self.restart_downtime = auth_fail_delay, restart_downtime
        self.call_speed = call_speed  # pace of Originate and traffic calls (tests speed them up)
        self.channels = ChannelTable()
        self.customers = Customers()  # what each customer's phone does when a callback rings it
        self.variables: dict[tuple[str, str], str] = {}
        self.silent = False
        self.started = time.time()
        self.auto_replay: asyncio.Task[int] | None = None
        self._sessions: set[Session] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._traffic: tuple[asyncio.Task[None], float] | None = None
        self.player = Player(self.emit)

    async def start(self) -> None:
        await self._listen()
        log.info(
            "AMI simulator listening on %s:%d (timestampevents=%s)",
            self.host,
            self.port,
            self.timestampevents,
        )

    async def stop(self) -> None:
        if self._server:
            self._server.close()
        for session in list(self._sessions):
            session.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def uptime(self) -> int:
        return int(time.time() - self.started)

    # --- events -----------------------------------------------------------------------------

    def emit(self, event: WireEvent, timestamp: float | None = None) -> None:
        """Apply `event` to the PBX state and send it to every session that may and wants to read it."""
        self.channels.feed(event.fields)
        frame = event.render((timestamp or time.time()) if self.timestampevents else None)
        for session in list(self._sessions):
            if session.wants(event):
                session.send(frame)

    def broadcast(self, headers: Headers, timestamp: float | None = None) -> None:
        self.emit(WireEvent.from_headers(headers), timestamp)

    def logged_in(self, session: Session) -> None:
        """After a successful Login: SuccessfulAuth to all, then the replay or bulk blast if configured."""
        log.info("%s:%d logged in as %s", *session.peer, session.username)
        self.broadcast(session.successful_auth())
        if self.replay is not None and self.auto_replay is None:
            self.auto_replay = self.spawn(self.play_capture(self.replay, self.replay_speed))
        if self.bulk is not None:
            self.spawn(self._blast(session, self.bulk))

    # --- scenarios --------------------------------------------------------------------------

    async def play_capture(self, path: str | Path, speed: float = 1.0) -> int:
        """Replay a capture's events at their recorded pace / `speed` (0 or inf: flat out); returns the count.

        Bytes are kept as captured; Timestamp headers are shifted to now with the original
        spacing (added from the receive times if the capture has none, removed when
        timestampevents is off).
        """
        return await self.player.play_capture(path, speed)

    def originate(
        self,
        channel: str,
        exten: str,
        *,
        context: str,
        callerid: str,
        action_id: str,
        variables: Sequence[tuple[str, str]] = (),
        timeout: float = 30.0,
    ) -> asyncio.Future[None]:
        """Start a click-to-call or a callback; the future resolves when its OriginateResponse has gone out.

        One that fails before any channel exists (an unknown endpoint, a customer marked `fail`)
        only sends OriginateResponse Failure, after the action's own answer as Asterisk does.
        """
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_emit(event: WireEvent) -> None:
            if event.name == "OriginateResponse":
                settle()

        def settle(*_: object) -> None:
            if not answered.done():
                answered.set_result(None)

        timeline = self.synthetic.originate(
            channel,
            exten,
            time.time(),
            context=context,
            callerid=callerid,
            action_id=action_id,
            variables=variables,
            timeout=timeout,
            customers=self.customers,
        )
        if isinstance(timeline, list):  # no channel: only the OriginateResponse Failure
            task = self.spawn(_soon(lambda: self.broadcast(timeline)))
        else:
            task = self.spawn(self.player.run_call(timeline, self.call_speed, 0.0, on_emit))
        task.add_done_callback(settle)  # never leave a non-Async Originate waiting
        return answered

    def hangup(self, channel: str, cause: int) -> bool:
        """AMI Hangup: the channel and those linked to it go; the rest of its generated call is dropped."""
        target = self.channels.find(channel)
        if target is None:
            return False
        self.player.drop_call(target.linkedid)
        for headers in hangup_events(self.channels.linked(target.linkedid), target, cause):
            self.broadcast(headers)
        return True

    def set_variable(self, channel: str, variable: str, value: str) -> None:
        self.variables[(channel, variable)] = value
        if live := self.channels.find(channel):
            extra = [("Variable", variable), ("Value", value)]
            self.broadcast(
                [("Event", "VarSet"), ("Privilege", "dialplan,all"), *live.snapshot_headers(), *extra]
            )

    # --- faults -----------------------------------------------------------------------------

    async def restart(self) -> None:
        """A PBX restart, as its clients live it.

        Shutdown event, sockets closed, channels forgotten without Hangup events, uptime reset,
        connections refused for `restart_downtime` seconds, then listening on the same port again.
        """
        log.info("fault: restart")
        self.player.interrupt()
        self.broadcast(
            [("Event", "Shutdown"), ("Privilege", "system,all"), ("Shutdown", "Cleanly"), ("Restart", "True")]
        )
        if self._server:
            self._server.close()
        for session in list(self._sessions):
            session.close()
        rate = self._traffic[1] if self._traffic else None
        self.stop_traffic()
        self.channels.clear()
        self.variables.clear()
        self.synthetic.reset()
        await asyncio.sleep(self.restart_downtime)
        self.started = time.time()
        await self._listen()
        if rate:
            self.start_traffic(rate)

    # --- internals --------------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def _new_session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Session:
        return Session(self, reader, writer)


async def _soon(action: Callable[[], None]) -> None:
    await asyncio.sleep(0)
    action()
