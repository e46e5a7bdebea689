"""The sums behind the dashboard's KPIs, added up by the database: today per queue and per hour, and
per day for the last thirty days, in the site's time zone.

Calls are counted on the local day (and hour) they started. Each query reads one range of the
`started_at` index and groups by a CASE over the bucket boundaries, computed here from the zone:
that works for every zone (half-hour offsets and DST days included) on SQLite and PostgreSQL
alike, with no time-zone support asked of the database. What counts and how is
pbxlink.services.kpis's definition, summed the same way (tests compare the two).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import peewee as pw

from pbxlink.config.schedule import ScheduleSections
from pbxlink.services.kpis import MISS_REASONS, Tally, Targets
from pbxlink.storage.callbacks import OPEN
from pbxlink.storage.models import Call, Callback

DAYS = 30


def site_zone() -> ZoneInfo:
    """The server's zone, as the callback policies default to: $TZ, else /etc/localtime, else UTC."""
    return ZoneInfo(ScheduleSections(Path(), os.environ).server_timezone())


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """When `day` starts in `zone`, in UTC (a day whose midnight DST skips starts at the first instant)."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return start.astimezone(UTC)


@dataclass(frozen=True)
class Today:
    """Today's sums: per queue, and per local hour over all queues (`hours[i]` starts at `hour_starts[i]`)."""

    day: date
    queues: dict[str, Tally]
    hour_starts: list[datetime]  # UTC instants; 23 or 25 of them on a DST day
    hours: list[Tally]


def today(targets: Targets, zone: ZoneInfo, now: datetime | None = None) -> Today:
    """Today (the local day of `now`) per queue and per hour, in one query."""
    day = (now or datetime.now(UTC)).astimezone(zone).date()
    start, end = local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)
    hour_starts = [start + timedelta(hours=h) for h in range(round((end - start) / timedelta(hours=1)))]
    queues: dict[str, Tally] = {}
    hours = [Tally() for _ in hour_starts]
    for (queue, hour), tally in _tallies([*hour_starts, end], targets, by_queue=True).items():
        queues[queue] = queues.get(queue, Tally()) + tally
        hours[hour] = hours[hour] + tally
    return Today(day, queues, hour_starts, hours)


def by_day(last: date, zone: ZoneInfo, targets: Targets, days: int = DAYS) -> list[tuple[date, Tally]]:
    """All queues' sums for each local day from `days - 1` days before `last` to `last`."""
    dates = [last - timedelta(days=n) for n in range(days - 1, -1, -1)]
    bounds = [local_midnight(d, zone) for d in (*dates, last + timedelta(days=1))]
    found = _tallies(bounds, targets, by_queue=False)
    return [(d, found.get(("", i), Tally())) for i, d in enumerate(dates)]


def callbacks_pending() -> dict[str, int]:
    """Open callbacks (pending or in progress) by `Callback.queue` (a queue, a DID, or "" for none)."""
    query = (
        Callback.select(Callback.queue, pw.fn.COUNT(Callback.id))
        .where(Callback.status.in_(OPEN))
        .group_by(Callback.queue)
    )
    found: dict[str, int] = {}
    for queue, count in cast(Sequence[tuple[str | None, int]], query.tuples()):
        found[queue or ""] = found.get(queue or "", 0) + int(count)
    return found


def _tallies(bounds: Sequence[datetime], targets: Targets, by_queue: bool) -> dict[tuple[str, int], Tally]:
    """(queue or "", bucket index) -> Tally of the counted calls started in bounds[i] <= t < bounds[i+1]."""
    bucket = pw.Case(None, [(Call.started_at < b, i) for i, b in enumerate(bounds[1:])]).alias("bucket")
    group: list[Any] = [Call.queue, bucket] if by_queue else [bucket]
    answered = Call.disposition == "answered"
    missed = Call.disposition != "answered"
    sums = [
        pw.fn.COUNT(Call.id),
        _count(answered),
        *(_count(missed & (Call.miss_reason == r)) for r in MISS_REASONS),
        _count(missed & (Call.miss_reason == "abandoned") & (Call.wait_seconds < targets.min_wait)),
        _count(answered & (Call.wait_seconds <= targets.service_seconds)),
        _count(answered & (Call.transfers != "[]")),
        _count(answered & Call.wait_seconds.is_null(False)),
        pw.fn.COALESCE(pw.fn.SUM(pw.Case(None, [(answered, Call.wait_seconds)])), 0),
        _count(answered & Call.talk_seconds.is_null(False)),
        pw.fn.COALESCE(pw.fn.SUM(pw.Case(None, [(answered, Call.talk_seconds)])), 0),
    ]
    query = (
        Call.select(*group, *sums)
        .where(
            Call.started_at >= bounds[0],
            Call.started_at < bounds[-1],
            Call.direction == "inbound",
            Call.queue.is_null(False),
            Call.queue != "",
            Call.disposition.is_null(False),
        )
        .group_by(*group)
    )
    found: dict[tuple[str, int], Tally] = {}
    for row in cast(Sequence[tuple[Any, ...]], query.tuples()):
        queue, index, rest = (row[0], row[1], row[2:]) if by_queue else ("", row[0], row[1:])
        offered, answered_n, *reasons = (int(v) for v in rest[: 2 + len(MISS_REASONS)])
        short, in_time, transferred, waits, wait_sum, talks, talk_sum = rest[2 + len(MISS_REASONS) :]
        found[(queue, int(index))] = Tally(
            offered=offered,
            answered=answered_n,
            missed_by_reason={r: n for r, n in zip(MISS_REASONS, reasons, strict=True) if n},
            abandoned=reasons[MISS_REASONS.index("abandoned")],
            short_abandons=int(short),
            answered_in_time=int(in_time),
            transferred=int(transferred),
            waits=int(waits),
            wait_sum=float(wait_sum),
            talks=int(talks),
            talk_sum=float(talk_sum),
        )
    return found


def _count(condition: pw.Expression) -> pw.Function:
    return pw.fn.SUM(pw.Case(None, [(condition, 1)], 0))
