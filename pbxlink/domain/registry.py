"""The open calls of one PBX while a tracker follows them, and what both trackers do alike.

Ending a call exactly once (and ignoring stragglers after), closing the calls that ended
while the link was down, and taking back the database's open calls after our own restart
are the same for Asterisk and FreeSWITCH; each tracker adds how its PBX names things.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime

from pbxlink.domain.call_state import CallState
from pbxlink.domain.calls import CallEvent, CallRecord

_RECENT_ENDED = 10_000  # ids of ended calls kept to ignore their stragglers


class CallRegistry:
    def __init__(self) -> None:
        self._calls: dict[str, CallState] = {}
        self._chan_call: dict[str, str] = {}  # channel id -> call id
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._lost_at: datetime | None = None

    @property
    def open_calls(self) -> list[CallRecord]:
        return [state.record.copy() for state in self._calls.values()]

    def _finish(
        self, state: CallState, at: datetime, *, seen: bool = True, hangup_by: str | None = None
    ) -> list[CallEvent]:
        """End a call once: it leaves the registry, and later events about it are ignored."""
        call_id = state.record.call_id
        self._calls.pop(call_id, None)
        for uid in state.channels:
            self._chan_call.pop(uid, None)
        self._ended[call_id] = None
        while len(self._ended) > _RECENT_ENDED:
            self._ended.popitem(last=False)
        return state.end(at, seen=seen, hangup_by=hangup_by)

    def _end_all(self, at: datetime, *, seen: bool, hangup_by: str | None) -> list[CallEvent]:
        events: list[CallEvent] = []
        for state in list(self._calls.values()):
            events += self._finish(state, at, seen=seen, hangup_by=hangup_by)
        return events

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

    def _close_unseen(
        self, alive: set[str], at: datetime, pbx_started_at: datetime | None
    ) -> list[CallEvent]:
        """Close, once, every open call not in `alive`: it ended while we could not see it.

        Its end is when the link was lost (last known alive); a call that started before the
        PBX's own start was cut by a PBX restart, so the system ended it.
        """
        events: list[CallEvent] = []
        for state in list(self._calls.values()):
            if state.record.call_id in alive:
                continue
            restarted = pbx_started_at is not None and state.record.started_at < pbx_started_at
            ended = self._lost_at or (pbx_started_at if restarted else None) or at
            events += self._finish(
                state,
                max(ended, state.record.started_at),
                seen=False,
                hangup_by="system" if restarted else None,
            )
        self._lost_at = None
        return events
