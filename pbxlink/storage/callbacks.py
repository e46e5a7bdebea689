"""The callbacks table: one open callback per customer and policy, claimed atomically, with its attempts.

A callback is `pending` until due, `in_progress` from the moment a worker claims it until
its attempt's outcome is known, then `done`, `failed`, or `pending` again for the next
attempt; `cancelled` whenever someone (or the customer reaching us) ends it. Every change
is one conditional UPDATE that re-checks the state it expects, so two workers, a worker and
the panel, or a worker and its own restarted self never both win: the loser changes nothing
and is told so (False, or None).

- `schedule` inserts; the partial unique index of migration 4 refuses a second open row for
  the same (policy, number_key), and the open one is returned instead.
- `claim_due` moves a due row to `in_progress` without a tag and with a lease; `start_attempt`
  records the originate's tag right after the PBX took it. A lease that runs out with no tag
  means the worker stopped in between: `unplaced` counts that attempt as failed rather than
  dialling again at once.
- `finish_attempt` records an attempt's outcome once, whoever learns it first (the call's
  end on the bus, or the call log after a restart); `settle` then moves the callback on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import peewee as pw

from pbxlink.domain.callback_policy import OUTCOMES
from pbxlink.domain.calls import iso
from pbxlink.domain.phone import numbers
from pbxlink.storage.models import Callback, CallbackAttempt, db_proxy, utcnow
from pbxlink.storage.outbox import one_line

STATUSES = ("pending", "in_progress", "done", "failed", "cancelled")
OPEN = ("pending", "in_progress")
SOURCES = ("missed_call", "web", "manual")
SYSTEM = "pbxlink"  # `by` of what pbxlink does on its own
CALL_NOW = "call now, asked by "  # how a pending row remembers who pressed "call now"
MAX_NAME = 128
MAX_REASON = 255


def schedule(
    policy: str,
    pbx: str,
    number: str,
    *,
    source: str,
    due_at: datetime,
    name: str | None = None,
    missed_call: str | None = None,
    queue: str | None = None,
    agent: str | None = None,
    now: datetime | None = None,
) -> tuple[Callback, bool]:
    """(the open callback for this number and policy, whether this call created it).

    The same missed call seen again (a replayed end) returns the callback it made, whatever its state.
    """
    q = numbers().query(number)
    if q is None:
        raise ValueError("not a phone number that can be called back")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}")
    if missed_call is not None:
        seen = Callback.get_or_none(Callback.policy == policy, Callback.missed_call == missed_call)
        if seen is not None:
            return seen, False
    now = now or utcnow()
    for _ in range(3):  # the open row may close between our insert failing and our reading it
        existing = _open_one(policy, q.key)
        if existing is not None:
            return existing, False
        try:
            with db_proxy.atomic():  # a savepoint: PostgreSQL's transaction survives the refusal
                created = Callback.create(
                    policy=policy,
                    pbx=pbx,
                    number=q.e164 or q.digits,
                    number_key=q.key,
                    name=None if name is None else one_line(name, MAX_NAME),
                    source=source,
                    missed_call=missed_call,
                    queue=None if queue is None else queue[:128],
                    agent=None if agent is None else agent[:64],
                    status="pending",
                    due_at=due_at,
                    created_at=now,
                    updated_at=now,
                )
            return created, True
        except pw.IntegrityError:
            continue  # another process scheduled it a moment ago: return theirs
    raise RuntimeError(f"callback for {q.key} under policy {policy}: could not insert nor find the open one")


def _open_one(policy: str, number_key: str) -> Callback | None:
    return Callback.get_or_none(
        Callback.policy == policy, Callback.number_key == number_key, Callback.status.in_(OPEN)
    )


def get(id: int) -> Callback | None:
    return Callback.get_or_none(Callback.id == id)


def by_tag(tag: str) -> Callback | None:
    """The callback one of whose attempts carried this originate tag (Call.origin)."""
    query = Callback.select().join(CallbackAttempt).where(CallbackAttempt.tag == tag)
    return cast(Callback | None, query.first())


def linked_to(pbx: str, call_id: str, origin: str | None) -> list[dict[str, Any]]:
    """The callbacks a call belongs to, for the call log: the one its miss scheduled, the one it placed."""
    links = [
        {"callback": cb.id, "status": cb.status, "as": "missed call"}
        for cb in Callback.select().where(Callback.missed_call == f"{pbx}:{call_id}")
    ]
    if origin is not None and (cb := by_tag(origin)) is not None:
        links.append(
            {"callback": cb.id, "status": cb.status, "as": "callback attempt", "missed_call": cb.missed_call}
        )
    return links


def attempt_of(tag: str) -> CallbackAttempt | None:
    return CallbackAttempt.get_or_none(CallbackAttempt.tag == tag)


def open_for(number_key: str) -> list[Callback]:
    """The open callbacks of one customer, under every policy."""
    query = Callback.select().where(Callback.number_key == number_key, Callback.status.in_(OPEN))
    return list(query.order_by(Callback.id))


def in_progress() -> list[Callback]:
    return list(Callback.select().where(Callback.status == "in_progress").order_by(Callback.id))


def page(status: str | None, limit: int, offset: int = 0) -> tuple[list[Callback], int]:
    """One page of callbacks (of one status, or all), newest first, and how many in all."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    query = Callback.select() if status is None else Callback.select().where(Callback.status == status)
    rows = query.order_by(Callback.created_at.desc(), Callback.id.desc()).limit(limit).offset(offset)
    return list(rows), query.count()


