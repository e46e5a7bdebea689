"""The dashboard's sums from the database, on SQLite and PostgreSQL: local-day and local-hour
boundaries in the site's zone, and the same figures as pbxlink.services.kpis on the same records."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pbxlink.domain.calls import CallRecord, Transfer
from pbxlink.services.kpis import MISS_REASONS, Targets, tally_calls, total
from pbxlink.storage import callbacks, kpi_queries
from pbxlink.storage.calls import save_call
from tests.unit.test_storage import db, pg_server  # noqa: F401  (fixtures: each test runs on both)

pytestmark = pytest.mark.usefixtures("db")

BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30: local hours start at half past in UTC


def saved(
    n: int,
    started: datetime,
    queue: str | None = "support",
    reason: str | None = None,
    wait: float | None = 10.0,
    **fields: object,
) -> CallRecord:
    rec = CallRecord("main", f"c{n}", "inbound", started, queue=queue)
    rec.ended_at, rec.wait_seconds = started + timedelta(seconds=90), wait
    rec.disposition = "answered" if reason is None else "missed"
    rec.miss_reason = reason  # type: ignore[assignment]
    if reason is None:
        rec.answered_at, rec.talk_seconds, rec.agent, rec.agents = started, 60.0, "201", ["201"]
    for name, value in fields.items():
        setattr(rec, name, value)
    save_call(rec)
    return rec


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)


def test_today_counts_the_local_day_and_its_hours() -> None:
    day = date(2026, 11, 23)
    saved(1, local(BERLIN, 2026, 11, 22, 23, 59, 59))  # yesterday
    saved(2, local(BERLIN, 2026, 11, 23, 0, 0, 0))  # the first instant of the day
    saved(3, local(BERLIN, 2026, 11, 23, 0, 59, 59), queue="sales", reason="abandoned", wait=30.0)
    saved(4, local(BERLIN, 2026, 11, 23, 23, 59, 59), wait=25.0)
    saved(5, local(BERLIN, 2026, 11, 24, 0, 0, 0))  # tomorrow
    saved(6, local(BERLIN, 2026, 11, 23, 12), direction="outbound")
    saved(7, local(BERLIN, 2026, 11, 23, 12), queue=None)
    open_call = CallRecord("main", "up", "inbound", local(BERLIN, 2026, 11, 23, 12), queue="support")
    save_call(open_call)  # still up: not counted yet

    today = kpi_queries.today(Targets(), BERLIN, now=local(BERLIN, 2026, 11, 23, 15))
    assert today.day == day and len(today.hour_starts) == 24
    assert today.hour_starts[0] == local(BERLIN, 2026, 11, 23, 0)
    assert {q: t.offered for q, t in today.queues.items()} == {"support": 2, "sales": 1}
    assert today.queues["support"].answered_in_time == 1  # 10 s in, 25 s out
    assert [(i, t.offered) for i, t in enumerate(today.hours) if t.offered] == [(0, 2), (23, 1)]
    assert today.hours[0].abandoned == 1


def test_dst_days_have_23_and_25_hours_and_half_hour_zones_their_own_hours() -> None:
    saved(1, local(BERLIN, 2026, 3, 29, 3, 30))  # the hour after the skipped one
    spring = kpi_queries.today(Targets(), BERLIN, now=local(BERLIN, 2026, 3, 29, 12))
    assert len(spring.hour_starts) == 23
    assert [i for i, t in enumerate(spring.hours) if t.offered] == [2]  # 00, 01, 03: the third hour
    assert spring.hour_starts[2].astimezone(BERLIN).hour == 3
    autumn = kpi_queries.today(Targets(), BERLIN, now=local(BERLIN, 2026, 10, 25, 12))
    assert len(autumn.hour_starts) == 25

    saved(2, datetime(2026, 11, 23, 4, 29, tzinfo=UTC))  # 09:59 in Kolkata
    saved(3, datetime(2026, 11, 23, 4, 30, tzinfo=UTC))  # 10:00 in Kolkata
    kolkata = kpi_queries.today(Targets(), KOLKATA, now=datetime(2026, 11, 23, 12, tzinfo=UTC))
    assert [(i, t.offered) for i, t in enumerate(kolkata.hours) if t.offered] == [(9, 1), (10, 1)]


def test_by_day_covers_thirty_local_days() -> None:
    last = date(2026, 11, 23)
    saved(1, local(BERLIN, 2026, 10, 25, 0, 30))  # the first day of the 30 (a 25-hour day)
    saved(2, local(BERLIN, 2026, 10, 24, 23, 59))  # the day before: out
    saved(3, local(BERLIN, 2026, 11, 23, 23, 59), reason="no_answer")
    saved(4, local(BERLIN, 2026, 11, 24, 0, 0))  # after the last day: out
    days = kpi_queries.by_day(last, BERLIN, Targets())
    assert len(days) == 30 and days[0][0] == date(2026, 10, 25) and days[-1][0] == last
    assert [(d.isoformat(), t.offered) for d, t in days if t.offered] == [
        ("2026-10-25", 1),
        ("2026-11-23", 1),
    ]
    assert days[-1][1].missed_by_reason == {"no_answer": 1}


def test_the_database_sums_what_the_definitions_sum() -> None:
    rng = random.Random(8)
    start = local(BERLIN, 2026, 11, 23, 0)
    records = []
    for n in range(300):
        reason = rng.choice([None, None, None, *MISS_REASONS])
        transfers = [Transfer("201", "202", "blind")] if reason is None and rng.random() < 0.3 else []
        wait = rng.choice([None, 0.0, 4.999, 5.0, 20.0, 20.001, rng.random() * 60])
        records.append(
            saved(
                n,
                start + timedelta(minutes=4 * n),
                queue=rng.choice(["a", "b", None]),
                reason=reason,
                wait=wait,
                transfers=transfers,
                talk_seconds=rng.choice([None, rng.random() * 300]) if reason is None else 0.0,
            )
        )
    for targets in (Targets(), Targets(service_seconds=5.0, min_wait=20.0)):
        today = kpi_queries.today(targets, BERLIN, now=start + timedelta(hours=12))
        expected = tally_calls(records, targets)
        assert today.queues.keys() == expected.keys()
        for queue, tally in expected.items():
            got = today.queues[queue]
            assert got.__class__(**{**got.__dict__, "wait_sum": 0, "talk_sum": 0}) == tally.__class__(
                **{**tally.__dict__, "wait_sum": 0, "talk_sum": 0}
            )
            # PostgreSQL keeps a FloatField as REAL (6 digits): the sums agree to that
            assert (got.wait_sum, got.talk_sum) == pytest.approx((tally.wait_sum, tally.talk_sum), rel=1e-5)
        assert total(today.hours).offered == total(expected.values()).offered


def test_callbacks_pending_by_queue() -> None:
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    for n, queue in enumerate(["support", "support", "+15550100", None]):
        callbacks.schedule("p", "main", f"+1555000{n:04d}", source="manual", due_at=now, queue=queue, now=now)
    done, _ = callbacks.schedule(
        "p", "main", "+15559999999", source="manual", due_at=now, queue="sales", now=now
    )
    callbacks.cancel(done.id, "test", "sue", now=now)
    assert kpi_queries.callbacks_pending() == {"support": 2, "+15550100": 1, "": 1}
