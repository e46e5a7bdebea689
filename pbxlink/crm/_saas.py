"""What the HubSpot and Pipedrive connectors share: the digits to search with, the title and HTML
note of a logged call (from `_callnote`'s facts), and owner names kept between lookups (owners
change rarely, and a lookup must stay quick)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import phonenumbers

from pbxlink.crm import _callnote
from pbxlink.domain.crm import CallLogEntry, CrmError, CrmUnavailable
from pbxlink.domain.phone import PhoneQuery

log = logging.getLogger(__name__)


def search_digits(q: PhoneQuery) -> str:
    """The national number (no country code, no trunk prefix) when E.164 is known, else the tail:
    the run of digits that every stored form of the number contains, however it was typed."""
    if q.e164:
        return phonenumbers.national_significant_number(phonenumbers.parse(q.e164))
    return q.tail


def subject(entry: CallLogEntry) -> str:
    """The title of a logged call with the other party, on one line (a caller name may carry CR/LF)."""
    name = " ".join((entry.caller_name or "").split())
    party = f"{name} ({entry.number})" if name and name != entry.number else entry.number
    return f"{_callnote.title(entry)}: {party}"


def html_note(entry: CallLogEntry) -> str:
    """The call as an HTML note, every value escaped; it carries `_callnote.marker(entry.key)`."""
    return _callnote.html(entry, subject(entry))


class OwnerNames:
    """Owner id -> name (or e-mail), kept `ttl` seconds. An owner the CRM does not know or lets us
    not see is remembered as None and logged once; a CRM that is down is asked again next time."""

    def __init__(self, crm: str, fetch: Callable[[str], str | None], ttl: float = 3600.0) -> None:
        self.crm = crm
        self.fetch = fetch
        self.ttl = ttl
        self.lock = threading.Lock()
        self.known: dict[str, tuple[float, str | None]] = {}

    def get(self, owner_id: str | None) -> str | None:
        if not owner_id:
            return None
        now = time.monotonic()
        with self.lock:
            hit = self.known.get(owner_id)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        try:
            name = self.fetch(owner_id)
        except CrmUnavailable:
            return None
        except CrmError as exc:
            log.warning(
                "%s: owner %s left out of lookups for %d min: %s", self.crm, owner_id, self.ttl // 60, exc
            )
            name = None
        with self.lock:
            self.known[owner_id] = (now, name)
        return name
