"""The durable outbox: work that must happen once (a CRM call log, a webhook delivery), kept in the database.

Enqueueing is insert-or-ignore on (kind, target, key), so the same work enqueued twice (a
replayed CallEnded, a resync after a reconnect) stays one row. A worker claims a due row
by moving its lease (`claimed_until`) forward in one conditional UPDATE, which only one of
several workers or processes can win, on SQLite and PostgreSQL alike. A worker that dies
mid-delivery leaves a lease that runs out, and the row is claimed again: delivery is at
least once, and every deliverer is idempotent by key, which makes it once in effect.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import peewee as pw

from pbxlink.domain.calls import iso
from pbxlink.storage.models import OutboxItem, utcnow

STATUSES = ("pending", "failed", "done")
#: what the panel and the API list: "retrying" is a pending row whose last attempt failed
VIEWS = ("failed", "retrying", "pending", "done")
MAX_ERROR = 500
MAX_RESULT = 255
MAX_KEY = 191


@dataclass(frozen=True)
class TargetCounts:
    kind: str
    target: str
    pending: int = 0
    failed: int = 0
    done_since: int = 0  # rows done since the time asked for (the panel asks for today)


def enqueue(
    kind: str, target: str, key: str, payload: dict[str, Any], *, now: datetime | None = None
) -> bool:
    """Add the work unless the same (kind, target, key) is already there; whether a row was added."""
    now = now or utcnow()
    query = OutboxItem.insert(
        kind=kind,
        target=target,
        key=stored_key(key),
        payload=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        status="pending",
        attempts=0,
        next_at=now,
        created_at=now,
    ).on_conflict_ignore()
    cursor = OutboxItem._meta.database.execute(query)  # the cursor, for its rowcount: 0 when ignored
    return bool(cursor.rowcount == 1)


def stored_key(key: str) -> str:
    """`key` as stored: one longer than the column keeps its start and gains a digest of the whole,
    the same every time, so it still identifies the work (PostgreSQL would refuse it whole)."""
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: MAX_KEY - 33]}~{digest}"


def _due(now: datetime) -> pw.Expression:
    return (
        (OutboxItem.status == "pending")
        & (OutboxItem.next_at <= now)
        & (OutboxItem.claimed_until.is_null() | (OutboxItem.claimed_until < now))
    )


def due_targets(now: datetime, kinds: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """The (kind, target) pairs that have work due, so a worker can share itself out between them."""
    where = _due(now) if kinds is None else _due(now) & OutboxItem.kind.in_(list(kinds))
    query = OutboxItem.select(OutboxItem.kind, OutboxItem.target).where(where).distinct()
    return [(row.kind, row.target) for row in query.order_by(OutboxItem.kind, OutboxItem.target)]


def claim_due(
    now: datetime, limit: int, lease_s: float, *, kind: str | None = None, target: str | None = None
) -> list[OutboxItem]:
    """Claim up to `limit` due rows (of one kind/target if given) for `lease_s` seconds, oldest due first.

    Each row is taken by an UPDATE that re-checks it is still due and unclaimed: of two
    workers racing for it, exactly one changes it; the other's UPDATE matches nothing.
    `attempts` counts claims, so a delivery cut short by a crash still counts.
    """
    where = _due(now)
    if kind is not None:
        where &= OutboxItem.kind == kind
    if target is not None:
        where &= OutboxItem.target == target
    candidates = OutboxItem.select(OutboxItem.id).where(where).order_by(OutboxItem.next_at, OutboxItem.id)
    lease = now + timedelta(seconds=lease_s)
    claimed = [
        row.id
        for row in list(candidates.limit(limit))
        if OutboxItem.update(claimed_until=lease, attempts=OutboxItem.attempts + 1)
        .where(OutboxItem.id == row.id, _due(now))
        .execute()
        == 1
    ]
    if not claimed:
        return []
    return list(
        OutboxItem.select().where(OutboxItem.id.in_(claimed)).order_by(OutboxItem.next_at, OutboxItem.id)
    )


def done(id: int, result: str | None, *, now: datetime | None = None) -> bool:
    """Delivered. Wins over any other state: a late success after a retry or a failure is still a success."""
    return _update(
        id,
        OutboxItem.status != "done",
        status="done",
        result=None if result is None else one_line(result, MAX_RESULT),
        done_at=now or utcnow(),
        claimed_until=None,
    )


def retry_later(id: int, error: str, next_at: datetime) -> bool:
    """The attempt failed and may work later; only a row still pending (not done meanwhile) is changed."""
    pending = OutboxItem.status == "pending"
    return _update(id, pending, last_error=one_line(error), next_at=next_at, claimed_until=None)


def fail(id: int, error: str) -> bool:
    """Give up: not retryable, or retried for too long. The panel lists it until an admin retries it."""
    pending = OutboxItem.status == "pending"
    return _update(id, pending, status="failed", last_error=one_line(error), claimed_until=None)


def retry_now(id: int, *, now: datetime | None = None) -> bool:
    """The admin's retry: due now, with a fresh count of attempts; a delivery in flight keeps its lease."""
    not_done = OutboxItem.status != "done"
    return _update(id, not_done, status="pending", next_at=now or utcnow(), attempts=0)


