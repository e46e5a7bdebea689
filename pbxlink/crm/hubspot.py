"""HubSpot (CRM v3) through a private app's access token.

Lookup: one contact search (`POST /crm/v3/objects/contacts/search`) whose filter groups (ORed)
ask for the national number as a token of `hs_searchable_calculated_phone_number` and
`hs_searchable_calculated_mobile_number` (HubSpot's digits-only copies of `phone` and
`mobilephone`, without country code, so "(555) 123-4567" and "+1 555-123-4567" both match), and
for the E.164 form in `phone`/`mobilephone` themselves; paged by `after`, at most `MAX_PAGES`
pages, most recently modified first. Only contacts whose phone or mobile really is the number are
kept. Owners come from `/crm/v3/owners/{id}` (cached); the best match's open deals from one deals
search on `associations.contact`.

Call logging: a call engagement (`POST /crm/v3/objects/calls`) associated with the contact.
HubSpot's create takes no idempotency key, so the call's key goes into `hs_call_external_id` and
the calls search is asked for it before creating. The create is never retried blindly (after a
lost response that would make a second call): the caller's outbox comes back later and the search
finds the first. But HubSpot's search index trails a write by seconds: until `SEARCH_LAG` has passed
since a create whose answer was lost, a retry that does not find the call is put off, not created.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from pbxlink.config import CrmConfig
from pbxlink.crm._saas import OwnerNames, html_note, search_digits, subject
from pbxlink.crm.http import HttpClient
from pbxlink.crm.options import Options
from pbxlink.domain.calls import iso
from pbxlink.domain.crm import CallLogEntry, Contact, CrmError, CrmRequestError, CrmUnavailable, Deal
from pbxlink.domain.phone import PhoneQuery, numbers
from pbxlink.domain.ports import CheckResult

log = logging.getLogger(__name__)

API_URL = "https://api.hubapi.com"
APP_URL = "https://app.hubspot.com"
PAGE = 100
MAX_PAGES = 3
MAX_CONTACTS = 10
MAX_DEALS = 5
SEARCH_LAG = 60.0  # seconds HubSpot's search may take to show a call just created
CALL_TO_CONTACT = 194  # HUBSPOT_DEFINED association type: call -> contact
CONTACT_PROPERTIES = ["firstname", "lastname", "email", "company", "phone", "mobilephone", "hubspot_owner_id"]
PHONE_PROPERTIES = ("phone", "mobilephone")
SEARCHABLE = ("hs_searchable_calculated_phone_number", "hs_searchable_calculated_mobile_number")
SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.deals.read",
    "crm.objects.owners.read",
)
DIRECTIONS = {"inbound": "INBOUND", "outbound": "OUTBOUND"}
#: HubSpot's default call outcomes (hs_call_disposition), the same GUIDs in every portal
CONNECTED, NO_ANSWER, BUSY = (
    "f240bbac-87c9-4f6e-bf70-924b57d47db7",
    "73a0d17f-1163-4015-bdd5-ec830791da20",
    "9d9162e7-6cf3-4944-bf63-4dff82258764",
)


class HubSpot:
    kind = "hubspot"

    def __init__(
        self, name: str, http: HttpClient, token: str, portal_id: str, app_url: str = APP_URL
    ) -> None:
        self.name = name
        self.http = http
        self._token = token
        self.portal_id = portal_id
        self.app_url = app_url
        self.owners = OwnerNames(name, self._owner_name)
        self._unsure: dict[str, float] = {}  # call key -> when its create's answer was lost (monotonic)

    def find_contacts(self, number: PhoneQuery) -> list[Contact]:
        same = numbers().same
        matches: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {}
        for record in self._search(number):
            props = record.get("properties") or {}
            phones = tuple(dict.fromkeys(p for key in PHONE_PROPERTIES if (p := props.get(key))))
            if any(same(number, p) for p in phones):
                matches.setdefault(str(record["id"]), (props, phones))
        best = list(matches.items())[:MAX_CONTACTS]
        contacts = [self._contact(cid, props, phones) for cid, (props, phones) in best]
        if contacts:
            contacts[0] = replace(contacts[0], deals=self._open_deals(contacts[0].id))
        return contacts

    def log_call(self, entry: CallLogEntry) -> str:
        existing = self._logged(entry.key)
        if existing:
            log.info("%s: call %s is already logged as HubSpot call %s", self.name, entry.key, existing)
            self._unsure.pop(entry.key, None)
            return existing
        lost_at = self._unsure.get(entry.key)
        if lost_at is not None and (wait := SEARCH_LAG - (time.monotonic() - lost_at)) > 0:
            raise CrmUnavailable(
                f"{self.name}: call {entry.key} may have been created a moment ago and HubSpot's search "
                "does not show it yet; trying again later rather than logging it twice",
                retry_after=wait,
            )
        body: dict[str, Any] = {"properties": _call_properties(entry)}
        if entry.contact_id:
            types = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": CALL_TO_CONTACT}]
            body["associations"] = [{"to": {"id": entry.contact_id}, "types": types}]
        try:
            created = self.http.json("POST", "/crm/v3/objects/calls", json=body, retry=False)
        except CrmUnavailable:
            self._unsure[entry.key] = time.monotonic()  # HubSpot may have stored it all the same
            raise
        self._unsure.pop(entry.key, None)
        if not isinstance(created, dict) or not created.get("id"):
            raise CrmRequestError(f"{self.name}: POST /crm/v3/objects/calls answered without the call's id")
        return str(created["id"])

    def contact_url(self, contact_id: str) -> str:
        return self._record_url("0-1", contact_id)

    def check(self) -> CheckResult:
        what = f"CRM {self.name} ({self.kind})"
        try:
            info = self.http.json(
                "POST",
                "/oauth/v2/private-apps/get/access-token-info",
                json={"tokenKey": self._token},
                retry=False,
            )
        except CrmUnavailable as exc:
            return CheckResult(False, what, f"HubSpot unreachable or failing: {exc}")
        except CrmError as exc:
            return CheckResult(False, what, f"{exc}; use the access token of a HubSpot private app")
        info = info if isinstance(info, dict) else {}
        hub = str(info.get("hubId") or self.portal_id)
        missing = ", ".join(s for s in SCOPES if s not in (info.get("scopes") or ()))
        if hub != self.portal_id:
            return CheckResult(
                False, what, f"the token is for portal {hub}, not {self.portal_id}: set portal_id = {hub}"
            )
        if missing:
            return CheckResult(
                False, what, f"the private app lacks {missing}: add the scope(s), then use its new token"
            )
        return CheckResult(True, what, f"token accepted for portal {hub}, with every scope needed")

    def _search(self, q: PhoneQuery) -> Iterator[dict[str, Any]]:
        token = "*" + search_digits(q)
        conditions = [_cond(prop, "CONTAINS_TOKEN", token) for prop in SEARCHABLE]
        if q.e164:
            conditions += [_cond(prop, "EQ", q.e164) for prop in PHONE_PROPERTIES]
        body: dict[str, Any] = {
            "filterGroups": [{"filters": [c]} for c in conditions],  # ORed
            "properties": CONTACT_PROPERTIES,
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
            "limit": PAGE,
        }
        for _ in range(MAX_PAGES):
            page = self.http.json("POST", "/crm/v3/objects/contacts/search", json=body) or {}
            yield from page.get("results") or ()
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            body = {**body, "after": after}

    def _contact(self, cid: str, props: dict[str, Any], phones: tuple[str, ...]) -> Contact:
        name = " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
        return Contact(
            crm=self.name,
            id=cid,
            name=name or props.get("email") or phones[0],
            company=props.get("company") or None,
            owner=self.owners.get(props.get("hubspot_owner_id")),
            url=self.contact_url(cid),
            phones=phones,
        )

    def _owner_name(self, owner_id: str) -> str | None:
        owner = self.http.json("GET", f"/crm/v3/owners/{quote(owner_id, safe='')}") or {}
        name = " ".join(p for p in (owner.get("firstName"), owner.get("lastName")) if p)
        return name or owner.get("email") or None

    def _open_deals(self, contact_id: str) -> tuple[Deal, ...]:
        """The contact's open deals, or none when HubSpot will not say (the lookup is still worth having)."""
        filters = [_cond("associations.contact", "EQ", contact_id), _cond("hs_is_closed", "EQ", "false")]
        body = {
            "filterGroups": [{"filters": filters}],
            "properties": ["dealname", "amount", "deal_currency_code", "dealstage"],
            "limit": MAX_DEALS,
        }
        try:
            page = self.http.json("POST", "/crm/v3/objects/deals/search", json=body) or {}
        except CrmError as exc:
            log.warning("%s: open deals of contact %s left out: %s", self.name, contact_id, exc)
            return ()
        return tuple(self._deal(record) for record in page.get("results") or ())

    def _deal(self, record: dict[str, Any]) -> Deal:
        props, did = record.get("properties") or {}, str(record["id"])
        amount = " ".join(p for p in (props.get("amount"), props.get("deal_currency_code")) if p)
        title = props.get("dealname") or f"Deal {did}"
        return Deal(title, amount or None, props.get("dealstage") or None, self._record_url("0-3", did))

    def _logged(self, key: str) -> str | None:
        body = {
            "filterGroups": [{"filters": [_cond("hs_call_external_id", "EQ", key)]}],
            "properties": ["hs_call_external_id"],
            "limit": 1,
        }
        page = self.http.json("POST", "/crm/v3/objects/calls/search", json=body) or {}
        results = page.get("results") or []
        return str(results[0]["id"]) if results else None

    def _record_url(self, object_type: str, record_id: str) -> str:
        return f"{self.app_url}/contacts/{self.portal_id}/record/{object_type}/{quote(record_id, safe='')}"


