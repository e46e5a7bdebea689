"""The callbacks table on real databases (SQLite and PostgreSQL): one open callback per customer and
policy, one claim per due row, and each state change only from the states it is meant for."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pbxlink.domain.calls import CallRecord
from pbxlink.storage import callbacks as store
from pbxlink.storage.calls import by_origin, save_call
from pbxlink.storage.database import connection
from pbxlink.storage.models import Callback, CallbackAttempt
from tests.unit.test_storage import db, pg_server  # noqa: F401  (fixtures: each test runs on both)

pytestmark = pytest.mark.usefixtures("db")

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NUMBER = "+12025550143"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new(number: str = NUMBER, policy: str = "sales", due: float = 0, **kw: Any) -> Callback:
    cb, created = store.schedule(policy, "main", number, source="missed_call", due_at=at(due), now=T0, **kw)
    assert created
    return cb


def claimed(cb: Callback, now: datetime = T0) -> Callback:
    rows = [c for c in store.claim_due(now, 60, 100) if c.id == cb.id]
    assert len(rows) == 1
    return rows[0]


def started(cb: Callback, tag: str, now: datetime = T0) -> Callback:
    assert store.start_attempt(
        claimed(cb, now), tag, "scheduler", now=now, deadline=now + timedelta(seconds=90)
    )
    fresh = store.get(cb.id)
    assert fresh is not None
    return fresh


# --- scheduling and deduplication -------------------------------------------------------------------


def test_one_open_callback_per_number_and_policy_whatever_the_numbers_form() -> None:
    cb = new("(202) 555-0143", name="Ann\nLee", queue="sales", agent="201", missed_call="main:1.1")
    assert (cb.number, cb.number_key, cb.status, cb.due_at, cb.attempts) == (NUMBER, NUMBER, "pending", T0, 0)
    assert (cb.name, cb.queue, cb.agent, cb.source, cb.missed_call) == (
        "Ann Lee",
        "sales",
        "201",
        "missed_call",
        "main:1.1",
    )
    for form in ("2025550143", "+1 202 555 0143", "001 202 555 0143"):
        again, created = store.schedule("sales", "main", form, source="web", due_at=at(999))
        assert (again.id, created, again.due_at) == (cb.id, False, T0)  # the one waiting, unchanged
    other_policy, created = store.schedule("support", "main", NUMBER, source="missed_call", due_at=T0)
    assert created and other_policy.id != cb.id
    assert Callback.select().count() == 2


def test_a_closed_callback_lets_a_new_one_open_but_a_replayed_missed_call_does_not() -> None:
    cb = new(missed_call="main:1.1")
    assert store.cancel(cb.id, "customer asked", "alice")
    replay, created = store.schedule(
        "sales", "main", NUMBER, source="missed_call", due_at=T0, missed_call="main:1.1"
    )
    assert (replay.id, created, replay.status) == (cb.id, False, "cancelled")
    fresh, created = store.schedule(
        "sales", "main", NUMBER, source="missed_call", due_at=T0, missed_call="main:2.1"
    )
    assert created and fresh.id != cb.id and fresh.status == "pending"


def test_what_is_no_phone_number_is_refused() -> None:
    for junk in ("", "201", "anonymous", "1" * 80):
        with pytest.raises(ValueError, match="not a phone number that can be called back"):
            store.schedule("sales", "main", junk, source="web", due_at=T0)
    with pytest.raises(ValueError, match="source must be one of"):
        store.schedule("sales", "main", NUMBER, source="fax", due_at=T0)
    assert Callback.select().count() == 0


def test_the_database_itself_refuses_a_second_open_row() -> None:
    import peewee as pw

    new()
    with pytest.raises(pw.IntegrityError), Callback._meta.database.atomic():
        Callback.create(policy="sales", pbx="main", number=NUMBER, number_key=NUMBER, source="web", due_at=T0)


def test_two_threads_scheduling_the_same_customer_at_once_make_one_row() -> None:
    """Two bus consumers (or two processes) seeing the same miss: the partial unique index decides."""
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []
    go = threading.Barrier(6)

    def schedule(i: int) -> None:
        try:
            with connection():  # a connection of its own, as another process would have
                go.wait()
                cb, created = store.schedule(
                    "sales", "main", NUMBER, source="missed_call", due_at=T0, missed_call=f"main:{i}"
                )
                results.append((cb.id, created))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=schedule, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len({cb_id for cb_id, _ in results}) == 1 and sum(created for _, created in results) == 1
    assert Callback.select().count() == 1


# --- claiming and attempts ------------------------------------------------------------------------


def test_claim_takes_due_rows_oldest_first_once() -> None:
    late, first, second, future = (
        new("2025550101", due=30),
        new("2025550102", due=0),
        new("2025550103", due=10),
        new("2025550104", due=3600),
    )
    rows = store.claim_due(at(60), 60, 2)
    assert [r.id for r in rows] == [first.id, second.id]
    assert {(r.status, r.tag, r.claimed_until) for r in rows} == {("in_progress", None, at(120))}
    assert [r.id for r in store.claim_due(at(61), 60, 10)] == [late.id]  # the others are claimed already
    assert store.claim_due(at(62), 60, 10) == []
    assert [r.id for r in store.claim_due(at(3600), 60, 10)] == [future.id]
    assert {r.attempts for r in Callback.select()} == {0}  # a claim is not an attempt yet


def test_two_workers_racing_claim_each_callback_exactly_once() -> None:
    ids = {new(f"20255501{i:02d}").id for i in range(40)}
    claimed_by: list[list[int]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    go = threading.Barrier(4)

    def worker(mine: list[int]) -> None:
        try:
            with connection():
                go.wait()
                while batch := store.claim_due(at(1), 300, 3):
                    mine.extend(cb.id for cb in batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(mine,)) for mine in claimed_by]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    every = [i for mine in claimed_by for i in mine]
    assert sorted(every) == sorted(ids)  # each once, none lost


def test_an_attempt_is_started_finished_once_and_settled() -> None:
    cb = started(new(), "tag-1")
    assert (cb.status, cb.tag, cb.attempts, cb.claimed_until) == ("in_progress", "tag-1", 1, at(90))
    assert store.by_tag("tag-1").id == cb.id and store.by_tag("nope") is None
    assert store.attempt_of("tag-1").by == "scheduler"

    finished = store.finish_attempt("tag-1", "busy", "1700000000.9", at(40))
    assert finished is not None and (finished.last_outcome, finished.tag) == ("busy", "tag-1")
    assert store.finish_attempt("tag-1", "answered", "x", at(41)) is None  # known already: first one wins
    attempt = store.attempt_of("tag-1")
    assert (attempt.outcome, attempt.call_id, attempt.ended_at) == ("busy", "1700000000.9", at(40))

    assert store.settle(finished, status="pending", now=at(40), due_at=at(640), reason="attempt 1 of 3: busy")
    assert not store.settle(finished, status="done", now=at(41))  # that attempt is settled already
    cb = store.get(cb.id)
    assert (cb.status, cb.tag, cb.due_at, cb.claimed_until, cb.reason) == (
        "pending",
        None,
        at(640),
        None,
        "attempt 1 of 3: busy",
    )

    cb = started(cb, "tag-2", at(640))
    assert cb.attempts == 2
    assert store.settle(store.finish_attempt("tag-2", "answered", "c2", at(700)), status="done", now=at(700))
    assert store.get(cb.id).status == "done"
    assert [(a.tag, a.outcome) for a in store.attempts_of(cb.id)] == [
        ("tag-1", "busy"),
        ("tag-2", "answered"),
    ]
    with pytest.raises(ValueError):
        store.finish_attempt("tag-2", "maybe", None, at(1))
    with pytest.raises(ValueError):
        store.settle(cb, status="pending", now=at(1))


def test_an_attempt_that_never_reached_the_pbx_counts_and_a_stale_worker_cannot_revive_it() -> None:
    cb = claimed(new())
    lost = store.unplaced(cb, "scheduler", at(61))
    assert lost is not None and (lost.attempts, lost.last_outcome, lost.tag) == (
        1,
        "failed",
        f"unplaced-{cb.id}-1",
    )
    assert store.unplaced(cb, "scheduler", at(62)) is None  # only once
    assert store.settle(lost, status="pending", now=at(61), due_at=at(700))
    again = claimed(store.get(cb.id), at(700))
    # The stopped worker comes back to life and reports its originate with its old view of the row:
    assert not store.start_attempt(cb, "late-tag", "scheduler", now=at(701), deadline=at(800))
    assert store.by_tag("late-tag").id == cb.id  # its call is still linked to the callback
    assert store.start_attempt(again, "tag-2", "scheduler", now=at(702), deadline=at(800))
    assert store.get(cb.id).tag == "tag-2"


def test_unclaim_gives_the_row_back_without_an_attempt() -> None:
    cb = claimed(new())
    assert store.unclaim(cb, at(3600), at(1))
    cb = store.get(cb.id)
    assert (cb.status, cb.due_at, cb.attempts, cb.claimed_until) == ("pending", at(3600), 0, None)


def test_the_calls_an_attempt_made_are_found_by_their_origin() -> None:
    rec = CallRecord(
        pbx="main", call_id="1.5", direction="outbound", started_at=T0, callee=NUMBER, origin="tag-9"
    )
    save_call(rec)
    save_call(CallRecord(pbx="main", call_id="1.6", direction="inbound", started_at=T0, caller=NUMBER))
    assert [(c.call_id, c.origin) for c in by_origin("tag-9")] == [("1.5", "tag-9")]
    assert by_origin("other") == []


# --- what the panel does --------------------------------------------------------------------------


def states() -> dict[str, Callback]:
    """One callback in each status (each due at its own time, so each claim takes just its own)."""
    dues = {"pending": 3600, "in_progress": 10, "done": 20, "failed": 30, "cancelled": 40}
    rows = {s: new(f"20255502{i:02d}", due=dues[s]) for i, s in enumerate(store.STATUSES)}
    for status in ("in_progress", "done", "failed"):
        started(rows[status], f"t-{status}", at(dues[status]))
    for status in ("done", "failed"):
        assert store.settle(store.get(rows[status].id), status=status, now=at(50))
    assert store.cancel(rows["cancelled"].id, "test", "alice")
    return {s: store.get(cb.id) for s, cb in rows.items()}


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        (lambda id: store.call_now(id, "alice", now=at(7)), {"pending"}),
        (lambda id: store.reschedule(id, at(9999), "alice"), {"pending"}),
        (lambda id: store.assign(id, "305", "alice"), {"pending", "in_progress"}),
        (lambda id: store.cancel(id, "customer asked", "alice"), {"pending", "in_progress"}),
    ],
    ids=["call_now", "reschedule", "assign", "cancel"],
)
def test_panel_actions_only_on_the_states_they_are_meant_for(
    action: Callable[[int], bool], allowed: set[str]
) -> None:
    rows = states()
    before = {s: (cb.status, cb.due_at, cb.agent, cb.reason) for s, cb in rows.items()}
    for status, cb in rows.items():
        assert action(cb.id) == (status in allowed), status
        after = store.get(cb.id)
        changed = (after.status, after.due_at, after.agent, after.reason) != before[status]
        assert changed == (status in allowed), status


def test_what_each_panel_action_changes() -> None:
    cb = new(agent="201")
    assert store.call_now(cb.id, "alice", now=at(7))
    cb = store.get(cb.id)
    assert (cb.due_at, store.requested_by(cb)) == (at(7), "alice")
    assert store.reschedule(cb.id, at(9999), "bob")
    cb = store.get(cb.id)
    assert (cb.due_at, store.requested_by(cb)) == (at(9999), None) and "rescheduled" in cb.reason
    assert store.assign(cb.id, "305", "bob") and store.get(cb.id).agent == "305"
    assert store.assign(cb.id, None, "bob") and store.get(cb.id).agent is None
    assert store.cancel(cb.id, "wrong number", "carol")
    cb = store.get(cb.id)
    assert (cb.status, cb.reason) == ("cancelled", "wrong number (cancelled by carol)")
    other = new("2025550199")
    assert store.cancel(other.id, "called again, answered by 201", store.SYSTEM)
    assert store.get(other.id).reason == "called again, answered by 201"


def test_cancelling_an_attempt_under_way_still_records_its_call() -> None:
    cb = started(new(), "tag-1")
    assert store.cancel(cb.id, "customer asked", "alice")
    finished = store.finish_attempt("tag-1", "answered", "c1", at(30))
    assert finished is not None and not store.settle(finished, status="done", now=at(30))
    assert store.get(cb.id).status == "cancelled" and store.attempt_of("tag-1").outcome == "answered"


def test_lists_counts_waiting_and_json() -> None:
    rows = states()
    assert store.counts() == {s: 1 for s in store.STATUSES}
    page, total = store.page(None, 2)
    assert total == 5 and [cb.id for cb in page] == [rows["cancelled"].id, rows["failed"].id]  # newest first
    assert [cb.id for cb in store.page(None, 2, 4)[0]] == [rows["pending"].id]
    assert [cb.id for cb in store.page("failed", 10)[0]] == [rows["failed"].id]
    with pytest.raises(ValueError, match="status must be one of"):
        store.page("open", 10)
    assert store.open_for(rows["pending"].number_key) == [rows["pending"]]
    assert [cb.id for cb in store.in_progress()] == [rows["in_progress"].id]

    store.assign(rows["pending"].id, "201", "alice")
    store.assign(rows["in_progress"].id, "202", "alice")
    assert store.waiting_for(["201", "202"]) == 2 and store.waiting_for(["201"]) == 1
    assert store.waiting_for([]) == 0 and store.waiting_for(["999"]) == 0

    data = store.to_dict(store.get(rows["in_progress"].id))
    assert data == {
        "id": rows["in_progress"].id,
        "policy": "sales",
        "pbx": "main",
        "number": "+12025550201",
        "name": None,
        "source": "missed_call",
        "missed_call": None,
        "queue": None,
        "agent": "202",
        "status": "in_progress",
        "due_at": "2026-03-02T09:00:10.000Z",
        "attempts": 1,
        "last_outcome": None,
        "reason": None,
        "created_at": "2026-03-02T09:00:00.000Z",
        "updated_at": data["updated_at"],
    }
    assert CallbackAttempt.select().count() == 3
