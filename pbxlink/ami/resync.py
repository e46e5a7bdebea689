"""Reconnects and restarts: how the tracker catches up with a PBX it could not see for a while.

After every (re)connect the client lists the live channels (CoreShowChannels); a call open
here without a channel any more ended unseen and is closed once; a call the PBX has that we
do not know is adopted; after our own restart the database's open calls are taken back first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pbxlink.ami.headers import Event, field
from pbxlink.domain.call_state import CallState, Chan
from pbxlink.domain.calls import CallEvent, CallRecord, CallStarted


class Resync:
    """The tracker's catching-up half; AmiTracker supplies the call registry it works on."""

    _calls: dict[str, CallState]
    _chan_call: dict[str, str]
    _ended: OrderedDict[str, None]
    _lost_at: datetime | None

    def _new_call(self, linkedid: str, event: Event, at: datetime) -> CallState: ...
    def _add_channel(self, state: CallState, uid: str, name: str, event: Event) -> Chan: ...
    def _finish(self, state: CallState, at: datetime, **how: object) -> list[CallEvent]: ...

    def link_lost(self, at: datetime) -> None:
        """The connection dropped: calls stay open until the next resync says what became of them."""
        if self._lost_at is None:
            self._lost_at = at

    def restore(self, records: Iterable[CallRecord]) -> None:
        """After our own restart: take back the calls the database still has open."""
        for rec in records:
            if rec.ended_at is not None or rec.call_id in self._calls:
                continue
            state = CallState(record=rec.copy(), origin=rec.call_id)
            if rec.answered_at is not None:
                state.talking = list(rec.agents[-1:])
                state.talk_since = rec.answered_at
            self._calls[rec.call_id] = state

    def resync(
        self, channels: Sequence[Event], at: datetime, pbx_started_at: datetime | None
    ) -> list[CallEvent]:
        """After every (re)connect: adopt what is up, close what ended unseen, mark restart victims.

        `channels` are the CoreShowChannel items. A call that is open here but has no
        channel any more ended while we could not see it: it is closed once, with
        `end_seen` false; when the PBX started after the call did, the restart cut it.
        """
        groups: dict[str, list[Event]] = {}
        for item in channels:
            linkedid = field(item, "Linkedid") or field(item, "Uniqueid")
            if linkedid:
                groups.setdefault(linkedid, []).append(item)
        events: list[CallEvent] = []
        for state in list(self._calls.values()):
            if state.record.call_id not in groups:
                restarted = pbx_started_at is not None and state.record.started_at < pbx_started_at
                ended = self._lost_at or (pbx_started_at if restarted else None) or at
                events += self._finish(
                    state,
                    max(ended, state.record.started_at),
                    seen=False,
                    hangup_by="system" if restarted else None,
                )
        for linkedid, items in groups.items():
            events += self._adopt(linkedid, items, at)
        self._lost_at = None
        return events

    def _adopt(self, linkedid: str, items: list[Event], at: datetime) -> list[CallEvent]:
        events: list[CallEvent] = []
        state = self._calls.get(linkedid)
        ages = {field(i, "Uniqueid"): _duration(field(i, "Duration")) for i in items}
        if state is None:
            if linkedid in self._ended:
                return []
            first = next((i for i in items if field(i, "Uniqueid") == linkedid), items[0])
            state = self._new_call(linkedid, first, at - max(ages.values(), default=timedelta(0)))
            events.append(CallStarted(at=at, call=state.record.copy()))
        live = set(ages)
        for uid in [u for u in state.channels if u not in live]:
            gone = state.channels.pop(uid)
            self._chan_call.pop(uid, None)
            if gone.agent is not None:
                state.leave(gone.agent, at)
        for item in items:
            uid = field(item, "Uniqueid")
            chan = state.channels.get(uid) or self._add_channel(state, uid, field(item, "Channel"), item)
            if field(item, "Application") == "Queue" and state.record.queue is None:
                state.record.queue = field(item, "ApplicationData").split(",")[0] or None
            if chan.agent is None or uid in state.caller_uids:
                continue
            up, bridged = field(item, "ChannelStateDesc") == "Up", bool(field(item, "BridgeId"))
            if up and bridged and chan.agent not in state.talking:
                events += state.answer(chan.agent, at - ages.get(uid, timedelta(0)))
            elif field(item, "ChannelStateDesc") == "Ringing":
                events += state.ring(uid, chan.agent, at)
        return events


def _duration(text: str) -> timedelta:
    try:
        h, m, s = (int(x) for x in text.split(":"))
    except ValueError:
        return timedelta(0)
    return timedelta(hours=h, minutes=m, seconds=s)
