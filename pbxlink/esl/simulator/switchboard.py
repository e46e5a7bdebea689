"""The switch acting on its live channels from outside: hangups, transfers, recordings, heartbeats.

What `uuid_kill`, `hupall`, `sendmsg hangup`, `uuid_transfer` and `uuid_record` do to a channel,
whether a generated call or a replayed one is on it: the events are built from what the channel
table last saw, and a generated call's remaining script is dropped so it cannot contradict them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence

from pbxlink.esl.simulator import originated
from pbxlink.esl.simulator.api import VERSION, up_time
from pbxlink.esl.simulator.channels import ChannelTable, LiveChannel
from pbxlink.esl.simulator.event import EslEvent, Value
from pbxlink.esl.simulator.kill import hangup_events
from pbxlink.esl.simulator.legs import CallBuilder
from pbxlink.esl.simulator.player import Player
from pbxlink.esl.simulator.stamp import Switch, base_headers
from pbxlink.esl.simulator.synthetic import SyntheticPbx
from pbxlink.simulation.timeline import CallTimeline


class Switchboard:
    """Mixed into EslSimulator, which provides these attributes."""

    switch: Switch
    channels: ChannelTable
    player: Player
    synthetic: SyntheticPbx
    started: float
    max_sessions: int
    call_speed: float
    recordings: dict[str, set[str]]

    def emit(self, event: EslEvent) -> None:
        raise NotImplementedError

    def spawn_call(self, timeline: CallTimeline) -> None:
        raise NotImplementedError

    def hangup(
        self, uuids: Iterable[str], cause: str, others: str = "NORMAL_CLEARING", spread: bool = True
    ) -> None:
        """Hang up `uuids` with `cause`; with `spread`, the legs bridged to them and the rest of their
        generated call go too (hangup_after_bridge), with `others`."""
        causes: dict[str, str] = {}
        for target in uuids:
            if self.channels.find(target):
                causes[target] = cause
        if spread:
            for target in list(causes):
                for other in [*self.channels.partners(target), *self.player.legs_of(target)]:
                    if self.channels.find(other):
                        causes.setdefault(other, others)
        for target in causes:
            self.player.drop_call(target)
            self.recordings.pop(target, None)
        down = [(channel, causes[u]) for u in causes if (channel := self.channels.find(u))]
        bridges = [(a, b) for a, (b, _) in self.channels.calls.items() if a in causes or b in causes]
        for event in hangup_events(self.switch, down, bridges, time.time()):
            self.emit(event)

    def transfer(self, target: str, dest: str, leg: str) -> bool:
        """uuid_transfer: the leg leaves its bridge (its partner hangs up) and runs extension `dest`;
        an agent's extension is rung and, once answered, bridged."""
        partners = self.channels.partners(target)
        moved = partners[0] if leg == "-bleg" and partners else target
        channel = self.channels.find(moved)
        if channel is None:
            return False
        self.player.drop_call(moved)
        self.hangup([p for p in self.channels.partners(moved)], "NORMAL_CLEARING", spread=False)
        b = CallBuilder(self.switch, self.synthetic.ids, time.time())
        answer = self.synthetic.answer()
        expected = originated.transferred(
            b, self.synthetic.site, channel, dest, answer, self.synthetic.agents
        )
        self.spawn_call(CallTimeline(b.start, b.events, expected, frozenset(leg.uuid for leg in b.legs)))
        return True

    def record(self, target: str, action: str, path: str) -> bool:
        """uuid_record start|stop: RECORD_START / RECORD_STOP (Record-File-Path) on the channel."""
        channel = self.channels.find(target)
        if channel is None:
            return False
        active = self.recordings.setdefault(target, set())
        if action == "start":
            active.add(path)
            channel.variables["variable_recording_file"] = path
            self.emit(self._channel_event("RECORD_START", channel, [("Record-File-Path", path)]))
            return True
        stopping = set(active) if path == "all" else {path} & active
        for file in sorted(stopping):
            active.discard(file)
            after = [("Record-File-Path", file), ("Record-Completion-Cause", "success")]
            self.emit(self._channel_event("RECORD_STOP", channel, after))
        return bool(stopping)

    async def heartbeats(self, interval: float) -> None:
        """HEARTBEAT (and its RE_SCHEDULE) every `interval` seconds, as switch_core does every 20."""
        while True:
            await asyncio.sleep(interval)
            now = time.time()
            self.emit(self.heartbeat_event(now))
            task = [("Task-ID", "1"), ("Task-Desc", "heartbeat"), ("Task-Group", "core")]
            runtime = ("Task-Runtime", str(int(now + interval)))
            self.emit(EslEvent([*base_headers(self.switch, "RE_SCHEDULE", now), *task, runtime]))

    def heartbeat_event(self, at: float) -> EslEvent:
        """HEARTBEAT as switch_core's send_heartbeat fills it."""
        live, uptime = len(self.channels.channels), at - self.started
        return EslEvent(
            [
                *base_headers(self.switch, "HEARTBEAT", at),
                *[
                    ("Event-Info", "System Ready"),
                    ("Up-Time", up_time(uptime)),
                    ("FreeSWITCH-Version", VERSION),
                ],
                *[("Uptime-msec", str(int(uptime * 1000))), ("Session-Count", str(live))],
                *[("Max-Sessions", str(self.max_sessions)), ("Session-Per-Sec", "30")],
                *[
                    ("Session-Per-Sec-Last", "0"),
                    ("Session-Per-Sec-Max", "0"),
                    ("Session-Per-Sec-FiveMin", "0"),
                ],
                *[
                    ("Session-Since-Startup", str(self.channels.created)),
                    ("Session-Peak-Max", str(self.channels.peak)),
                ],
                *[("Session-Peak-FiveMin", str(self.channels.peak)), ("Idle-CPU", "99.000000")],
            ]
        )

    def _channel_event(self, name: str, channel: LiveChannel, after: Sequence[tuple[str, Value]]) -> EslEvent:
        return EslEvent(
            [*base_headers(self.switch, name, time.time()), *channel.data, *channel.variables.items(), *after]
        )
