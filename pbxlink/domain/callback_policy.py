"""Callback policies: which missed call is called back, when pbxlink may call, and what it asks the PBX.

Pure: no clock, no database, no PBX. Opening hours are wall-clock times in the policy's
own time zone, turned into instants day by day, so 09:00 stays 09:00 across a DST change
(an opening inside the spring-forward gap is read on the old offset: 02:30 becomes 03:30).
Every value that goes into an originate is checked here as well as in the PBX controls, so
a bad number or name is refused with a message that names the policy, before any PBX sees it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pbxlink.config import CallbackPolicyConfig
from pbxlink.domain.calls import CallRecord
from pbxlink.domain.phone import PhoneNumbers, numbers
from pbxlink.domain.ports import OriginateRequest

Outcome = Literal["answered", "no_answer", "busy", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("answered", "no_answer", "busy", "failed")
#: misses where a short wait means a misdial rather than a customer who gave up
MISDIAL_REASONS = ("abandoned", "queue_timeout")
RING_TIMEOUT = 30  # seconds the first leg of an attempt rings
SEARCH_DAYS = 800  # how far ahead an opening is looked for (holidays may fill a whole year)

_CUSTOMER = re.compile(r"\+?[0-9]{7,20}")  # a customer's number, as the store keeps it
_ENDPOINT = re.compile(r"[A-Za-z0-9_.+*#-]{1,64}")  # a queue or an agent's extension
_DIGITS = re.compile(r"\D")


class CallbackPolicy:
    """One configured `[[callback_policy]]`, with the time and matching rules applied."""

    def __init__(self, settings: CallbackPolicyConfig, phones: PhoneNumbers | None = None) -> None:
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        self.phones = phones or numbers()
        self._holidays = frozenset(settings.holidays)
        self._did_digits = {_DIGITS.sub("", did) for did in settings.dids}
        self._did_keys = {key for did in settings.dids if (key := self.phones.key(did)) is not None}

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def pbx(self) -> str:
        return self.settings.pbx

    @property
    def web(self) -> bool:
        """The policy of the website's requests: it never matches a missed call."""
        return self.settings.source == "web"

    # --- which missed calls ------------------------------------------------------------------

    def matches(self, rec: CallRecord) -> bool:
        """Whether this finished call is a missed inbound call this policy calls back."""
        s = self.settings
        if self.web or rec.origin is not None or rec.pbx != s.pbx:
            return False
        if rec.direction != "inbound" or rec.disposition != "missed" or rec.miss_reason not in s.reasons:
            return False
        if rec.miss_reason in MISDIAL_REASONS and (rec.wait_seconds or 0.0) < s.min_wait:
            return False  # hung up before anyone could have answered: a misdial, not a customer to chase
        if self.phones.query(rec.caller) is None:
            return False  # anonymous, an extension, junk: nobody to call back
        if s.queues and rec.queue not in s.queues:
            return False
        return not s.dids or self._is_did(rec.callee)

    def _is_did(self, callee: str | None) -> bool:
        if not callee:
            return False
        key = self.phones.key(callee)
        return _DIGITS.sub("", callee) in self._did_digits or (key is not None and key in self._did_keys)

    # --- when ----------------------------------------------------------------------------------

    def next_open(self, after: datetime) -> datetime:
        """The first instant at or after `after` (naive = UTC) when a callback may be placed, in UTC."""
        after = _utc(after)
        today = after.astimezone(self.zone).date()
        for offset in range(SEARCH_DAYS):
            day = today + timedelta(days=offset)
            if day in self._holidays:
                continue
            for start, end in self.settings.hours[day.weekday()]:
                if after < self._instant(day, end):
                    return max(after, self._instant(day, start))
        raise ValueError(
            f"callback policy {self.name}: never open in the next {SEARCH_DAYS} days: check hours, holidays"
        )

    def is_open(self, at: datetime) -> bool:
        return self.next_open(at) == _utc(at)

    def _instant(self, day: date, minutes: int) -> datetime:
        """`minutes` after midnight of `day` on the local wall clock (24:00 is the next midnight), in UTC."""
        wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
        # Naive arithmetic first, the zone after: a wall time, not an elapsed time, across DST.
        return wall.replace(tzinfo=self.zone).astimezone(UTC)

    # --- what the PBX is asked ------------------------------------------------------------------

    def attempt_request(self, number: str, *, agent: str | None = None) -> OriginateRequest:
        """The originate of one attempt to call `number` back; `agent` is whom `ring = "agent"` rings.

        Agent first: the queue (or agent) rings, and whoever answers is connected to the customer
        by the `<context>-agent-first` dialplan. Customer first: the customer's phone rings, and
        `<context>-customer-first` plays the message and puts them in the queue.
        """
        s = self.settings
        customer = _checked(
            f"callback policy {s.name}: number",
            number,
            _CUSTOMER,
            "a phone number to dial (digits, optional +)",
        )
        variables = {"PBXLINK_PRESENT": s.present_number} if s.present_number else {}
        if s.order == "agent_first":
            endpoint = (agent or s.queue) if s.ring == "agent" else s.queue
            if endpoint is None:
                raise ValueError(
                    f"callback policy {s.name}: no agent to ring (the missed call rang none) and no queue set"
                )
            return OriginateRequest(
                endpoint=_checked(
                    f"callback policy {s.name}: endpoint", endpoint, _ENDPOINT, "a queue or an extension"
                ),
                exten=customer,
                context=f"{s.context}-agent-first",
                caller_id=s.present_number,
                timeout_s=RING_TIMEOUT,
                variables={"PBXLINK_CUSTOMER": customer, **variables},
            )
        if s.message:
            variables["PBXLINK_MESSAGE"] = s.message
        return OriginateRequest(
            endpoint=customer,
            exten=_checked(f"callback policy {s.name}: queue", s.queue, _ENDPOINT, "a queue name or number"),
            context=f"{s.context}-customer-first",
            caller_id=s.present_number,
            timeout_s=RING_TIMEOUT,
            variables=variables,
        )


def match_policy(policies: Iterable[CallbackPolicy], rec: CallRecord) -> CallbackPolicy | None:
    """The first policy (in the config's order) that calls this finished call back, if any."""
    return next((p for p in policies if p.matches(rec)), None)


def outcome_of(rec: CallRecord) -> Outcome:
    """What an attempt's call came to: `answered` when the customer and an agent talked."""
    if rec.disposition == "answered":
        return "answered"
    if rec.miss_reason in ("busy", "failed"):
        return "busy" if rec.miss_reason == "busy" else "failed"
    return "no_answer"


def _checked(field: str, value: str | None, pattern: re.Pattern[str], what: str) -> str:
    if value is None or pattern.fullmatch(value) is None:
        raise ValueError(f"{field} {repr(value)[:40]} is not {what}")
    return value


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
