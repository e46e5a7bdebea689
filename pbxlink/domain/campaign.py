"""Outbound campaigns' rules: when a contact may be called, what the PBX is asked, what came of it.

Pure: no clock, no database, no PBX. Two kinds of hours apply and both must be open:
the campaign's schedule (`days` as a cron day-of-week field, `hours` as a wall-clock range,
in the campaign's zone: when the business wants the dialler to run) and the contact's
calling window (`window_start` to `window_end` on the contact's own wall clock; when a
number may span several zones, open in all of them). Wall times become instants day by
day, so 09:00 stays 09:00 across a DST change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from pbxlink.domain.calls import CallRecord
from pbxlink.domain.ports import OriginateRequest

Mode = Literal["broadcast", "agent_first"]
Outcome = Literal["answered", "machine", "busy", "no_answer", "failed"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
RETRIED: tuple[Outcome, ...] = ("busy", "no_answer", "failed", "machine")
CONTEXT = "pbxlink-campaign"  # the dialplan contexts are <CONTEXT>-broadcast and <CONTEXT>-agent-first
VARIABLE_PREFIX = "PBXLINK_COL_"  # a contact's custom column KEY reaches the dialplan as PBXLINK_COL_KEY

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")
_ENDPOINT = re.compile(r"[A-Za-z0-9_.+*#-]{1,64}")
_SOUND = re.compile(r"[A-Za-z0-9_./-]{1,128}")
_CALLER_ID = re.compile(r"\+?[0-9]{2,20}")
_KEY = re.compile(r"[A-Z0-9_]{1,32}")


@dataclass(frozen=True)
class RetryRule:
    """After this outcome, call again `after_minutes` later while the contact has had fewer than
    `max_attempts` dials in all."""

    after_minutes: float
    max_attempts: int


DEFAULT_RETRIES: Mapping[str, RetryRule] = {
    "busy": RetryRule(10, 3),
    "no_answer": RetryRule(60, 3),
    "failed": RetryRule(30, 2),
    "machine": RetryRule(240, 1),  # a message left on a machine is usually enough
}


@dataclass(frozen=True)
class CampaignSettings:
    """A campaign's settings, checked: build with `CampaignSettings.checked(...)`."""

    name: str
    pbx: str
    mode: Mode
    timezone: str
    caller_id: str | None = None
    message: str | None = None
    queue: str | None = None
    amd: bool = False
    days: str = "mon-fri"
    hours: str = "09:00-18:00"
    window_start: str = "09:00"
    window_end: str = "20:00"
    max_concurrent: int = 5
    per_minute: float = 10.0
    ring_timeout: int = 30
    retries: Mapping[str, RetryRule] = field(default_factory=lambda: dict(DEFAULT_RETRIES))

    @classmethod
    def checked(cls, **values: object) -> CampaignSettings:
        """The settings from a form, the CLI or a row; ValueError naming the field and what it needs."""
        s = cls(**values)  # type: ignore[arg-type]
        _need(_NAME.fullmatch(s.name), "name", "1 to 64 letters, digits, spaces, _ . -")
        _need(s.mode in get_args(Mode), "mode", "broadcast or agent_first")
        _need(bool(s.pbx), "pbx", "the name of a configured PBX")
        try:
            ZoneInfo(s.timezone)
        except (ValueError, KeyError, OSError):
            _need(False, "timezone", 'a time zone like "Europe/Berlin"')
        _need(s.caller_id is None or _CALLER_ID.fullmatch(s.caller_id), "caller_id", "a phone number")
        _need(s.message is None or _SOUND.fullmatch(s.message), "message", "a sound file name")
        _need(s.queue is None or _ENDPOINT.fullmatch(s.queue), "queue", "a queue name or number")
        if s.mode == "broadcast":
            _need(s.message is not None, "message", "set: the recording a broadcast plays")
        else:
            _need(s.queue is not None, "queue", "set: the queue whose free agent is connected first")
        parse_days(s.days)
        start, end = _range(s.hours, "hours")
        _need(start < end, "hours", "a range like 09:00-18:00")
        _need(
            _minutes(s.window_start, "window_start") < _minutes(s.window_end, "window_end"),
            "window_end",
            "later than window_start",
        )
        _need(1 <= s.max_concurrent <= 1000, "max_concurrent", "between 1 and 1000")
        _need(0.1 <= s.per_minute <= 6000, "per_minute", "between 0.1 and 6000 calls a minute")
        _need(5 <= s.ring_timeout <= 120, "ring_timeout", "between 5 and 120 seconds")
        for outcome, rule in s.retries.items():
            _need(outcome in RETRIED, "retries", f"rules for {', '.join(RETRIED)}")
            _need(
                0 <= rule.after_minutes <= 7 * 24 * 60, f"retries.{outcome}", "a pause of 0 to 10080 minutes"
            )
            _need(1 <= rule.max_attempts <= 20, f"retries.{outcome}", "1 to 20 attempts in all")
        return s

    def retries_json(self) -> str:
        return json.dumps(
            {
                k: {"after_minutes": r.after_minutes, "max_attempts": r.max_attempts}
                for k, r in self.retries.items()
            }
        )


