"""The outbox table on real databases (SQLite and PostgreSQL): one row per work, one claim per row."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from pbxlink.storage import outbox
from pbxlink.storage.database import connection
from pbxlink.storage.models import OutboxItem
from tests.unit.test_storage import db, pg_server  # noqa: F401  (fixtures: each test runs on both)

pytestmark = pytest.mark.usefixtures("db")

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_same_work_enqueued_twice_stays_one_row() -> None:
    assert outbox.enqueue("crm_log", "hubspot", "main:1.1", {"n": 1}, now=T0) is True
    assert outbox.enqueue("crm_log", "hubspot", "main:1.1", {"n": 2}, now=at(5)) is False  # a replay
    assert outbox.enqueue("crm_log", "pipedrive", "main:1.1", {"n": 1}, now=T0) is True  # another CRM
    assert outbox.enqueue("webhook", "hubspot", "main:1.1", {"n": 1}, now=T0) is True  # another kind
    rows = list(OutboxItem.select().order_by(OutboxItem.id))
    assert [(r.kind, r.target, r.key) for r in rows] == [
        ("crm_log", "hubspot", "main:1.1"),
        ("crm_log", "pipedrive", "main:1.1"),
        ("webhook", "hubspot", "main:1.1"),
    ]
    assert rows[0].payload == '{"n":1}' and rows[0].status == "pending" and rows[0].next_at == T0
    assert outbox.depth() == 3


def test_an_overlong_key_is_stored_shortened_and_still_unique() -> None:
    long_a, long_b = "p" * 64 + ":" + "a" * 150, "p" * 64 + ":" + "a" * 149 + "b"
    assert outbox.enqueue("webhook", "h", long_a, {}) and outbox.enqueue("webhook", "h", long_b, {})
    assert not outbox.enqueue("webhook", "h", long_a, {})
    keys = [r.key for r in OutboxItem.select()]
    assert len(set(keys)) == 2 and all(len(k) <= outbox.MAX_KEY for k in keys)


def test_claim_takes_due_rows_oldest_first_and_hides_them_while_leased() -> None:
    for i, due in enumerate((20, 0, 10, 3600)):
        outbox.enqueue("crm_log", "a", f"k{i}", {}, now=at(due))
    first = outbox.claim_due(at(30), 2, 60)
    assert [r.key for r in first] == ["k1", "k2"] and [r.attempts for r in first] == [1, 1]
    assert first[0].claimed_until == at(90)
    assert [r.key for r in outbox.claim_due(at(31), 10, 60)] == ["k0"]  # k1, k2 leased; k3 not due
    assert outbox.claim_due(at(89), 10, 60) == []


def test_an_expired_lease_is_claimed_again() -> None:
    """A worker that died mid-delivery never records anything: its row comes back after the lease."""
    outbox.enqueue("crm_log", "a", "k", {}, now=T0)
    assert [r.attempts for r in outbox.claim_due(T0, 5, 120)] == [1]
    assert outbox.claim_due(at(119), 5, 120) == []
    again = outbox.claim_due(at(121), 5, 120)
    assert [(r.key, r.attempts) for r in again] == [("k", 2)]


def test_claim_by_kind_and_target_and_the_due_targets() -> None:
    outbox.enqueue("crm_log", "a", "1", {}, now=T0)
    outbox.enqueue("crm_log", "b", "1", {}, now=T0)
    outbox.enqueue("webhook", "a", "1", {}, now=T0)
    outbox.enqueue("webhook", "later", "1", {}, now=at(600))
    assert outbox.due_targets(T0) == [("crm_log", "a"), ("crm_log", "b"), ("webhook", "a")]
    assert outbox.due_targets(T0, ["webhook"]) == [("webhook", "a")]
    assert [(r.kind, r.target) for r in outbox.claim_due(T0, 5, 60, kind="crm_log", target="b")] == [
        ("crm_log", "b")
    ]
    assert outbox.due_targets(at(1)) == [("crm_log", "a"), ("webhook", "a")]


def test_two_workers_racing_claim_each_row_exactly_once() -> None:
    rows = 120
    for i in range(rows):
        outbox.enqueue("crm_log", "a", f"k{i}", {}, now=T0)
    claimed: list[list[int]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    go = threading.Barrier(4)

    def worker(mine: list[int]) -> None:
        try:
            with connection():  # a connection of its own, as another process would have
                go.wait()
                while batch := outbox.claim_due(at(1), 7, 300):
                    mine.extend(r.id for r in batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(mine,)) for mine in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    every = [i for mine in claimed for i in mine]
    assert len(every) == rows and len(set(every)) == rows
    assert {r.attempts for r in OutboxItem.select()} == {1}


def test_outcomes_and_what_the_panel_lists() -> None:
    ids = {}
    for key in ("ok", "later", "bad", "new"):
        outbox.enqueue("crm_log", "a", key, {}, now=T0)
        ids[key] = OutboxItem.get(key=key).id
    outbox.claim_due(T0, 10, 60)
    assert outbox.done(ids["ok"], "crm-call-17", now=at(5))
    assert outbox.retry_later(ids["later"], "a: 503 Service\nUnavailable", at(40))
    assert outbox.fail(ids["bad"], "a: 401 Unauthorized " + "x" * 900)

    ok, later, bad = (outbox.get(ids[k]) for k in ("ok", "later", "bad"))
    assert (ok.status, ok.result, ok.done_at, ok.claimed_until) == ("done", "crm-call-17", at(5), None)
    assert (later.status, later.last_error, later.next_at) == (
        "pending",
        "a: 503 Service Unavailable",
        at(40),
    )
    assert later.claimed_until is None
    assert bad.status == "failed" and len(bad.last_error) == outbox.MAX_ERROR and "\n" not in bad.last_error

    assert not outbox.retry_later(ids["ok"], "late news", at(99))  # a stale worker's failure: done stays done
    assert not outbox.fail(ids["ok"], "late news")
    assert outbox.get(ids["ok"]).status == "done"

    problems, total = outbox.page(None, 10)
    assert [r.key for r in problems] == ["bad", "later"] and total == 2  # newest first
    assert [r.key for r in outbox.page("failed", 10)[0]] == ["bad"]
    assert [r.key for r in outbox.page("retrying", 10)[0]] == ["later"]
    assert [r.key for r in outbox.page("pending", 10)[0]] == ["new", "later"]
    assert outbox.page(None, 1, 1)[0][0].key == "later"

    assert outbox.counts(done_since=T0) == [
        outbox.TargetCounts("crm_log", "a", pending=2, failed=1, done_since=1)
    ]
    assert outbox.counts(done_since=at(6))[0].done_since == 0


def test_admin_retries_make_failed_rows_due_with_fresh_attempts() -> None:
    for target in ("a", "a", "b"):
        outbox.enqueue("crm_log", target, f"{target}{OutboxItem.select().count()}", {}, now=T0)
    outbox.enqueue("webhook", "a", "w", {}, now=T0)
    for row in outbox.claim_due(T0, 10, 60):
        outbox.fail(row.id, "401 Unauthorized")
    assert outbox.retry_failed("a", "crm_log", now=at(100)) == 2
    assert {
        (r.target, r.status, r.attempts) for r in OutboxItem.select().where(OutboxItem.kind == "crm_log")
    } == {
        ("a", "pending", 0),
        ("b", "failed", 1),
    }
    assert outbox.retry_failed(now=at(100)) == 2  # b and the webhook
    assert len(outbox.claim_due(at(100), 10, 60)) == 4

    one = OutboxItem.get(key="w")
    outbox.done(one.id, None)
    assert not outbox.retry_now(one.id)  # delivered: nothing to retry
    assert not outbox.retry_now(10_000)
    other = OutboxItem.get(key="b2")
    outbox.fail(other.id, "boom")
    assert outbox.retry_now(other.id, now=at(200)) and outbox.get(other.id).next_at == at(200)


def test_purge_forgets_only_rows_delivered_long_ago() -> None:
    for key in ("old", "recent", "failed", "pending"):
        outbox.enqueue("webhook", "h", key, {}, now=T0)
    ids = {r.key: r.id for r in outbox.claim_due(T0, 10, 60)}
    outbox.done(ids["old"], None, now=at(10))
    outbox.done(ids["recent"], None, now=at(100))
    outbox.fail(ids["failed"], "410 Gone")
    assert outbox.purge_done(before=at(50)) == 1
    assert sorted(r.key for r in OutboxItem.select()) == ["failed", "pending", "recent"]


def test_one_line_errors_and_the_api_shape() -> None:
    assert outbox.one_line("psycopg2: could not connect\n  DETAIL:  refused\n") == (
        "psycopg2: could not connect DETAIL: refused"
    )
    outbox.enqueue("webhook", "h", "main:1:ended:abc", {"kind": "ended"}, now=T0)
    item = OutboxItem.get(key="main:1:ended:abc")
    assert outbox.item_to_dict(item) == {
        "id": item.id,
        "kind": "webhook",
        "target": "h",
        "key": "main:1:ended:abc",
        "status": "pending",
        "attempts": 0,
        "next_at": "2026-01-05T09:00:00.000Z",
        "last_error": None,
        "result": None,
        "created_at": "2026-01-05T09:00:00.000Z",
        "done_at": None,
    }
