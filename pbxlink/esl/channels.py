"""What a FreeSWITCH channel's name and variables tell: its agent, and whether it is a loopback half.

On real systems agents are sofia (SIP) channels named after the registered user
(`sofia/internal/201@pbx.example.com`, FusionPBX `sofia/internal/201@tenant`); customers
arrive with their number (`sofia/external/+15551234567@…`), which is longer than an
extension. `mod_loopback` makes two channels per call leg, `-a` and `-b`, like
Asterisk's Local ;1/;2.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pbxlink.domain.agent_map import AgentMap
from pbxlink.domain.call_state import LocalHalf

DEFAULT_AGENT_PATTERNS: tuple[str, ...] = (
    # A registered phone: the user part is a 2-6 digit extension (a customer's number is longer or has +)
    r"^sofia/[^/]+/(?P<ext>\d{2,6})@",
    # Verto (WebRTC) and other user endpoints
    r"^(?:verto\.rtc|user)/(?P<ext>\d{2,6})@",
)

#: a leg's Hangup-Cause as the Asterisk-style DialStatus the call state understands
DIAL_STATUS = {
    "NO_ANSWER": "NOANSWER",
    "NO_USER_RESPONSE": "NOANSWER",
    "ALLOTTED_TIMEOUT": "NOANSWER",
    "USER_BUSY": "BUSY",
    "CALL_REJECTED": "BUSY",
    "ORIGINATOR_CANCEL": "CANCEL",
    "LOSE_RACE": "CANCEL",
    "PICKED_OFF": "CANCEL",
    "UNALLOCATED_NUMBER": "CHANUNAVAIL",
    "USER_NOT_REGISTERED": "CHANUNAVAIL",
    "SUBSCRIBER_ABSENT": "CHANUNAVAIL",
    "NORMAL_TEMPORARY_FAILURE": "CONGESTION",
    "DESTINATION_OUT_OF_ORDER": "CONGESTION",
}

_LOOPBACK = re.compile(r"^loopback/.+-(?P<side>[ab])$")
_CC_AGENT = re.compile(r"^(?P<ext>[^@]+)@")


def agent_map(patterns: Sequence[str] | None, devices: Mapping[str, str] | None = None) -> AgentMap:
    """The agent map of one FreeSWITCH: its configured patterns, or the defaults."""
    return AgentMap(DEFAULT_AGENT_PATTERNS if patterns is None else patterns, devices)


def loopback_half(name: str, uuid: str, twin: str) -> LocalHalf | None:
    """`-a` faces whoever created the loopback pair, `-b` runs the pair's dialplan (half 1 and 2).

    Loopback names repeat across calls, so the pair is named by its two uuids.
    """
    m = _LOOPBACK.match(name)
    if m is None or not twin:
        return None
    return LocalHalf(pair=":".join(sorted((uuid, twin))), half=1 if m["side"] == "a" else 2)


def cc_agent_extension(name: str) -> str | None:
    """A mod_callcenter agent name (`201@default`) as an extension."""
    m = _CC_AGENT.match(name)
    return m["ext"] if m else (name or None)


def queue_name(cc_queue: str) -> str | None:
    """A mod_callcenter queue (`support@default`) as the record names queues: without its domain."""
    return cc_queue.split("@", 1)[0] or None