def retry_failed(target: str | None = None, kind: str | None = None, *, now: datetime | None = None) -> int:
    """Every failed row (of one kind/target if given) due again now; how many."""
    where = OutboxItem.status == "failed"
    if kind is not None:
        where &= OutboxItem.kind == kind
    if target is not None:
        where &= OutboxItem.target == target
    query = OutboxItem.update(status="pending", next_at=now or utcnow(), attempts=0, claimed_until=None)
    return int(query.where(where).execute())


def purge_done(before: datetime) -> int:
    """Delete the rows delivered before `before`; how many. Pending and failed rows are never purged."""
    return int(OutboxItem.delete().where(OutboxItem.status == "done", OutboxItem.done_at < before).execute())


def _update(id: int, condition: pw.Expression, **values: Any) -> bool:
    return bool(OutboxItem.update(**values).where(OutboxItem.id == id, condition).execute() == 1)


def get(id: int) -> OutboxItem | None:
    return OutboxItem.get_or_none(OutboxItem.id == id)


def depth() -> int:
    """Rows waiting to be delivered: what monitoring watches."""
    return int(OutboxItem.select().where(OutboxItem.status == "pending").count())


def counts(done_since: datetime) -> list[TargetCounts]:
    """Per kind and target: pending, failed, and done since `done_since` (targets with none left out)."""
    table: dict[tuple[str, str], dict[str, int]] = {}
    kt = (OutboxItem.kind, OutboxItem.target)
    n = pw.fn.COUNT(OutboxItem.id)
    open_rows = (
        OutboxItem.select(*kt, OutboxItem.status, n)
        .where(OutboxItem.status.in_(["pending", "failed"]))
        .group_by(*kt, OutboxItem.status)
    )
    for kind, target, status, count in _tuples(open_rows):
        table.setdefault((kind, target), {})[status] = count
    recent = (
        OutboxItem.select(*kt, n)
        .where(OutboxItem.status == "done", OutboxItem.done_at >= done_since)
        .group_by(*kt)
    )
    for kind, target, count in _tuples(recent):
        table.setdefault((kind, target), {})["done"] = count
    return [
        TargetCounts(kind, target, n.get("pending", 0), n.get("failed", 0), n.get("done", 0))
        for (kind, target), n in sorted(table.items())
    ]


def _tuples(query: pw.ModelSelect[OutboxItem]) -> Iterable[tuple[Any, ...]]:
    return cast(Iterable[tuple[Any, ...]], query.tuples())  # the stubs type rows as models


def page(view: str | None, limit: int, offset: int = 0) -> tuple[list[OutboxItem], int]:
    """One page of rows, newest first, and how many in all. `view` is one of VIEWS, or None for the
    rows that need attention: failed, and pending after a failed attempt."""
    if view is not None and view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}")
    retrying = (OutboxItem.status == "pending") & OutboxItem.last_error.is_null(False)
    where = {
        None: (OutboxItem.status == "failed") | retrying,
        "failed": OutboxItem.status == "failed",
        "retrying": retrying,
        "pending": OutboxItem.status == "pending",
        "done": OutboxItem.status == "done",
    }[view]
    query = OutboxItem.select().where(where)
    rows = query.order_by(OutboxItem.id.desc()).limit(limit).offset(offset)
    return list(rows), query.count()


def item_to_dict(item: OutboxItem) -> dict[str, Any]:
    """The API's shape of a row (without the payload: the call itself is in /api/v1/calls)."""
    return {
        "id": item.id,
        "kind": item.kind,
        "target": item.target,
        "key": item.key,
        "status": item.status,
        "attempts": item.attempts,
        "next_at": iso(item.next_at) if item.status == "pending" else None,
        "last_error": item.last_error,
        "result": item.result,
        "created_at": iso(item.created_at),
        "done_at": iso(item.done_at),
    }


def one_line(text: str, cap: int = MAX_ERROR) -> str:
    """`text` on one line (a driver's or a server's message may run over several), at most `cap` long."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= cap else flat[: cap - 1] + "…"
