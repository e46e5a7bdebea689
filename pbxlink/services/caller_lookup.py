"""The default caller lookup: what the call log already knows about a number.

Until the CRM connectors exist, the best source of a caller's name is the caller ID name
seen on their earlier calls, and the best routing hint is the agent who last talked with
them ("sticky agent"): a returning customer reaches the person who knows their case.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pbxlink.domain.ports import CallerInfo
from pbxlink.storage.calls import CallFilter, search_calls

#: Numbers with fewer digits are extensions or junk: an internal caller needs no lookup, and a
#: short number would match the tail of many unrelated ones.
MIN_DIGITS = 7


class CallLogLookup:
    """`CallerLookup` over the call log: the newest name seen for the number and its last agent.

    Only the `max_calls` newest calls of the last `max_age` are read, so one lookup is one
    small indexed query however long the caller's history.
    """

    def __init__(self, max_calls: int = 50, max_age: timedelta | None = timedelta(days=180)) -> None:
        self.max_calls = max_calls
        self.max_age = max_age

    def lookup(self, number: str) -> CallerInfo | None:
        digits = _digits(number)
        if len(digits) < MIN_DIGITS:
            return None
        since = datetime.now(UTC) - self.max_age if self.max_age is not None else None
        calls, _ = search_calls(CallFilter(number=number, since=since), limit=self.max_calls)
        name = next((c["caller_name"].strip() for c in calls if _named_caller(c, digits)), None)
        hint = next((a for c in calls if (a := _last_agent(c)) is not None), None)
        return CallerInfo(name=name, hint=hint) if name or hint else None


def _digits(number: str | None) -> str:
    return re.sub(r"\D", "", number or "")


def _same_number(stored: str | None, digits: str) -> bool:
    """Digits compared tail to tail, as the call log's number filter does."""
    other = _digits(stored)
    if not other:
        return False
    shorter = min(len(other), len(digits))
    return shorter >= MIN_DIGITS and (other.endswith(digits) or digits.endswith(other))


def _named_caller(call: Mapping[str, Any], digits: str) -> bool:
    """A call this number placed, with a caller ID name other than the number itself."""
    name = call.get("caller_name")
    return (
        isinstance(name, str)
        and bool(name.strip())
        and _digits(name) != digits
        and _same_number(call.get("caller"), digits)
    )


def _last_agent(call: Mapping[str, Any]) -> str | None:
    """The agent who talked last on an answered call (after transfers: the transferee)."""
    if call.get("disposition") != "answered":
        return None
    agents = call.get("agents") or []
    last = agents[-1] if agents else call.get("agent")
    return last if isinstance(last, str) and last else None