def counts() -> dict[str, int]:
    """How many callbacks are in each status (every status present, zero included)."""
    query = Callback.select(Callback.status, pw.fn.COUNT(Callback.id)).group_by(Callback.status)
    found = dict(cast(Sequence[tuple[str, int]], query.tuples()))
    return {status: int(found.get(status, 0)) for status in STATUSES}


def attempts_of(id: int) -> list[CallbackAttempt]:
    query = CallbackAttempt.select().where(CallbackAttempt.callback == id)
    return list(query.order_by(CallbackAttempt.started_at, CallbackAttempt.id))


def waiting_for(extensions: Sequence[str]) -> int:
    """Open callbacks assigned to, or missed by, any of these agents' extensions."""
    if not extensions:
        return 0
    where = Callback.agent.in_(list(extensions)) & Callback.status.in_(OPEN)
    return int(Callback.select().where(where).count())


# --- what people do from the panel --------------------------------------------------------------


def call_now(id: int, by: str, *, now: datetime | None = None) -> bool:
    """Due now, placed at the next scan even outside the hours (a person asked); only while pending."""
    now = now or utcnow()
    return _update(
        id, Callback.status == "pending", due_at=now, reason=_reason(CALL_NOW + by), updated_at=now
    )


def requested_by(cb: Callback) -> str | None:
    """Who pressed "call now" for this pending callback, if anyone did."""
    reason = cb.reason or ""
    return reason.removeprefix(CALL_NOW) if reason.startswith(CALL_NOW) else None


def reschedule(id: int, due_at: datetime, by: str) -> bool:
    """Due at `due_at` instead (still within the policy's hours: a time outside waits for the opening)."""
    when = iso(due_at)
    return _update(
        id, Callback.status == "pending", due_at=due_at, reason=_reason(f"rescheduled to {when} by {by}")
    )


def assign(id: int, agent: str | None, by: str) -> bool:
    """Give the open callback to `agent` (None: to nobody in particular)."""
    return _update(id, Callback.status.in_(OPEN), agent=None if agent is None else agent[:64])


def cancel(id: int, reason: str, by: str, *, now: datetime | None = None) -> bool:
    """Not to be called back; an attempt under way still records its outcome, the callback stays cancelled."""
    text = reason if by == SYSTEM else f"{reason} (cancelled by {by})"
    values: dict[str, Any] = {"status": "cancelled", "reason": _reason(text), "claimed_until": None}
    return _update(id, Callback.status.in_(OPEN), **values, updated_at=now or utcnow())


def _reason(text: str) -> str:
    return one_line(text, MAX_REASON)


def _update(id: int, condition: pw.Expression, **values: Any) -> bool:
    values.setdefault("updated_at", utcnow())
    return bool(Callback.update(**values).where(Callback.id == id, condition).execute() == 1)


# --- what the callback service does --------------------------------------------------------------


def claim_due(now: datetime, lease_s: float, limit: int) -> list[Callback]:
    """Claim up to `limit` callbacks due by `now`, oldest due first: each moves to in_progress, without a
    tag yet, leased for `lease_s`. Of two workers racing for a row, exactly one UPDATE changes it."""
    due = (Callback.status == "pending") & (Callback.due_at <= now)
    candidates = Callback.select(Callback.id).where(due).order_by(Callback.due_at, Callback.id).limit(limit)
    lease = now + timedelta(seconds=lease_s)
    claimed = [
        row.id
        for row in list(candidates)
        if Callback.update(status="in_progress", tag=None, claimed_until=lease, updated_at=now)
        .where(Callback.id == row.id, due)
        .execute()
        == 1
    ]
    if not claimed:
        return []
    return list(Callback.select().where(Callback.id.in_(claimed)).order_by(Callback.due_at, Callback.id))


