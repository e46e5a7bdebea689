"""The call-centre KPIs of the queues, exactly as docs/kpis.md defines them.

Every KPI is a ratio or a mean of a few sums (a `Tally`). Tallies add up, so the same
definitions serve a queue's day, an hour of all queues or thirty days: the database sums
(pbxlink/storage/kpi_queries.py), `tally_calls` sums call records the same way, and
`kpis` turns a tally into the figures and checks them against the admin's targets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, get_args

from pbxlink.domain.calls import CallRecord, MissReason

#: the reasons a missed call is counted under, in the order the dashboard shows them
MISS_REASONS: tuple[str, ...] = get_args(MissReason)
#: the key of the total over every queue
ALL_QUEUES = "*"


@dataclass(frozen=True)
class Targets:
    """What the admin aims for, and the two thresholds the definitions depend on (stored as settings)."""

    service_level: float = 80.0  # percent of calls answered within `service_seconds`, at least
    service_seconds: float = 20.0
    abandon_rate: float = 5.0  # percent, under
    #: an abandon after less wait is a misdial, not a customer who gave up (the callback policies' name)
    min_wait: float = 5.0


@dataclass(frozen=True)
class Tally:
    """The sums of one group of calls (a queue's day, an hour, a day); `+` merges two groups."""

    offered: int = 0
    answered: int = 0
    missed_by_reason: Mapping[str, int] = field(default_factory=dict)
    abandoned: int = 0  # every abandon, short ones included
    short_abandons: int = 0  # abandoned after less than Targets.min_wait of wait
    answered_in_time: int = 0  # answered after at most Targets.service_seconds of wait
    transferred: int = 0  # answered calls with at least one transfer
    waits: int = 0  # answered calls whose wait is known ...
    wait_sum: float = 0.0  # ... and the sum of those waits
    talks: int = 0  # answered calls whose talk time is known ...
    talk_sum: float = 0.0  # ... and the sum of those talk times

    def __add__(self, other: Tally) -> Tally:
        merged: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "missed_by_reason":
                merged[f.name] = {k: mine.get(k, 0) + theirs.get(k, 0) for k in {*mine, *theirs}}
            else:
                merged[f.name] = mine + theirs
        return Tally(**merged)


@dataclass(frozen=True)
class Kpis:
    """One group's figures; a ratio or mean is None when nothing was there to divide."""

    offered: int
    answered: int
    missed: int
    missed_by_reason: dict[str, int]
    abandoned: int
    short_abandons: int
    abandon_rate: float | None  # 0..1
    asa: float | None  # seconds
    aht: float | None  # seconds
    service_level: float | None  # 0..1
    transfer_rate: float | None  # 0..1
    callbacks_pending: int
    #: met (True) or missed (False) against Targets; None while there is nothing to judge
    service_level_met: bool | None
    abandon_rate_met: bool | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def counts_for_queue(rec: CallRecord) -> bool:
    """An inbound call that reached a queue and has ended: only those count for a queue."""
    return rec.direction == "inbound" and bool(rec.queue) and rec.disposition is not None


def tally_call(rec: CallRecord, targets: Targets) -> Tally:
    """One counted call as a tally of one."""
    if rec.disposition == "answered":
        wait, talk = rec.wait_seconds, rec.talk_seconds
        return Tally(
            offered=1,
            answered=1,
            answered_in_time=int(wait is not None and wait <= targets.service_seconds),
            transferred=int(bool(rec.transfers)),
            waits=int(wait is not None),
            wait_sum=wait or 0.0,
            talks=int(talk is not None),
            talk_sum=talk or 0.0,
        )
    abandoned = rec.miss_reason == "abandoned"
    short = abandoned and rec.wait_seconds is not None and rec.wait_seconds < targets.min_wait
    reasons: dict[str, int] = {rec.miss_reason: 1} if rec.miss_reason in MISS_REASONS else {}
    return Tally(offered=1, missed_by_reason=reasons, abandoned=int(abandoned), short_abandons=int(short))


def tally_calls(records: Iterable[CallRecord], targets: Targets) -> dict[str, Tally]:
    """The tally of each queue (keyed by `CallRecord.queue`) over the records that count for a queue."""
    tallies: dict[str, Tally] = {}
    for rec in records:
        if counts_for_queue(rec):
            assert rec.queue is not None
            tallies[rec.queue] = tallies.get(rec.queue, Tally()) + tally_call(rec, targets)
    return tallies


def total(tallies: Iterable[Tally]) -> Tally:
    result = Tally()
    for t in tallies:
        result = result + t
    return result


def kpis(t: Tally, targets: Targets, callbacks_pending: int = 0) -> Kpis:
    """The figures of one tally, each judged against its target."""
    considered = t.offered - t.short_abandons  # short abandons are misdials: left out of both rates
    abandon_rate = _ratio(t.abandoned - t.short_abandons, considered)
    service_level = _ratio(t.answered_in_time, considered)
    return Kpis(
        offered=t.offered,
        answered=t.answered,
        missed=t.offered - t.answered,
        missed_by_reason={r: t.missed_by_reason.get(r, 0) for r in MISS_REASONS},
        abandoned=t.abandoned,
        short_abandons=t.short_abandons,
        abandon_rate=None if abandon_rate is None else float(abandon_rate),
        asa=t.wait_sum / t.waits if t.waits else None,
        aht=t.talk_sum / t.talks if t.talks else None,
        service_level=None if service_level is None else float(service_level),
        transfer_rate=None if t.answered == 0 else t.transferred / t.answered,
        callbacks_pending=callbacks_pending,
        service_level_met=None if service_level is None else service_level >= _percent(targets.service_level),
        abandon_rate_met=None if abandon_rate is None else abandon_rate < _percent(targets.abandon_rate),
    )


def queue_kpis(
    tallies: Mapping[str, Tally], targets: Targets, callbacks_pending: Mapping[str, int]
) -> dict[str, Kpis]:
    """Each queue's figures, then ALL_QUEUES.

    `callbacks_pending` is keyed by `Callback.queue`, which is a DID when the missed call reached
    no queue: those count in the total only, as a queue row appears once the queue has a call.
    """
    figures = {q: kpis(tallies[q], targets, callbacks_pending.get(q, 0)) for q in sorted(tallies)}
    figures[ALL_QUEUES] = kpis(total(tallies.values()), targets, sum(callbacks_pending.values()))
    return figures


def _ratio(part: int, whole: int) -> Fraction | None:
    """Exact, so a rate exactly at its target compares as equal (4 of 5 is 80%, not 79.999…)."""
    return Fraction(part, whole) if whole > 0 else None


def _percent(value: float) -> Fraction:
    return Fraction(str(value)) / 100  # 80.1 as typed, not its binary neighbour
