"""mod_callcenter's `CUSTOM callcenter::info` events, as they bear on the caller's call."""

from __future__ import annotations

from datetime import datetime

from pbxlink.domain.call_state import CallState
from pbxlink.domain.calls import CallEvent
from pbxlink.domain.headers import Event, field
from pbxlink.esl.channels import DIAL_STATUS, cc_agent_extension, queue_name

#: member-queue-end `CC-Cancel-Reason` when the queue, not the caller, gave up
_QUEUE_GAVE_UP = {"TIMEOUT", "NO_AGENT_TIMEOUT"}


def on_callcenter(state: CallState, event: Event, at: datetime) -> list[CallEvent]:
    """Queue entry, agents offered, agents failing, and why the caller left the queue."""
    action = field(event, "CC-Action")
    agent = cc_agent_extension(field(event, "CC-Agent"))
    if action == "member-queue-start":
        state.record.queue = state.record.queue or queue_name(field(event, "CC-Queue"))
        state.offer(at)
    elif action == "agent-offering" and agent:
        return state.ring(f"agent:{agent}", agent, at)
    elif action == "bridge-agent-fail" and agent:
        cause = field(event, "CC-Hangup-Cause")
        return state.ring_ended(f"agent:{agent}", DIAL_STATUS.get(cause, "CANCEL"), at)
    elif (
        action == "member-queue-end" and field(event, "CC-Cause") == "Cancel" and state.queue_outcome is None
    ):
        gave_up = field(event, "CC-Cancel-Reason") in _QUEUE_GAVE_UP
        state.queue_outcome = "queue_timeout" if gave_up else "abandoned"  # BREAK_OUT: the caller hung up
    return []
