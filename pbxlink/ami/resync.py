"""Reconnects and restarts: how the tracker catches up with a PBX it could not see for a while.

After every (re)connect the client lists the live channels (CoreShowChannels); a call open
here without a channel any more ended unseen and is closed once; a call the PBX has that we
do not know is adopted; after our own restart the database's open calls are taken back first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pbxlink.domain.call_state import CallState, Chan
from pbxlink.domain.calls import CallEvent, CallStarted
from pbxlink.domain.headers import Event, field
from pbxlink.domain.registry import CallRegistry


class Resync(CallRegistry):
    """The tracker's catching-up half; AmiTracker supplies how channels join calls."""

    def _new_call(self, linkedid: str, event: Event, at: datetime) -> CallState: ...
    def _add_channel(self, state: CallState, uid: str, name: str, event: Event) -> Chan: ...

    def resync(
        self, channels: Sequence[Event], at: datetime, pbx_started_at: datetime | None
    ) -> list[CallEvent]:
        """After every (re)connect: adopt what is up, close what ended unseen, mark restart victims.

        `channels` are the CoreShowChannel items, grouped into calls by Linkedid.
        """
        groups: dict[str, list[Event]] = {}
        for item in channels:
            linkedid = field(item, "Linkedid") or field(item, "Uniqueid")
            if linkedid:
                groups.setdefault(linkedid, []).append(item)
        events = self._close_unseen(set(groups), at, pbx_started_at)
        for linkedid, items in groups.items():
            events += self._adopt(linkedid, items, at)
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
