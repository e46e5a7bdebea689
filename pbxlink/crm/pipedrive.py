"""Pipedrive (API v1) through a user's personal API token, sent in the `x-api-token` header.

Lookup: `GET /persons/search?term=<national number>&fields=phone`, not exact: Pipedrive matches
the digits inside the stored phone numbers, so "(555) 123-4567", "+1 555-123-4567" and
"0044 20 7946 0958" are all found by their national number (an exact match would miss every
formatted one). Paged by `start`/`more_items_in_collection`, at most `MAX_PAGES` pages; only
persons with a phone that really is the number are kept, in Pipedrive's relevance order. Owner
names come from `/users/{id}` (cached); the best match's open deals from one
`/persons/{id}/deals?status=open`.

Call logging: a done activity of type `call` (`POST /activities`) on the person. Pipedrive has no
idempotency key or external id for activities, so the note carries a marker derived from the call's
key (`_callnote.marker`), and the activities that could hold it are searched before creating: the
person's done activities, or, for a caller without a person, the token user's done calls on that
day (activities created through the API belong to the token's user). The create is never retried
blindly; the caller's outbox comes back later and the search finds the first.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC
from typing import Any
from urllib.parse import quote

from pbxlink.config import CrmConfig
from pbxlink.crm import _callnote
from pbxlink.crm._saas import OwnerNames, html_note, search_digits, subject
from pbxlink.crm.http import HttpClient
from pbxlink.crm.options import Options
from pbxlink.domain.crm import CallLogEntry, Contact, CrmAuthError, CrmError, CrmRequestError, Deal
from pbxlink.domain.phone import PhoneQuery, numbers
from pbxlink.domain.ports import CheckResult

log = logging.getLogger(__name__)

PAGE = 100
MAX_PAGES = 3
SCAN_PAGE = 100
MAX_SCAN_PAGES = 5
MAX_CONTACTS = 10
MAX_DEALS = 5
_COMPANY = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class Pipedrive:
    kind = "pipedrive"

    def __init__(self, name: str, http: HttpClient, company: str) -> None:
        self.name = name
        self.http = http
        self.company = company
        self.app_url = f"https://{company}.pipedrive.com"
        self.owners = OwnerNames(name, self._owner_name)

    def find_contacts(self, number: PhoneQuery) -> list[Contact]:
        same = numbers().same
        matches: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {}
        params = {"term": search_digits(number), "fields": "phone", "limit": PAGE}
        for page in self._pages("/persons/search", params, MAX_PAGES):
            for found in (page.get("data") or {}).get("items") or ():
                item = found.get("item") or {}
                phones = tuple(dict.fromkeys(p for p in item.get("phones") or () if isinstance(p, str) and p))
                if any(same(number, p) for p in phones):
                    matches.setdefault(str(item["id"]), (item, phones))
        contacts = [self._contact(item, phones) for item, phones in list(matches.values())[:MAX_CONTACTS]]
        if contacts:
            contacts[0] = replace(contacts[0], deals=self._open_deals(contacts[0].id))
        return contacts

    def log_call(self, entry: CallLogEntry) -> str:
        person = _person_id(self.name, entry.contact_id)
        existing = self._logged(entry, person)
        if existing:
            log.info("%s: call %s is already logged as Pipedrive activity %s", self.name, entry.key, existing)
            return existing
        started = entry.started_at.astimezone(UTC)
        body: dict[str, Any] = {
            "subject": subject(entry),
            "type": "call",
            "done": 1,
            "due_date": f"{started:%Y-%m-%d}",
            "due_time": f"{started:%H:%M}",
            "duration": _hours_minutes(entry.duration_s),
            "note": html_note(entry),
        }
        if person is not None:
            body["person_id"] = person
        created = self.http.json("POST", "/activities", json=body, retry=False)
        data = created.get("data") if isinstance(created, dict) else None
        if not isinstance(data, dict) or not data.get("id"):
            raise CrmRequestError(f"{self.name}: POST /activities answered without the activity's id")
        return str(data["id"])

    def contact_url(self, contact_id: str) -> str:
        return f"{self.app_url}/person/{quote(contact_id, safe='')}"

    def check(self) -> CheckResult:
        what = f"CRM {self.name} ({self.kind})"
        try:
            body = self.http.json("GET", "/users/me", retry=False)
        except CrmAuthError as exc:
            hint = "use the API token from Personal preferences > API in Pipedrive"
            return CheckResult(False, what, f"{exc}; {hint}")
        except CrmError as exc:
            return CheckResult(False, what, f"Pipedrive unreachable or failing: {exc}")
        me = (body.get("data") if isinstance(body, dict) else None) or {}
        domain = me.get("company_domain")
        if domain and domain != self.company:
            detail = f'the token is for company "{domain}", not "{self.company}": set company = "{domain}"'
            return CheckResult(False, what, detail)
        user = me.get("name") or me.get("email") or "its user"
        return CheckResult(True, what, f"token of {user} accepted for {self.company}.pipedrive.com")

    def _pages(self, path: str, params: dict[str, Any], max_pages: int) -> Iterator[dict[str, Any]]:
        """The answers of a v1 list, page after page, while Pipedrive says there are more."""
        params = {**params, "start": 0}
        for _ in range(max_pages):
            body = self.http.json("GET", path, params=params)
            if not isinstance(body, dict):
                return
            yield body
            pagination = (body.get("additional_data") or {}).get("pagination") or {}
            if not pagination.get("more_items_in_collection"):
                return
            params = {**params, "start": pagination.get("next_start") or params["start"] + params["limit"]}

    def _contact(self, item: dict[str, Any], phones: tuple[str, ...]) -> Contact:
        cid = str(item["id"])
        owner_id = (item.get("owner") or {}).get("id")
        return Contact(
            crm=self.name,
            id=cid,
            name=item.get("name") or phones[0],
            company=(item.get("organization") or {}).get("name") or None,
            owner=self.owners.get(str(owner_id) if owner_id else None),
            url=self.contact_url(cid),
            phones=phones,
            kind="person",
        )

    def _owner_name(self, user_id: str) -> str | None:
        body = self.http.json("GET", f"/users/{quote(user_id, safe='')}")
        user = (body.get("data") if isinstance(body, dict) else None) or {}
        return user.get("name") or user.get("email") or None

    def _open_deals(self, person_id: str) -> tuple[Deal, ...]:
        """The person's open deals, or none when Pipedrive will not say (the lookup is still worth having)."""
        params = {"status": "open", "start": 0, "limit": MAX_DEALS}
        try:
            body = self.http.json("GET", f"/persons/{quote(person_id, safe='')}/deals", params=params)
        except CrmError as exc:
            log.warning("%s: open deals of person %s left out: %s", self.name, person_id, exc)
            return ()
        deals = (body.get("data") if isinstance(body, dict) else None) or ()
        return tuple(
            Deal(
                title=d.get("title") or f"Deal {d['id']}",
                amount=d.get("formatted_value") or None,
                url=f"{self.app_url}/deal/{d['id']}",
            )
            for d in deals
        )

    def _logged(self, entry: CallLogEntry, person: int | None) -> str | None:
        """The activity already logged for `entry.key`, found by the marker in its note."""
        params: dict[str, Any] = {"done": 1, "limit": SCAN_PAGE}
        if person is not None:
            path = f"/persons/{person}/activities"
        else:
            day = f"{entry.started_at.astimezone(UTC):%Y-%m-%d}"
            path, params = "/activities", {**params, "type": "call", "start_date": day, "end_date": day}
        mark = _callnote.marker(entry.key)
        for page in self._pages(path, params, MAX_SCAN_PAGES):
            for activity in page.get("data") or ():
                if mark in (activity.get("note") or ""):
                    return str(activity["id"])
        return None


def _person_id(crm: str, contact_id: str | None) -> int | None:
    if not contact_id:
        return None
    if not contact_id.isdigit():
        raise CrmRequestError(f"{crm}: contact {contact_id!r} is not a Pipedrive person id")
    return int(contact_id)


def _hours_minutes(seconds: float) -> str:
    """Pipedrive's activity duration (HH:MM), rounded up: a 10-second call took a minute of someone's time."""
    minutes = math.ceil(max(0.0, seconds) / 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def from_config(cfg: CrmConfig) -> Pipedrive:
    opts = Options(cfg)
    token = opts.secret("api_token")
    company = opts.string("company").lower().removesuffix(".pipedrive.com")
    if not _COMPANY.fullmatch(company):
        raise opts.fail(
            "company", "expected the subdomain of your Pipedrive address, e.g. acme for acme.pipedrive.com"
        )
    api_url = opts.url("api_url", f"https://{company}.pipedrive.com/api/v1")
    opts.done()
    http = HttpClient(cfg.name, api_url, timeout=cfg.timeout, headers={"x-api-token": token}, secrets=[token])
    return Pipedrive(cfg.name, http, company)
