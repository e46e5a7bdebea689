"""The global do-not-call list: numbers no campaign may dial, whatever list they arrive in.

Entries are keyed by `PhoneNumbers.key`, the same key contacts carry, so `0212 555 0100`,
`+1 212-555-0100` and `12125550100` are one entry and match one contact. The import checks
whole batches at once (`blocked_keys`); the dialer checks each contact again right before
it dials (`blocked`), so a number added during a campaign is never called.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

import peewee as pw

from pbxlink.domain.calls import iso
from pbxlink.domain.phone import PhoneNumbers, numbers
from pbxlink.storage.models import DncEntry, db_proxy, utcnow
from pbxlink.storage.outbox import one_line

CHUNK = 500  # keys per query: far below every database's limit on bound parameters
MAX_REASON = 255
MAX_BY = 64


def normalize(number: str, phones: PhoneNumbers | None = None) -> tuple[str, str]:
    """(key, number as stored: E.164 when known), or ValueError saying why `number` is no phone number."""
    if not number.isprintable():
        raise ValueError("a phone number may not contain line breaks or control characters")
    q = (phones or numbers()).query(number)
    if q is None:
        raise ValueError(f"{number.strip()[:40]!r} is not a phone number (it needs at least 7 digits)")
    return q.key, q.e164 or q.digits


def add(
    number: str, reason: str | None, by: str | None, phones: PhoneNumbers | None = None
) -> tuple[DncEntry, bool]:
    """(the entry for `number`, whether this call added it); an entry already there is left unchanged."""
    key, stored = normalize(number, phones)
    for _ in range(2):  # another process may add the same number between our look and our insert
        existing = DncEntry.get_or_none(DncEntry.number_key == key)
        if existing is not None:
            return existing, False
        try:
            with db_proxy.atomic():  # a savepoint: PostgreSQL's transaction survives the refusal
                entry = DncEntry.create(
                    number=stored,
                    number_key=key,
                    reason=_reason(reason),
                    added_by=None if by is None else by[:MAX_BY],
                    added_at=utcnow(),
                )
            return entry, True
        except pw.IntegrityError:
            continue
    raise RuntimeError(f"do-not-call entry for {key}: could not insert nor find it")


def add_many(entries: Sequence[tuple[str, str, str | None]], by: str | None) -> int:
    """Add (key, number, reason) entries made by `normalize`; those already listed stay as they are.

    How many were new."""
    added = 0
    now = utcnow()
    for start in range(0, len(entries), CHUNK):
        rows = [
            {
                "number": number,
                "number_key": key,
                "reason": _reason(reason),
                "added_by": None if by is None else by[:MAX_BY],
                "added_at": now,
            }
            for key, number, reason in entries[start : start + CHUNK]
        ]
        with db_proxy.atomic():
            added += DncEntry.insert_many(rows).on_conflict_ignore().as_rowcount().execute()
    return added


def remove(id_or_number: int | str) -> bool:
    """Take an entry off the list: by its id (an int), or by a number in any of its forms (ValueError
    when it is none); whether there was one."""
    if isinstance(id_or_number, int):
        where = DncEntry.id == id_or_number
    else:
        where = DncEntry.number_key == normalize(id_or_number)[0]
    return bool(DncEntry.delete().where(where).execute())


def blocked(number_key: str) -> bool:
    return DncEntry.select().where(DncEntry.number_key == number_key).exists()


def blocked_keys(keys: Iterable[str]) -> set[str]:
    """Those of `keys` on the list, in one query per CHUNK keys."""
    wanted = list(dict.fromkeys(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        query = DncEntry.select(DncEntry.number_key).where(DncEntry.number_key.in_(chunk))
        found.update(key for (key,) in cast(Iterable[tuple[str]], query.tuples()))
    return found


def page(search: str | None, limit: int, offset: int = 0) -> tuple[list[DncEntry], int]:
    """(entries newest first, how many match): `search` finds digits in the number or words in the reason."""
    query = DncEntry.select()
    text = (search or "").strip()
    if text:
        digits = "".join(c for c in text if c.isdigit())
        match = DncEntry.reason.contains(text)
        if digits:
            match |= DncEntry.number.contains(digits)
        query = query.where(match)
    total = query.count()
    rows = list(query.order_by(DncEntry.added_at.desc(), DncEntry.id.desc()).limit(limit).offset(offset))
    return rows, total


def count() -> int:
    return int(DncEntry.select().count())


def to_dict(entry: DncEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "number": entry.number,
        "number_key": entry.number_key,
        "reason": entry.reason,
        "added_by": entry.added_by,
        "added_at": iso(entry.added_at),
    }


def _reason(reason: str | None) -> str | None:
    return (one_line(reason, MAX_REASON) or None) if reason else None