def _cond(prop: str, operator: str, value: str) -> dict[str, str]:
    return {"propertyName": prop, "operator": operator, "value": value}


def _call_properties(entry: CallLogEntry) -> dict[str, str]:
    inbound = entry.direction != "outbound"
    agent = entry.agent or ""
    if entry.answered:
        status, outcome = "COMPLETED", CONNECTED
    elif entry.miss_reason == "busy":
        status, outcome = "BUSY", BUSY
    else:
        status, outcome = ("FAILED" if entry.miss_reason == "failed" else "NO_ANSWER"), NO_ANSWER
    props = {
        "hs_timestamp": iso(entry.started_at) or "",
        "hs_call_title": subject(entry),
        "hs_call_body": html_note(entry),
        "hs_call_direction": DIRECTIONS.get(entry.direction, ""),
        "hs_call_status": status,
        "hs_call_disposition": outcome,
        "hs_call_duration": str(round(entry.duration_s * 1000)),
        "hs_call_from_number": entry.number if inbound else agent,
        "hs_call_to_number": agent if inbound else entry.number,
        "hs_call_recording_url": entry.recording_url or "",
        "hs_call_external_id": entry.key,
    }
    return {k: v for k, v in props.items() if v}


def from_config(cfg: CrmConfig) -> HubSpot:
    opts = Options(cfg)
    token = opts.secret("token")
    portal = opts.get("portal_id")
    if portal is None:
        raise opts.fail("portal_id", "missing (the number after /contacts/ in your HubSpot address bar)")
    if isinstance(portal, bool) or not str(portal).strip().isdigit():
        raise opts.fail("portal_id", "expected the portal's number, e.g. 1234567")
    api_url = opts.url("api_url", API_URL)
    app_url = opts.url("app_url", APP_URL)
    opts.done()
    http = HttpClient(
        cfg.name, api_url, timeout=cfg.timeout, headers={"Authorization": f"Bearer {token}"}, secrets=[token]
    )
    return HubSpot(cfg.name, http, token, str(portal).strip(), app_url)