def check_for_pbx(s: CampaignSettings, pbx_type: str) -> CampaignSettings:
    """What one kind of PBX needs beyond the settings' own checks; ValueError naming the field."""
    if pbx_type == "asterisk" and s.mode == "agent_first":
        # Asterisk rings the queue as Local/<queue>@<dial context>: it needs the number that reaches it.
        _need(
            s.queue is not None and s.queue.isdigit(),
            "queue",
            "on Asterisk, the number that reaches the queue",
        )
    return s


def retries_from_json(text: str | None) -> dict[str, RetryRule]:
    """The stored rules over the defaults (a rule not stored keeps its default)."""
    rules = dict(DEFAULT_RETRIES)
    for outcome, rule in (json.loads(text) if text else {}).items():
        rules[outcome] = RetryRule(float(rule["after_minutes"]), int(rule["max_attempts"]))
    return rules


def parse_days(text: str) -> frozenset[int]:
    """A cron day-of-week field (`mon-fri`, `mon,wed,fri`, `sat-sun`, `*`) as weekday numbers (mon = 0)."""
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        if part in ("*", ""):
            _need(part == "*", "days", 'weekdays like "mon-fri" or "mon,wed,fri"')
            days.update(range(7))
            continue
        first, _, last = part.partition("-")
        _need(
            first in _DAYS and (not last or last in _DAYS), "days", 'weekdays like "mon-fri" or "mon,wed,fri"'
        )
        a, b = _DAYS.index(first), _DAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


