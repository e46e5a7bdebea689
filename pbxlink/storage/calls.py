"""The call log: one row per PBX call, written by the call-log service, read by the API and the CLI.

Rows are keyed by (pbx, call_id), so saving the same call again updates it in place;
a row that holds the final record is never rolled back by a stale partial snapshot
(replays and resyncs after a reconnect can deliver one late).
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import peewee as pw

from pbxlink.domain.calls import Amd, CallRecord, Direction, Disposition, HangupBy, MissReason, Transfer
from pbxlink.domain.phone import PhoneQuery, numbers
from pbxlink.storage.models import Call, utcnow


@dataclass(frozen=True)
class CallFilter:
    """What to look for; None means any. Naive datetimes are taken as UTC."""

    since: datetime | None = None  # started_at >= since
    until: datetime | None = None  # started_at < until
    number: str | None = None  # caller or callee: same E.164, else same last digits (pbxlink.domain.phone)
    agent: str | tuple[str, ...] | None = None  # the first agent or any agent who talked (any of several)
    disposition: str | None = None
    queue: str | None = None
    direction: str | None = None
    miss_reason: str | None = None
    pbx: str | None = None


def save_call(rec: CallRecord) -> int:
    """Insert or update the row of this call and return its id; a final row only takes final updates.

    A final row (ended) is replaced only by another final record, and one whose end was seen
    is never replaced by one whose end was not (the resync's guess after a reconnect).
    """
    values = _row_values(rec)
    keep_final = Call.ended_at.is_null() | (
        pw.EXCLUDED.ended_at.is_null(False) & ((pw.EXCLUDED.end_seen == True) | (Call.end_seen == False))  # noqa: E712
    )
    (
        Call.insert(**values)
        .on_conflict(
            conflict_target=[Call.pbx, Call.call_id],
            update={getattr(Call, k): getattr(pw.EXCLUDED, k) for k in values if k not in ("pbx", "call_id")},
            where=keep_final,
        )
        .execute()
    )
    return int(Call.select(Call.id).where(Call.pbx == rec.pbx, Call.call_id == rec.call_id).scalar())


def get_call(id: int) -> dict[str, Any] | None:
    row = Call.get_or_none(Call.id == id)
    return None if row is None else row_to_dict(row)


def search_calls(f: CallFilter, limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """One page of matching calls, newest first, and how many match in all."""
    query = matching(f)
    page = query.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit).offset(offset)
    return [row_to_dict(row) for row in page], query.count()


def iter_calls(f: CallFilter, batch: int = 500) -> Iterator[dict[str, Any]]:
    """Every matching call, newest first, fetched in batches (keyset paging: none skipped or repeated
    when calls are added meanwhile) so an export of years of calls holds one batch in memory."""
    after: tuple[datetime, int] | None = None
    while True:
        query = matching(f)
        if after is not None:
            query = query.where(
                (Call.started_at < after[0]) | ((Call.started_at == after[0]) & (Call.id < after[1]))
            )
        rows = list(query.order_by(Call.started_at.desc(), Call.id.desc()).limit(batch))
        yield from (row_to_dict(row) for row in rows)
        if len(rows) < batch:
            return
        after = (rows[-1].started_at, rows[-1].id)


def open_calls(pbx: str) -> list[CallRecord]:
    """The calls of `pbx` still up as far as the log knows: what a (re)starting adapter must resync."""
    rows = Call.select().where(Call.pbx == pbx, Call.ended_at.is_null()).order_by(Call.started_at, Call.id)
    return [record_from_row(row) for row in rows]


def by_origin(tag: str) -> list[CallRecord]:
    """The calls an originate tagged `tag` made (Call.origin): how callbacks and campaigns learn outcomes."""
    rows = Call.select().where(Call.origin == tag).order_by(Call.started_at, Call.id)
    return [record_from_row(row) for row in rows]


def record_from_row(row: Call) -> CallRecord:
    return CallRecord(
        pbx=row.pbx,
        call_id=row.call_id,
        direction=cast(Direction, row.direction),
        started_at=row.started_at,
        caller=row.caller,
        caller_name=row.caller_name,
        callee=row.callee,
        agent=row.agent,
        agents=json.loads(row.agents),
        queue=row.queue,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        disposition=cast(Disposition | None, row.disposition),
        miss_reason=cast(MissReason | None, row.miss_reason),
        hangup_by=cast(HangupBy | None, row.hangup_by),
        transfers=[Transfer.from_dict(t) for t in json.loads(row.transfers)],
        recording=row.recording,
        end_seen=bool(row.end_seen),
        origin=row.origin,
        amd=cast(Amd | None, row.amd),
        wait_seconds=row.wait_seconds,
        talk_seconds=row.talk_seconds,
    )


def row_to_dict(row: Call) -> dict[str, Any]:
    """The API's shape of a call: its id, then `CallRecord.to_dict()`."""
    return {"id": row.id, **record_from_row(row).to_dict()}


def _row_values(rec: CallRecord) -> dict[str, Any]:
    values: dict[str, Any] = {
        "pbx": rec.pbx,
        "call_id": rec.call_id,
        "direction": rec.direction,
        "caller": rec.caller,
        "caller_name": rec.caller_name,
        "callee": rec.callee,
        "agent": rec.agent,
        "agents": json.dumps(rec.agents),
        "queue": rec.queue,
        "started_at": rec.started_at,
        "answered_at": rec.answered_at,
        "ended_at": rec.ended_at,
        "wait_seconds": rec.wait_seconds,
        "talk_seconds": rec.talk_seconds,
        "disposition": rec.disposition,
        "miss_reason": rec.miss_reason,
        "hangup_by": rec.hangup_by,
        "transfers": json.dumps([t.to_dict() for t in rec.transfers]),
        "recording": rec.recording,
        "end_seen": rec.end_seen,
        "origin": rec.origin,
        "amd": rec.amd,
        "updated_at": utcnow(),
    }
    phones = numbers()
    for side in ("caller", "callee"):
        q = phones.query(values[side])
        values[f"{side}_e164"], values[f"{side}_tail"] = (q.e164, q.tail) if q else (None, None)
    # PostgreSQL refuses an over-long value, SQLite keeps it: cut it here so both keep the call.
    for name, field in Call._meta.fields.items():
        if isinstance(field, pw.CharField) and isinstance(values.get(name), str):
            values[name] = values[name][: field.max_length]
    return values


def matching(f: CallFilter) -> pw.ModelSelect[Call]:
    conditions: list[pw.Expression] = []
    if f.since is not None:
        conditions.append(Call.started_at >= f.since)
    if f.until is not None:
        conditions.append(Call.started_at < f.until)
    if f.number:
        conditions.append(_number_matches("caller", f.number) | _number_matches("callee", f.number))
    if f.agent:
        conditions.append(
            functools.reduce(
                operator.or_, map(_agent_talked, (f.agent,) if isinstance(f.agent, str) else f.agent)
            )
        )
    for column in ("disposition", "queue", "direction", "miss_reason", "pbx"):
        if value := getattr(f, column):
            conditions.append(getattr(Call, column) == value)
    return Call.select().where(*conditions) if conditions else Call.select()


_ESCAPE = pw.SQL("ESCAPE '\\'")


def _agent_talked(agent: str) -> pw.Expression:
    listed = "%" + _like_escape(json.dumps(agent)) + "%"
    return (Call.agent == agent) | pw.NodeList((Call.agents, pw.SQL("LIKE"), listed, _ESCAPE))


def _number_matches(side: str, number: str) -> pw.Expression:
    q = numbers().query(number)
    if q is None:
        return cast(pw.Expression, getattr(Call, side) == number.strip())  # an extension, "anonymous"
    return same_number(getattr(Call, f"{side}_e164"), getattr(Call, f"{side}_tail"), q)


def same_number(e164: pw.Field, tail: pw.Field, q: PhoneQuery) -> pw.Expression:
    """The same number however written, on a pair of normalized columns (calls, recordings):
    equal E.164 where both are known, else equal last digits. Both columns are indexed, so this
    stays an index lookup on millions of rows."""
    if len(q.tail) < numbers().match_digits:  # a local number: the end of its full form
        by_tail: pw.Expression = tail ** f"%{_like_escape(q.tail)}"
    else:
        by_tail = tail == q.tail
    if q.e164 is None:
        return by_tail
    return (e164 == q.e164) | (e164.is_null() & by_tail)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
