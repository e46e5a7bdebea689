"""Who is calling, for the phones and the dialplan: the CRMs first, the call log behind them.

The CRMs (through the cached caller directory) know the caller's name and the contact's
owner, whose extension is the best routing hint. When no CRM knows the number, the call
log still does: the caller ID name seen on earlier calls, and the agent who last talked
with them ("sticky agent"), so a returning customer reaches the person who knows their case.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pbxlink.domain.crm import Contact
from pbxlink.domain.phone import PhoneNumbers, PhoneQuery, numbers
from pbxlink.domain.ports import CallerInfo, CallerLookup
from pbxlink.services.directory import CallerDirectory
from pbxlink.storage.calls import CallFilter, search_calls

#: `Contact.kind`s (in the CRMs' own words) whose record is an organisation, not a person.
COMPANY_KINDS = frozenset({"company", "organization", "organisation", "account"})


class CrmCallerLookup:
    """`CallerLookup` over the CRMs: the best contact's name, id and owner, and the owner's extension
    as the routing hint (else the fallback's sticky agent); the fallback alone when no CRM has the number."""

    def __init__(self, directory: CallerDirectory, fallback: CallerLookup | None = None) -> None:
        self.directory = directory
        self.fallback = fallback

    def lookup(self, number: str) -> CallerInfo | None:
        best = self.directory.lookup(number).best
        if best is None:
            return self.fallback.lookup(number) if self.fallback else None
        hint = best.owner_extension
        if hint is None and self.fallback is not None:
            known = self.fallback.lookup(number)
            hint = known.hint if known else None
        return CallerInfo(name=_display_name(best), hint=hint, contact_id=best.id, owner=best.owner)


class CallLogLookup:
    """`CallerLookup` over the call log: the newest name seen for the number and its last agent.

    Only the `max_calls` newest calls of the last `max_age` are read, so one lookup is one
    small indexed query however long the caller's history. `phones` defaults to the site's
    rules as configured at start-up.
    """

    def __init__(
        self,
        max_calls: int = 50,
        max_age: timedelta | None = timedelta(days=180),
        phones: PhoneNumbers | None = None,
    ) -> None:
        self.max_calls = max_calls
        self.max_age = max_age
        self._phones = phones

    def lookup(self, number: str) -> CallerInfo | None:
        phones = self._phones or numbers()
        q = phones.query(number)
        if q is None:  # an extension, "anonymous": nothing to look up
            return None
        since = datetime.now(UTC) - self.max_age if self.max_age is not None else None
        calls, _ = search_calls(CallFilter(number=number, since=since), limit=self.max_calls)
        name = next((c["caller_name"].strip() for c in calls if _named_caller(c, q, phones)), None)
        hint = next((a for c in calls if (a := _last_agent(c)) is not None), None)
        return CallerInfo(name=name, hint=hint) if name or hint else None


def _display_name(contact: Contact) -> str | None:
    """What the phone shows: the person's name, or the company's for a company record."""
    if contact.kind.lower() in COMPANY_KINDS:
        return contact.company or contact.name or None
    return contact.name or contact.company or None


def _named_caller(call: Mapping[str, Any], q: PhoneQuery, phones: PhoneNumbers) -> bool:
    """A call this number placed, with a caller ID name other than the number itself."""
    name = call.get("caller_name")
    return (
        isinstance(name, str)
        and bool(name.strip())
        and not phones.same(q, name)
        and phones.same(q, call.get("caller"))
    )


def _last_agent(call: Mapping[str, Any]) -> str | None:
    """The agent who talked last on an answered call (after transfers: the transferee)."""
    if call.get("disposition") != "answered":
        return None
    agents = call.get("agents") or []
    last = agents[-1] if agents else call.get("agent")
    return last if isinstance(last, str) and last else None