def unclaim(cb: Callback, due_at: datetime, now: datetime) -> bool:
    """Give a claimed callback back, due at `due_at`, no attempt made (it is outside the hours)."""
    return _update(cb.id, _claimed(cb), status="pending", due_at=due_at, claimed_until=None, updated_at=now)


def start_attempt(cb: Callback, tag: str, by: str, *, now: datetime, deadline: datetime) -> bool:
    """The PBX took the originate tagged `tag`: record the attempt, and by when its call should have
    ended (`deadline`, kept in `claimed_until`). The attempt is recorded even if the callback was
    cancelled meanwhile (its call still happens); False when the callback was not changed."""
    with db_proxy.atomic():
        CallbackAttempt.create(callback=cb.id, tag=tag, started_at=now, by=by[:64])
        condition = _claimed(cb) | ((Callback.status == "cancelled") & Callback.tag.is_null())
        return _update(
            cb.id,
            condition & (Callback.attempts == cb.attempts),
            tag=tag,
            attempts=Callback.attempts + 1,
            claimed_until=deadline,
            updated_at=now,
        )


def unplaced(cb: Callback, by: str, now: datetime) -> Callback | None:
    """Count the claimed callback's attempt as failed without a call: the PBX refused the originate,
    or the worker stopped before recording its tag. The callback comes back with that attempt current."""
    tag = f"unplaced-{cb.id}-{cb.attempts + 1}"
    with db_proxy.atomic():
        changed = _update(
            cb.id,
            _claimed(cb) & (Callback.attempts == cb.attempts),
            tag=tag,
            attempts=Callback.attempts + 1,
            last_outcome="failed",
            updated_at=now,
        )
        if not changed:
            return None
        CallbackAttempt.create(callback=cb.id, tag=tag, started_at=now, ended_at=now, outcome="failed", by=by)
    return get(cb.id)


def _claimed(cb: Callback) -> pw.Expression:
    return (Callback.status == "in_progress") & Callback.tag.is_null()


def finish_attempt(tag: str, outcome: str, call_id: str | None, now: datetime) -> Callback | None:
    """Record the outcome of the attempt tagged `tag`, once: the callback when this call recorded it,
    None when the outcome was known already (or the tag is no attempt's)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
    with db_proxy.atomic():
        changed = (
            CallbackAttempt.update(outcome=outcome, call_id=call_id, ended_at=now)
            .where(CallbackAttempt.tag == tag, CallbackAttempt.outcome.is_null())
            .execute()
        )
        if changed != 1:
            return None
        cb = by_tag(tag)
        assert cb is not None  # the attempt row just changed names its callback
        Callback.update(last_outcome=outcome, updated_at=now).where(
            Callback.id == cb.id, Callback.tag == tag
        ).execute()
    return get(cb.id)


def settle(
    cb: Callback, *, status: str, now: datetime, due_at: datetime | None = None, reason: str | None = None
) -> bool:
    """After the attempt `cb.tag`: done, failed, or pending again at `due_at`. Only while that attempt is
    still the callback's current one (a cancelled callback stays cancelled)."""
    if status not in ("pending", "done", "failed") or (status == "pending") != (due_at is not None):
        raise ValueError("settle: pending needs a due_at; done and failed take none")
    values: dict[str, Any] = {"status": status, "tag": None, "claimed_until": None, "updated_at": now}
    values["reason"] = None if reason is None else _reason(reason)
    if due_at is not None:
        values["due_at"] = due_at
    current = (Callback.status == "in_progress") & (Callback.tag == cb.tag)
    return cb.tag is not None and _update(cb.id, current, **values)


def extend(cb: Callback, deadline: datetime) -> bool:
    """The attempt's call is still up: wait for its end until `deadline`."""
    current = (Callback.status == "in_progress") & (Callback.tag == cb.tag)
    return cb.tag is not None and _update(cb.id, current, claimed_until=deadline)


def to_dict(cb: Callback) -> dict[str, Any]:
    """The JSON of a callback for the panel and the API (times in ISO 8601 UTC)."""
    return {
        "id": cb.id,
        "policy": cb.policy,
        "pbx": cb.pbx,
        "number": cb.number,
        "name": cb.name,
        "source": cb.source,
        "missed_call": cb.missed_call,
        "queue": cb.queue,
        "agent": cb.agent,
        "status": cb.status,
        "due_at": iso(cb.due_at),
        "attempts": cb.attempts,
        "last_outcome": cb.last_outcome,
        "reason": cb.reason,
        "created_at": iso(cb.created_at),
        "updated_at": iso(cb.updated_at),
    }
