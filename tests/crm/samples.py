"""What the connector tests hand a CRM: a caller's number as a lookup gets it, and a finished call to log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pbxlink.domain.crm import CallLogEntry
from pbxlink.domain.phone import PhoneNumbers, PhoneQuery, configure, numbers

NUMBER = "+15551234567"  # the caller of log_entry()'s call


def query(raw: str) -> PhoneQuery:
    """`raw` as the directory hands it to a connector, read by the numbering plan in force."""
    found = numbers().query(raw)
    assert found is not None, f"{raw!r} is not a phone number"
    return found


def log_entry(**overrides: Any) -> CallLogEntry:
    """An answered inbound call as the outbox hands it to a connector; a test overrides what it is about."""
    fields: dict[str, Any] = {
        "key": "asterisk:1714570000.42",
        "direction": "inbound",
        "number": NUMBER,
        "started_at": datetime(2024, 5, 1, 14, 3, 7, tzinfo=UTC),
        "duration_s": 125.0,
        "disposition": "answered",
        "agent": "201",
    }
    return CallLogEntry(**{**fields, **overrides})


@contextmanager
def numbering(region: str) -> Iterator[None]:
    """Numbers read as a site in `region` reads them; the plan is process-wide, so it is put back after."""
    before = numbers()
    configure(PhoneNumbers(region))
    try:
        yield
    finally:
        configure(before)
