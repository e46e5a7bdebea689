"""The caller directory: who has this number, asked of the CRMs in their configured order, cached.

Every lookup path (screen-pop, FastAGI, outbound socket, the panel's test button) goes through
here, so a number rung to twenty agents at once costs the CRMs one request: concurrent
lookups of one number wait for the first (single-flight), and its answer is cached, in
Redis when several processes share the work. What is cached follows what is known:

- contacts found: kept `ttl` (shorter, `negative_ttl`, when a CRM before the one that found
  them failed, so that preferred CRM is asked again soon);
- every CRM answered and nobody has the number: kept `negative_ttl`;
- nobody found but a CRM failed: not kept, since the CRM that was down may know the caller.

Entries are JSON under versioned keys; a reverse index (contact -> number keys) in the cache
itself lets a CRM's change notice drop every number that shows that contact, in any process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pbxlink.domain.crm import Connector, Contact, CrmAuthError, CrmError, CrmUnavailable
from pbxlink.domain.phone import PhoneNumbers, PhoneQuery
from pbxlink.domain.ports import Cache

log = logging.getLogger(__name__)

#: Every key of the directory; bump the version whenever the stored shape changes.
PREFIX = "lookup:"
VERSION = "v1"
#: Seconds between two log lines about the same failing CRM (the ones in between are counted).
FAILURE_LOG_INTERVAL = 60.0


@dataclass(frozen=True)
class LookupResult:
    """The answer about one number, as the pop page, the AGI server and the panel get it."""

    number: str  # as asked
    key: str | None  # PhoneQuery.key; None: not a phone number, nothing looked up
    contacts: tuple[Contact, ...]  # best first, from the first CRM (in config order) that found any
    errors: tuple[str, ...]  # one line per CRM that failed
    cached: bool
    looked_up_at: datetime

    @property
    def best(self) -> Contact | None:
        return self.contacts[0] if self.contacts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "key": self.key,
            "contacts": [c.to_dict() for c in self.contacts],
            "errors": list(self.errors),
            "cached": self.cached,
            "looked_up_at": self.looked_up_at.isoformat(),
        }


@dataclass
class _Flight:
    """One lookup under way; later askers of the same number wait for its result."""

    done: threading.Event = field(default_factory=threading.Event)
    result: LookupResult | None = None


class CallerDirectory:
    """Contacts by phone number from the CRMs, in order, cached; safe to call from many threads."""

    def __init__(
        self,
        connectors: Sequence[Connector],
        cache: Cache,
        phones: PhoneNumbers,
        ttl: float = 300,
        negative_ttl: float = 60,
    ) -> None:
        self.connectors = tuple(connectors)
        self.cache = cache
        self.phones = phones
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._failures = _FailureLog()

    def cached(self, number: str) -> LookupResult | None:
        """What the cache holds for `number`; never waits for a CRM."""
        q = self.phones.query(number)
        return None if q is None else self._read(number, q.key)

    def lookup(self, number: str) -> LookupResult:
        """The cached answer, else the CRMs' (asked once however many threads want it at the same time)."""
        q = self.phones.query(number)
        if q is None:
            return LookupResult(number, None, (), (), cached=False, looked_up_at=datetime.now(UTC))
        hit = self._read(number, q.key)
        if hit is not None:
            return hit
        with self._lock:
            flight = self._flights.get(q.key)
            leader = flight is None
            if flight is None:
                flight = self._flights[q.key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.result is None:  # the leader died of an unexpected error: ask on our own
                return self._ask(number, q)
            return replace(flight.result, number=number)
        try:
            # Another leader may have finished between our miss and taking the lead.
            flight.result = self._read(number, q.key) or self._ask(number, q)
            return flight.result
        finally:
            with self._lock:
                del self._flights[q.key]
            flight.done.set()

    def invalidate(
        self, number: str | None = None, *, crm: str | None = None, contact_id: str | None = None
    ) -> int:
        """Drop `number`'s entry, and/or every entry showing contact `contact_id` of CRM `crm`;
        return how many entries were dropped."""
        if number is None and (crm is None or contact_id is None):
            raise ValueError("invalidate needs a number, or both crm and contact_id")
        keys: list[str] = []
        if number is not None and (q := self.phones.query(number)) is not None:
            keys.append(_number_key(q.key))
        if crm is not None and contact_id is not None:
            index = _index_key(crm, contact_id)
            keys += [_number_key(k) for k in _json_list(self.cache.get(index))]
            self.cache.delete(index)
        present = [k for k in dict.fromkeys(keys) if self.cache.get(k) is not None]
        if present:
            self.cache.delete(*present)
        return len(present)

    def clear(self) -> int:
        """Drop every cached lookup (of every format version); return how many keys went."""
        return self.cache.clear(PREFIX)

    def _read(self, number: str, key: str) -> LookupResult | None:
        raw = self.cache.get(_number_key(key))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return LookupResult(
                number=number,
                key=key,
                contacts=tuple(Contact.from_dict(c) for c in data["contacts"]),
                errors=tuple(data["errors"]),
                cached=True,
                looked_up_at=datetime.fromisoformat(data["at"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("cached lookup of %s is unreadable (%s): dropped, the CRMs are asked again", key, exc)
            self.cache.delete(_number_key(key))
            return None

    def _ask(self, number: str, q: PhoneQuery) -> LookupResult:
        contacts: list[Contact] = []
        errors: list[str] = []
        for connector in self.connectors:
            try:
                contacts = connector.find_contacts(q)
            except Exception as exc:  # a connector's bug must not break the pop either
                errors.append(self._failures.record(connector.name, q.key, exc))
                continue
            if contacts:
                break
        result = LookupResult(number, q.key, tuple(contacts), tuple(errors), False, datetime.now(UTC))
        self._store(q.key, result)
        return result

    def _store(self, key: str, result: LookupResult) -> None:
        if not result.contacts:
            if not result.errors:
                self._put(key, result, self.negative_ttl)
            return
        self._put(key, result, min(self.ttl, self.negative_ttl) if result.errors else self.ttl)
        with self._index_lock:  # read-modify-write: serialized in this process; across processes, last wins
            for contact in {(c.crm, c.id) for c in result.contacts}:
                index = _index_key(*contact)
                keys = _json_list(self.cache.get(index))
                if key not in keys:
                    keys.append(key)
                # Indexed entries live `ttl` at most, so the index outlives every entry it lists.
                self.cache.set(index, json.dumps(keys), max(self.ttl, self.negative_ttl))

    def _put(self, key: str, result: LookupResult, ttl: float) -> None:
        value = {
            "contacts": [c.to_dict() for c in result.contacts],
            "errors": list(result.errors),
            "at": result.looked_up_at.isoformat(),
        }
        self.cache.set(_number_key(key), json.dumps(value), ttl)


class _FailureLog:
    """One log line per failing CRM a minute at most, saying what to do; the rest are counted."""

    def __init__(self, interval: float = FAILURE_LOG_INTERVAL) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, crm: str, key: str, exc: Exception) -> str:
        """Log the failure (unless logged lately) and return its line for `LookupResult.errors`."""
        detail = (str(exc).splitlines() or [""])[0].removeprefix(f"{crm}:").strip() or type(exc).__name__
        if not isinstance(exc, CrmError):
            detail = f"unexpected error ({type(exc).__name__}: {detail})"
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(crm, -self.interval) < self.interval:
                self._quiet[crm] = self._quiet.get(crm, 0) + 1
                return f"{crm}: {detail}"
            self._last[crm] = now
            quiet = self._quiet.pop(crm, 0)
        more = f" ({quiet} more failures since the last report)" if quiet else ""
        if isinstance(exc, CrmError):
            log.warning("CRM %s could not look up %s: %s; %s%s", crm, key, detail, _advice(exc), more)
        else:
            log.error(
                "CRM %s could not look up %s: a bug in its connector, please report it%s",
                crm,
                key,
                more,
                exc_info=exc,
            )
        return f"{crm}: {detail}"


def _advice(exc: CrmError) -> str:
    if isinstance(exc, CrmAuthError):
        return "check its API key or token and its permissions in the CRM settings"
    if isinstance(exc, CrmUnavailable):
        return "it is asked again on the next call; check that the CRM is up and reachable from pbxlink"
    return "check its settings (URL, field mapping) with the panel's test lookup"


def _number_key(key: str) -> str:
    return f"{PREFIX}{VERSION}:n:{key}"


def _index_key(crm: str, contact_id: str) -> str:
    return f"{PREFIX}{VERSION}:c:{crm}:{contact_id}"


def _json_list(raw: str | None) -> list[str]:
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [k for k in value if isinstance(k, str)] if isinstance(value, list) else []
