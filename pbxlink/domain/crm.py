"""What the services need of a CRM, whichever it is: find a caller, log a call, link to a contact.

Each CRM module in `pbxlink/crm/` implements `Connector`; nothing outside it knows a
CRM's API. Errors are sorted by what the caller should do: retry later
(`CrmUnavailable`: down, timed out, rate-limited past our patience) or not (`CrmAuthError`:
a bad key stays bad; `CrmRequestError`: the CRM refused this request as such).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pbxlink.domain.phone import PhoneQuery
from pbxlink.domain.ports import CheckResult


class CrmError(Exception):
    """A CRM request failed; the message is one line for the admin (never a token or a password)."""

    retryable = False


class CrmUnavailable(CrmError):
    """Down, timed out, 5xx, or 429 for longer than we wait: try again later."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the CRM asked us to wait, when it said


class CrmAuthError(CrmError):
    """401/403: the key is wrong, expired or lacks a permission; retrying will not help."""


class CrmRequestError(CrmError):
    """The CRM refused the request itself (400, 404, 422 …): the message says what it answered."""


@dataclass(frozen=True)
class Deal:
    """An open deal (opportunity, lead) of the contact, as shown on the screen-pop."""

    title: str
    amount: str | None = None  # already formatted with its currency, as the CRM gives it
    stage: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Contact:
    """One CRM record that has the caller's number."""

    crm: str  # the connector's configured name
    id: str
    name: str
    company: str | None = None
    owner: str | None = None  # the owner's name or e-mail, for the pop and owner routing
    owner_extension: str | None = None  # when the CRM knows the owner's phone extension
    url: str | None = None  # opens the record in the CRM
    phones: tuple[str, ...] = ()
    deals: tuple[Deal, ...] = ()
    kind: str = "contact"  # contact, person, partner, lead, company … in the CRM's own words

    def to_dict(self) -> dict[str, Any]:
        return {
            "crm": self.crm,
            "id": self.id,
            "name": self.name,
            "company": self.company,
            "owner": self.owner,
            "owner_extension": self.owner_extension,
            "url": self.url,
            "phones": list(self.phones),
            "deals": [vars(d) for d in self.deals],
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Contact:
        return cls(
            crm=d["crm"],
            id=d["id"],
            name=d["name"],
            company=d.get("company"),
            owner=d.get("owner"),
            owner_extension=d.get("owner_extension"),
            url=d.get("url"),
            phones=tuple(d.get("phones") or ()),
            deals=tuple(Deal(**x) for x in d.get("deals") or ()),
            kind=d.get("kind") or "contact",
        )


Direction = Literal["inbound", "outbound", "internal"]


@dataclass(frozen=True)
class CallLogEntry:
    """A finished call as a CRM logs it. `key` identifies the call: logging the same key twice
    must leave one entry in the CRM (a retry after a lost response is the normal case)."""

    key: str  # "<pbx>:<call_id>", stable across retries and restarts
    direction: Direction
    number: str  # the customer's number, E.164 when known
    started_at: datetime
    duration_s: float  # talk time; 0 for a missed call
    disposition: str  # "answered" or "missed"
    miss_reason: str | None = None
    agent: str | None = None  # extension of the agent who talked last
    caller_name: str | None = None
    recording_url: str | None = None
    contact_id: str | None = None  # this CRM's contact for the number, when one was found
    owner: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.disposition == "answered"


class Connector(Protocol):
    """One configured CRM. Called from worker threads; every call is bounded by the connector's timeout."""

    name: str  # the admin's name for it, unique in the config
    kind: str  # "hubspot", "pipedrive", "odoo", "bitrix24", "zoho", "rest"

    def find_contacts(self, number: PhoneQuery) -> list[Contact]:
        """The records whose phone is `number` (compared as E.164, else by tail), best first."""
        ...

    def log_call(self, entry: CallLogEntry) -> str:
        """Log the call, once per `entry.key`; return the CRM's id of the logged call."""
        ...

    def contact_url(self, contact_id: str) -> str:
        """The page that opens the contact in the CRM's web app."""
        ...

    def check(self) -> CheckResult:
        """Whether the credentials work and have the permissions pbxlink needs, in one line."""
        ...
