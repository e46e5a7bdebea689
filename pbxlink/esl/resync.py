"""Reconnects and restarts: how the ESL tracker catches up with a FreeSWITCH it could not see.

After every (re)connect the client lists the live channels (`show channels as json`); a call
open here without a leg any more ended unseen and is closed once; a leg of no known call is
adopted, grouped by its call UUID; after our own restart the database's open calls come first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pbxlink.domain.call_state import CallState, Chan
from pbxlink.domain.calls import CallEvent, CallStarted
from pbxlink.domain.headers import Event, field
from pbxlink.domain.registry import CallRegistry


class Resync(CallRegistry):
    """The tracker's catching-up half; EslTracker supplies how legs join calls."""

    def _new_call(self, uuid: str, event: Event, at: datetime) -> CallState:
        raise NotImplementedError

    def _join(self, state: CallState, uuid: str, event: Event, at: datetime) -> tuple[Chan, list[CallEvent]]:
        raise NotImplementedError

    def resync(
        self, channels: Sequence[Event], at: datetime, pbx_started_at: datetime | None
    ) -> list[CallEvent]:
        """After every (re)connect, from the rows of `show channels as json`.

        A call whose legs are all gone ended unseen (closed once); a leg of a known call is
        kept; a leg of no known call starts an adopted call, grouped by its call UUID.
        """
        rows = {field(r, "uuid"): r for r in channels if field(r, "uuid")}
        alive = {self._call_of(u) for r in rows.values() for u in (field(r, "uuid"), field(r, "call_uuid"))}
        events = self._close_unseen(alive, at, pbx_started_at)
        for state in self._calls.values():
            for uuid in [u for u in state.channels if u not in rows]:
                gone = state.channels.pop(uuid)
                self._chan_call.pop(uuid, None)
                if gone.agent is not None:
                    state.leave(gone.agent, at)
        groups: dict[str, list[Event]] = {}
        for uuid, row in rows.items():
            if uuid not in self._chan_call:
                groups.setdefault(field(row, "call_uuid") or uuid, []).append(row)
        for call_uuid, group in groups.items():
            events += self._adopt(call_uuid, group, at)
        return events

    def _call_of(self, uuid: str) -> str:
        """The open call a leg (or, for a call restored from the database, its own id) belongs to."""
        return self._chan_call.get(uuid) or (uuid if uuid in self._calls else "")

    def _adopt(self, call_uuid: str, rows: list[Event], at: datetime) -> list[CallEvent]:
        if call_uuid in self._ended:
            return []
        known = self._calls.get(self._call_of(call_uuid))
        first = next((r for r in rows if field(r, "uuid") == call_uuid), rows[0])
        events: list[CallEvent] = []
        if known is None:
            started = min(float(field(r, "created_epoch") or at.timestamp()) for r in rows)
            since = min(at, datetime.fromtimestamp(started, UTC))
            known = self._new_call(field(first, "uuid"), _as_event(first), since)
            events.append(CallStarted(at=at, call=known.record.copy()))
        for row in rows:
            uuid = field(row, "uuid")
            chan = known.channels.get(uuid) or self._join(known, uuid, _as_event(row), at)[0]
            if chan.agent and uuid not in known.caller_uids and field(row, "callstate") in ("ACTIVE", "HELD"):
                events += known.answer(chan.agent, at)
        return events


def _as_event(row: Event) -> dict[str, str]:
    """A `show channels` row in the names of a channel event, enough to place the leg."""
    return {
        "Channel-Name": field(row, "name"),
        "Caller-Caller-ID-Number": field(row, "cid_num"),
        "Caller-Caller-ID-Name": field(row, "cid_name"),
        "Caller-Destination-Number": field(row, "dest"),
        "Channel-Call-UUID": field(row, "call_uuid"),
    }
