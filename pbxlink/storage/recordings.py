"""The recording index: one row per file, written by the indexer, read by the panel and retention.

Rows are keyed by the file's real path, so finding a file again (from the tracker, then by a
scan) updates the one row. Numbers are stored normalized like the call log's
(pbxlink.domain.phone), so a search by number is an index lookup on millions of rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import peewee as pw

from pbxlink.domain.phone import numbers
from pbxlink.storage.calls import same_number
from pbxlink.storage.models import AuditEntry, Recording, utcnow

#: the statuses of a file still on disk, as far as the index knows
ON_DISK = ("present", "changed")


@dataclass(frozen=True)
class RecordingFilter:
    """What to look for; None means any. Naive datetimes are taken as UTC."""

    number: str | None = None  # caller or callee: same E.164, else same last digits
    agent: str | None = None
    agents: tuple[str, ...] | None = None  # any of an agent's extensions
    queue: str | None = None
    since: datetime | None = None  # started_at >= since
    until: datetime | None = None  # started_at < until
    disposition: str | None = None
    min_duration: float | None = None  # seconds
    max_duration: float | None = None
    status: str | None = "present"


def upsert(path: str, folder: str, **fields: Any) -> Recording:
    """Insert or update the row of the file at real path `path`; only the fields given are changed.

    `caller` / `callee` (raw numbers) are stored normalized. A new row without `started_at` gets now.
    """
    values = _normalized(fields)
    update = {getattr(Recording, k): getattr(pw.EXCLUDED, k) for k in values}
    insert = {"started_at": utcnow(), **values, "path": path, "folder": folder}
    Recording.insert(**insert).on_conflict(conflict_target=[Recording.path], update=update or None).execute()
    return Recording.get(Recording.path == path)


def upsert_many(rows: Sequence[dict[str, Any]]) -> None:
    """`upsert` for many files at once (a scan: one statement per 200 files); each row has `path`,
    `folder` and `started_at`. A new row takes the defaults for what it leaves out; an existing row
    keeps its value where the new one is empty (its call, its legal hold) and loses its deletion mark."""
    defaults = {name: f.default for name, f in Recording._meta.fields.items() if name != "id"}
    full = [{k: (v() if callable(v) else v) for k, v in defaults.items()} | _normalized(r) for r in rows]
    # A row the tracker wrote meanwhile keeps its call; a legal hold is never lifted by a scan.
    keep = {k: pw.fn.COALESCE(getattr(pw.EXCLUDED, k), getattr(Recording, k)) for k in defaults}
    update = {
        getattr(Recording, k): v
        for k, v in keep.items()
        if k not in ("path", "folder", "legal_hold", "indexed_at")
    }
    update |= {Recording.deleted_at: pw.EXCLUDED.deleted_at, Recording.deleted_by: pw.EXCLUDED.deleted_by}
    for i in range(0, len(full), 200):
        Recording.insert_many(full[i : i + 200]).on_conflict(
            conflict_target=[Recording.path], update=update
        ).execute()


def get(id: int) -> Recording | None:
    return Recording.get_or_none(Recording.id == id)


def by_path(path: str) -> Recording | None:
    return Recording.get_or_none(Recording.path == path)


def by_paths(paths: list[str]) -> dict[str, Recording]:
    """The rows of these files (one query per 500), for a scan comparing a folder with the index."""
    found: dict[str, Recording] = {}
    for i in range(0, len(paths), 500):
        for row in Recording.select().where(Recording.path.in_(paths[i : i + 500])):
            found[row.path] = row
    return found


def search(f: RecordingFilter, limit: int, offset: int = 0) -> tuple[list[Recording], int]:
    """One page of matching recordings, newest first, and how many match in all."""
    query = _matching(f)
    page = query.order_by(Recording.started_at.desc(), Recording.id.desc()).limit(limit).offset(offset)
    return list(page), query.count()


def for_call(pbx: str, call_id: str) -> list[Recording]:
    rows = Recording.select().where(Recording.pbx == pbx, Recording.call_id == call_id)
    return list(rows.order_by(Recording.started_at, Recording.id))


def iter_on_disk(folder: str, batch: int = 1000) -> Iterator[Recording]:
    """Every row of `folder` the index takes to be on disk, in id order, a batch at a time."""
    after = 0
    while True:
        rows = list(
            Recording.select()
            .where(Recording.folder == folder, Recording.status.in_(ON_DISK), Recording.id > after)
            .order_by(Recording.id)
            .limit(batch)
        )
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].id


def mark(id: int, status: str, **fields: Any) -> None:
    Recording.update(status=status, **_normalized(fields)).where(Recording.id == id).execute()


def audit(user: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    AuditEntry.create(
        user=user[:64],
        action=action[:32],
        target=target[:128],
        detail=None if detail is None else json.dumps(detail, ensure_ascii=False, default=str),
    )


def _normalized(fields: dict[str, Any]) -> dict[str, Any]:
    values = dict(fields)
    for side in ("caller", "callee"):
        if side in values:
            q = numbers().query(values.pop(side))
            values[f"{side}_e164"], values[f"{side}_tail"] = (q.e164, q.tail) if q else (None, None)
    # PostgreSQL refuses an over-long value, SQLite keeps it: cut it here so both keep the row.
    for name, value in values.items():
        field = Recording._meta.fields.get(name)
        if isinstance(field, pw.CharField) and isinstance(value, str):
            values[name] = value[: field.max_length]
    return values


def _matching(f: RecordingFilter) -> pw.ModelSelect[Recording]:
    conditions: list[pw.Expression] = []
    if f.status:
        conditions.append(Recording.status == f.status)
    if f.since is not None:
        conditions.append(Recording.started_at >= f.since)
    if f.until is not None:
        conditions.append(Recording.started_at < f.until)
    if f.number:
        conditions.append(_number_matches("caller", f.number) | _number_matches("callee", f.number))
    if f.agent:
        conditions.append(Recording.agent == f.agent)
    if f.agents is not None:
        conditions.append(Recording.agent.in_(f.agents))
    if f.queue:
        conditions.append(Recording.queue == f.queue)
    if f.disposition:
        conditions.append(Recording.disposition == f.disposition)
    if f.min_duration is not None:
        conditions.append(Recording.duration >= f.min_duration)
    if f.max_duration is not None:
        conditions.append(Recording.duration <= f.max_duration)
    return Recording.select().where(*conditions) if conditions else Recording.select()


def _number_matches(side: str, number: str) -> pw.Expression:
    """As in the call log; an extension matches nothing here (a recording keeps only normalized
    numbers: search an agent's calls by agent)."""
    q = numbers().query(number)
    if q is None:
        return cast(pw.Expression, pw.SQL("1 = 0"))
    return same_number(getattr(Recording, f"{side}_e164"), getattr(Recording, f"{side}_tail"), q)
