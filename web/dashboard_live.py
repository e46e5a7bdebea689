"""What the dashboard knows live: the calls in progress and who rings or talks, fed by the bus.

One `LiveCalls` per app subscribes to the bus once; the dashboard's streams wait on it and
rebuild their snapshot when it moves. It starts from the call log's open rows of the last day
(a ring in progress then is not known until its next event). Pure bookkeeping, no I/O.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pbxlink.domain.calls import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallRecord,
    CallRingEnded,
    CallRinging,
    iso,
)


@dataclass(frozen=True)
class AgentState:
    state: str  # talking | ringing | idle
    since: str | None = None  # ISO time the state began, when known
    call: dict[str, Any] | None = None  # the caller and queue of the call it is about


class LiveCalls:
    """The open calls by (pbx, call_id), the agents ringing for each, and a version that moves on change."""

    def __init__(self, open_calls: Iterable[CallRecord] = ()) -> None:
        self._calls: dict[tuple[str, str], CallRecord] = {(c.pbx, c.call_id): c for c in open_calls}
        self._ringing: dict[tuple[str, str], dict[str, datetime]] = {}
        self._changed = threading.Condition()
        self.version = 0

    def on_event(self, ev: CallEvent) -> None:
        """The bus handler: keep the call's latest snapshot (and its rings) until it ends."""
        key = (ev.call.pbx, ev.call.call_id)
        with self._changed:
            if isinstance(ev, CallEnded):
                self._calls.pop(key, None)
                self._ringing.pop(key, None)
            else:
                self._calls[key] = ev.call
                rings = self._ringing.setdefault(key, {})
                if isinstance(ev, CallRinging):
                    rings[ev.agent] = ev.at
                elif isinstance(ev, (CallRingEnded, CallAnswered)) and ev.agent:
                    rings.pop(ev.agent, None)
            self.version += 1
            self._changed.notify_all()

    def wait(self, version: int, timeout: float) -> int:
        """The version once it differs from `version`, or after `timeout` seconds, whichever first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.version == version and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            return self.version

    def in_progress(self) -> list[dict[str, Any]]:
        """The open calls, oldest first, as the dashboard lists them."""
        with self._changed:
            calls = sorted(self._calls.values(), key=lambda c: c.started_at)
            rings = {k: sorted(v) for k, v in self._ringing.items()}
        return [
            {
                "pbx": c.pbx,
                "call_id": c.call_id,
                "direction": c.direction,
                "caller": c.caller,
                "caller_name": c.caller_name,
                "callee": c.callee,
                "queue": c.queue,
                "state": "talking"
                if c.answered_at
                else "ringing"
                if rings.get((c.pbx, c.call_id))
                else "waiting",
                "agents": talking_agents(c) if c.answered_at else rings.get((c.pbx, c.call_id), []),
                "started_at": iso(c.started_at),
                "answered_at": iso(c.answered_at),
            }
            for c in calls
        ]

    def agent_states(self) -> dict[str, AgentState]:
        """Extension -> talking or ringing (talking wins); an extension not listed is idle."""
        states: dict[str, AgentState] = {}
        with self._changed:
            for key, call in self._calls.items():
                about = {"caller": call.caller, "caller_name": call.caller_name, "queue": call.queue}
                for ext, since in self._ringing.get(key, {}).items():
                    if ext not in states:
                        states[ext] = AgentState("ringing", iso(since), about)
                if call.answered_at:
                    for ext in talking_agents(call):
                        states[ext] = AgentState("talking", iso(call.answered_at), about)
        return states


def talking_agents(call: CallRecord) -> list[str]:
    """Who talks now: the last agent who took the call (the transferee after a transfer); both sides of an
    internal call."""
    now = call.agents[-1:] or ([call.agent] if call.agent else [])
    if call.direction == "internal" and call.caller and call.caller not in now:
        now = [call.caller, *now]
    return now
