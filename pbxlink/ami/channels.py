"""What an Asterisk channel name tells: which agent it belongs to, and whether it is half of a Local pair.

Sites differ (PJSIP/SIP/IAX2 phones, FreePBX `Local/201@from-queue` queue members,
DAHDI analog phones), so the mapping is a list of regexes with a named group `ext`,
configurable per PBX, plus an explicit device table (`DAHDI/1` -> 201) for channel names
that carry no extension; the defaults work on a stock FreePBX or plain Asterisk.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pbxlink.domain.agent_map import AgentMap
from pbxlink.domain.call_state import LocalHalf

DEFAULT_AGENT_PATTERNS: tuple[str, ...] = (
    # A phone registered as a numeric endpoint: PJSIP/201-00000001, SIP/201-0000000a, IAX2/201-1234
    r"^(?:PJSIP|SIP|IAX2)/(?P<ext>\d{2,8})-[0-9A-Za-z]+$",
    # Local channels that ring an extension: FreePBX queue members and ring groups, plain `agents` contexts
    r"^Local/(?P<ext>\d{2,8})@(?:from-queue|from-internal|from-internal-xfer|ext-local|agents|internal)"
    r"-[0-9a-f]+;[12]$",
)


def agent_map(patterns: Sequence[str] | None, devices: Mapping[str, str] | None = None) -> AgentMap:
    """The agent map of one Asterisk: its configured patterns, or the defaults."""
    return AgentMap(DEFAULT_AGENT_PATTERNS if patterns is None else patterns, devices)


_LOCAL = re.compile(r"^(?P<pair>Local/[^;]+);(?P<half>[12])$")


def local_half(channel: str) -> LocalHalf | None:
    m = _LOCAL.match(channel)
    if m is None:
        return None
    return LocalHalf(pair=m["pair"], half=int(m["half"]))


def looks_external(exten: str | None) -> bool:
    """A dialled string that is a phone number rather than an internal extension."""
    if not exten:
        return False
    digits = exten.lstrip("+")
    return exten.startswith("+") or (digits.isdigit() and len(digits) >= 7)
