"""A campaign's broadcast as the ESL tracker reads it: when the contact picked up, what mod_avmd heard.

The contact's leg is the first leg of pbxlink's originate (no agent; through a loopback, either
half). Once the originate sent it to a context ending in `-broadcast` its events say so
(`Caller-Context`, as switch_ivr_session_transfer sets it) and when it was answered
(`Caller-Channel-Answered-Time`):
that pick-up is the call's answer. A customer-first callback's customer answers the same way in
another context and the call stays unanswered until an agent takes it.

mod_avmd only listens for a voicemail beep: `CUSTOM avmd::beep` (Unique-ID, no channel data) or
`avmd_detect=TRUE` on the leg says machine; `avmd::stop` with Beep-Status NOTDETECTED (the
dialplan stopped it after the whole message) or `avmd_detect=FALSE` says human.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pbxlink.domain.call_state import BROADCAST_SUFFIX, CallState
from pbxlink.domain.calls import CallEvent
from pbxlink.domain.headers import Event, field

#: the mod_avmd events the tracker subscribes to
AVMD_EVENTS = ("avmd::beep", "avmd::stop")
#: mod_avmd's verdict: avmd_detect, or an avmd event's Beep-Status -> CallRecord.amd
_VERDICT = {"TRUE": "machine", "FALSE": "human", "DETECTED": "machine", "NOTDETECTED": "human"}


def on_avmd(state: CallState, event: Event) -> None:
    """An avmd::beep or avmd::stop of a leg of the call; a beep overrules an earlier stop, not the reverse."""
    verdict = _VERDICT.get(field(event, "Beep-Status").upper())
    beep = field(event, "Event-Subclass") == "avmd::beep"
    if verdict is not None and (beep or state.record.amd is None):
        state.record.amd = verdict  # type: ignore[assignment]


def on_leg(state: CallState, event: Event, first_party: bool) -> list[CallEvent]:
    """Any event of a leg of a call pbxlink placed: avmd_detect, and (`first_party`) the contact's pick-up."""
    verdict = _VERDICT.get(field(event, "variable_avmd_detect"))
    if verdict is not None and state.record.amd is None:
        state.record.amd = verdict  # type: ignore[assignment]
    if not first_party:
        return []
    events = state.mark_broadcast() if field(event, "Caller-Context").endswith(BROADCAST_SUFFIX) else []
    answered = field(event, "Caller-Channel-Answered-Time")
    if answered.isdigit() and int(answered) > 0:
        events += state.reached(datetime.fromtimestamp(int(answered) / 1e6, UTC))
    return events