class Plan:
    """A campaign's settings with its hours applied: what `is_open`, `window_open` and the rest answer."""

    def __init__(self, s: CampaignSettings) -> None:
        self.s = s
        self.zone = ZoneInfo(s.timezone)
        self.days = parse_days(s.days)
        self.hours = _range(s.hours, "hours")
        self.window = (_minutes(s.window_start, "window_start"), _minutes(s.window_end, "window_end"))
        self.interval = timedelta(seconds=60.0 / s.per_minute)

    def is_open(self, at: datetime) -> bool:
        """Whether the schedule lets the dialler run at `at`."""
        local = at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.hours[0] <= minute < self.hours[1]

    def next_open(self, after: datetime) -> datetime | None:
        """The next instant at or after `after` when the schedule opens (None: it never does)."""
        return _next(after, [self.zone], self.hours, self.days)

    def window_open(self, zones: Iterable[str], at: datetime) -> bool:
        """Whether `at` is inside the calling window on every one of the contact's clocks."""
        for zone in _zones(zones, self.zone):
            local = at.astimezone(zone)
            if not self.window[0] <= local.hour * 60 + local.minute < self.window[1]:
                return False
        return True

    def next_window(self, zones: Iterable[str], after: datetime) -> datetime:
        """The first instant at or after `after` inside the window on all the contact's clocks.

        When the zones' windows never overlap (a number spanning zones too far apart), a day
        later: the contact waits and is reported as such rather than called at a bad hour.
        """
        clocks = _zones(zones, self.zone)
        found = _next(after, clocks, self.window, frozenset(range(7)))
        return found if found is not None else after + timedelta(days=1)

    def retry(self, outcome: Outcome, attempts: int, now: datetime) -> datetime | None:
        """When to dial again after `outcome` on the contact's `attempts`-th dial; None: it is done."""
        rule = self.s.retries.get(outcome)
        if outcome == "answered" or rule is None or attempts >= rule.max_attempts:
            return None
        return now + timedelta(minutes=rule.after_minutes)

    def request(
        self, number: str, fields: Mapping[str, str], tag: str, context: str = CONTEXT
    ) -> OriginateRequest:
        """The originate of one dial: the broadcast rings the contact first, agent-first the queue."""
        s = self.s
        variables = {f"{VARIABLE_PREFIX}{_key(k)}": v for k, v in fields.items()}
        if s.mode == "broadcast":
            assert s.message is not None
            variables["PBXLINK_MESSAGE"] = s.message
            if s.queue:
                variables["PBXLINK_QUEUE"] = s.queue
            if s.amd:
                variables["PBXLINK_AMD"] = "1"
            return OriginateRequest(
                endpoint=number,
                exten="s",
                context=f"{context}-broadcast",
                caller_id=s.caller_id,
                timeout_s=s.ring_timeout,
                variables=variables,
                tag=tag,
            )
        assert s.queue is not None
        return OriginateRequest(
            endpoint=s.queue,
            exten=number,
            context=f"{context}-agent-first",
            caller_id=s.caller_id,
            timeout_s=s.ring_timeout,
            variables={
                "PBXLINK_CUSTOMER": number,
                **({"PBXLINK_PRESENT": s.caller_id} if s.caller_id else {}),
                **variables,
            },
            tag=tag,
        )

    def deadline(self, started: datetime, margin_s: float) -> datetime:
        """By when a dial's call must have shown up: both legs' ring time and a margin."""
        legs = 2 if self.s.mode == "agent_first" else 1
        return started + timedelta(seconds=legs * self.s.ring_timeout + margin_s)


def outcome_of(rec: CallRecord, mode: Mode) -> Outcome | None:
    """What a dial's ended call came to; None for an agent-first dial no agent took (not the contact's
    fault: the contact was never rung, and is dialled again without counting it)."""
    if rec.amd == "machine":
        return "machine"
    if rec.disposition == "answered":
        return "answered"
    if mode == "agent_first" and not rec.agents and rec.caller is None:
        return None
    if rec.miss_reason in ("busy", "failed"):
        return "busy" if rec.miss_reason == "busy" else "failed"
    return "no_answer"


def _key(name: str) -> str:
    _need(_KEY.fullmatch(name), "fields", "custom column keys of A-Z, 0-9 and _")
    return name


def _zones(names: Iterable[str], default: ZoneInfo) -> list[ZoneInfo]:
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ValueError, KeyError, OSError):
            continue  # a zone this machine does not know: the others (or the campaign's) decide
    return zones or [default]


def _next(
    after: datetime, clocks: list[ZoneInfo], span: tuple[int, int], days: frozenset[int]
) -> datetime | None:
    """The first instant ≥ `after` inside `span` (minutes of the local day) on `days`, on every clock."""
    after = after.astimezone(UTC)
    candidates = [after]
    for zone in clocks:
        day = after.astimezone(zone).date()
        for offset in range(9):
            wall = datetime.combine(day + timedelta(days=offset), time()) + timedelta(minutes=span[0])
            candidates.append(wall.replace(tzinfo=zone).astimezone(UTC))
    for at in sorted(c for c in candidates if c >= after):
        if all(_inside(at.astimezone(z), span, days) for z in clocks):
            return at
    return None


def _inside(local: datetime, span: tuple[int, int], days: frozenset[int]) -> bool:
    return local.weekday() in days and span[0] <= local.hour * 60 + local.minute < span[1]


def _range(text: str, what: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    _need(bool(sep), what, "a range like 09:00-18:00")
    return _minutes(start.strip(), what), _minutes(end.strip(), what)


def _minutes(text: str, what: str) -> int:
    _need(_HHMM.fullmatch(text), what, "a time like 09:00 (00:00 to 24:00)")
    return 24 * 60 if text == "24:00" else int(text[:2]) * 60 + int(text[3:])


def _need(ok: object, what: str, expected: str) -> None:
    if not ok:
        raise ValueError(f"{what}: must be {expected}")
