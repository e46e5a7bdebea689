"""A HubSpot that answers as the CRM v3 API documents: contact, deal and call search (filterGroups
ORed, filters ANDed, EQ and CONTAINS_TOKEN with `*` wildcards, `after` paging, at most 5 groups and
6 filters per group), owners, call creation with associations, private-app token info, a bearer
token on every request, and HubSpot's error bodies (status/message/correlationId/category).

`hs_searchable_calculated_phone_number`/`..._mobile_number` are computed as HubSpot does: the
number's digits without its country code, for whatever format the phone was typed in.
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers

from tests.crm.fake import FakeCrm, Reply, Request

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
PORTAL_ID = 1234567
SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.deals.read",
    "crm.objects.owners.read",
)
CALL_PROPERTIES = {
    "hs_timestamp",
    "hs_call_title",
    "hs_call_body",
    "hs_call_direction",
    "hs_call_status",
    "hs_call_disposition",
    "hs_call_duration",
    "hs_call_from_number",
    "hs_call_to_number",
    "hs_call_recording_url",
    "hs_call_external_id",
    "hubspot_owner_id",
}
CALL_STATUSES = {
    "BUSY",
    "CALLING_CRM_USER",
    "CANCELED",
    "COMPLETED",
    "CONNECTING",
    "FAILED",
    "IN_PROGRESS",
    "NO_ANSWER",
    "QUEUED",
    "RINGING",
}
_EXTENSION = re.compile(r"\s*(?:ext\.?|x|#)\s*\d+\s*$", re.IGNORECASE)


def searchable(phone: str | None) -> str | None:
    """HubSpot's calculated searchable number: digits only, without the country code."""
    if not phone:
        return None
    text = _EXTENSION.sub("", phone).strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith(("+", "00")):
        try:
            parsed = phonenumbers.parse("+" + (digits[2:] if text.startswith("00") else digits))
            return phonenumbers.national_significant_number(parsed)
        except phonenumbers.NumberParseException:
            pass
    return digits


def error(status: int, message: str, category: str, **extra: Any) -> Reply:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}
    return Reply(status, {**body, **extra})


def unauthenticated() -> Reply:
    return error(
        401,
        "Authentication credentials not found. This API supports OAuth 2.0 authentication "
        "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
        "oauth-overview",
        "INVALID_AUTHENTICATION",
    )


def rate_limited(retry_after: str | None = None) -> Reply:
    """HubSpot's 429 for the per-second limit (the test chooses whether a Retry-After comes with it)."""
    reply = error(
        429,
        "You have reached your secondly limit.",
        "RATE_LIMITS",
        errorType="RATE_LIMIT",
        policyName="SECONDLY",
    )
    reply.headers = {"X-HubSpot-RateLimit-Secondly-Remaining": "0"}
    if retry_after is not None:
        reply.headers["Retry-After"] = retry_after
    return reply


class FakeHubSpot(FakeCrm):
    def __init__(
        self, token: str = TOKEN, portal_id: int = PORTAL_ID, scopes: tuple[str, ...] = SCOPES
    ) -> None:
        super().__init__()
        self.token = token
        self.portal_id = portal_id
        self.scopes = scopes
        self.data_lock = threading.Lock()
        self.contacts: dict[str, dict[str, Any]] = {}
        self.owners: dict[str, dict[str, Any]] = {}
        self.deals: dict[str, dict[str, Any]] = {}
        self.engagements: dict[str, dict[str, Any]] = {}
        #: answered instead of the next created call's 201, after the call is stored (a lost response)
        self.lose_next_create: Reply | None = None
        #: seconds a created call stays out of the calls search (HubSpot indexes a write a bit later)
        self.index_lag = 0.0
        self.next_id = 5000
        self.clock = datetime(2024, 5, 1, tzinfo=UTC)
        for method, path, handler in (
            ("POST", r"/crm/v3/objects/contacts/search", self._search_contacts),
            ("POST", r"/crm/v3/objects/deals/search", self._search_deals),
            ("POST", r"/crm/v3/objects/calls/search", self._search_calls),
            ("POST", r"/crm/v3/objects/calls", self._create_call),
            ("GET", r"/crm/v3/owners/(?P<id>[^/]+)", self._owner),
        ):
            self.route(method, path, self._authed(handler))
        # the token to check travels in the body; this one route needs no bearer header
        self.route("POST", r"/oauth/v2/private-apps/get/access-token-info", self._token_info)

    # seeding and reading back

    def __enter__(self) -> FakeHubSpot:
        super().__enter__()
        return self

    def add_contact(self, **given: str) -> str:
        cid = self._id()
        props: dict[str, str | None] = {**given, "hs_object_id": cid, "lastmodifieddate": self._tick()}
        props["hs_searchable_calculated_phone_number"] = searchable(given.get("phone"))
        props["hs_searchable_calculated_mobile_number"] = searchable(given.get("mobilephone"))
        with self.data_lock:
            self.contacts[cid] = props
        return cid

    def add_owner(self, owner_id: str, email: str, first: str = "", last: str = "") -> None:
        self.owners[owner_id] = {
            "id": owner_id,
            "email": email,
            "firstName": first,
            "lastName": last,
            "userId": int(owner_id) + 1,
            "archived": False,
            "teams": [],
        }

    def add_deal(
        self, contact_id: str, name: str, amount: str | None = None, closed: bool = False, **props: str
    ) -> str:
        did = self._id()
        self.deals[did] = {
            "dealname": name,
            "amount": amount,
            "hs_is_closed": "true" if closed else "false",
            "hs_object_id": did,
            "associations.contact": contact_id,
            **props,
        }
        return did

    # the API

    def _authed(self, handler: Any) -> Any:
        def serve(req: Request, m: re.Match[str]) -> Reply:
            if req.headers.get("Authorization") != f"Bearer {self.token}":
                return unauthenticated()
            reply: Reply = handler(req, m)
            return reply

        return serve

    def _search(self, req: Request, records: dict[str, dict[str, Any]], default_sort: str) -> Reply:
        body = req.json or {}
        groups = body.get("filterGroups") or []
        if len(groups) > 5 or any(len(g.get("filters") or []) > 6 for g in groups):
            return error(400, "Too many filter groups or filters", "VALIDATION_ERROR")
        operators = {f.get("operator") for g in groups for f in g.get("filters") or []}
        if operators - {"EQ", "CONTAINS_TOKEN"}:
            return error(400, f"operator not modelled by the fake: {sorted(operators)}", "VALIDATION_ERROR")
        limit = int(body.get("limit") or 10)
        if limit > 200:
            return error(400, "limit must be at most 200", "VALIDATION_ERROR")
        with self.data_lock:
            found = [
                (rid, p) for rid, p in records.items() if not groups or any(_group(g, p) for g in groups)
            ]
        for sort in reversed(body.get("sorts") or [{"propertyName": default_sort, "direction": "ASCENDING"}]):
            found.sort(
                key=lambda r: str(r[1].get(sort["propertyName"]) or ""),
                reverse=sort["direction"] == "DESCENDING",
            )
        start = int(body.get("after") or 0)
        wanted = ["hs_object_id", *(body.get("properties") or [])]
        results = [
            {
                "id": rid,
                "properties": {k: p.get(k) for k in wanted},
                "createdAt": self.clock.isoformat(),
                "updatedAt": self.clock.isoformat(),
                "archived": False,
            }
            for rid, p in found[start : start + limit]
        ]
        answer: dict[str, Any] = {"total": len(found), "results": results}
        if start + limit < len(found):
            answer["paging"] = {"next": {"after": str(start + limit), "link": f"?after={start + limit}"}}
        return Reply(200, answer)

    def _search_contacts(self, req: Request, m: re.Match[str]) -> Reply:
        return self._search(req, self.contacts, "hs_object_id")

    def _search_deals(self, req: Request, m: re.Match[str]) -> Reply:
        return self._search(req, self.deals, "hs_object_id")

    def _search_calls(self, req: Request, m: re.Match[str]) -> Reply:
        indexed = time.monotonic() - self.index_lag
        with self.data_lock:
            calls = {cid: c["properties"] for cid, c in self.engagements.items() if c["created"] <= indexed}
        return self._search(req, calls, "hs_object_id")

    def _create_call(self, req: Request, m: re.Match[str]) -> Reply:
        body = req.json or {}
        props = body.get("properties") or {}
        unknown = sorted(set(props) - CALL_PROPERTIES)
        if unknown:
            return error(
                400,
                f'Property values were not valid: [{{"name":"{unknown[0]}","error":'
                '"PROPERTY_DOESNT_EXIST"}]',
                "VALIDATION_ERROR",
            )
        if not props.get("hs_timestamp"):
            return error(400, "hs_timestamp is required", "VALIDATION_ERROR")
        if props.get("hs_call_status", "COMPLETED") not in CALL_STATUSES or props.get(
            "hs_call_direction", "INBOUND"
        ) not in ("INBOUND", "OUTBOUND"):
            return error(400, "Property values were not valid", "VALIDATION_ERROR")
        for assoc in body.get("associations") or []:
            types = assoc.get("types") or [{}]
            if assoc["to"]["id"] not in self.contacts or types[0].get("associationTypeId") != 194:
                return error(400, f"Unable to associate with contact {assoc['to']['id']}", "VALIDATION_ERROR")
        cid = self._id()
        now = self._tick()
        stored = {**props, "hs_object_id": cid, "hs_createdate": now, "hs_lastmodifieddate": now}
        with self.data_lock:
            self.engagements[cid] = {
                "properties": stored,
                "associations": body.get("associations") or [],
                "created": time.monotonic(),
            }
            lost, self.lose_next_create = self.lose_next_create, None
        if lost:
            return lost
        return Reply(
            201, {"id": cid, "properties": stored, "createdAt": now, "updatedAt": now, "archived": False}
        )

    def _owner(self, req: Request, m: re.Match[str]) -> Reply:
        owner = self.owners.get(m["id"])
        return Reply(200, owner) if owner else error(404, "resource not found", "OBJECT_NOT_FOUND")

    def _token_info(self, req: Request, m: re.Match[str]) -> Reply:
        if (req.json or {}).get("tokenKey") != self.token:
            return unauthenticated()
        return Reply(200, {"userId": 42, "hubId": self.portal_id, "appId": 7, "scopes": list(self.scopes)})

    def _id(self) -> str:
        with self.data_lock:
            self.next_id += 1
            return str(self.next_id)

    def _tick(self) -> str:
        with self.data_lock:
            self.clock += timedelta(seconds=1)
            return self.clock.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _group(group: dict[str, Any], props: dict[str, Any]) -> bool:
    return all(_filter(f, props) for f in group.get("filters") or [])


def _filter(f: dict[str, Any], props: dict[str, Any]) -> bool:
    value = str(props.get(f["propertyName"]) or "").lower()
    wanted = str(f.get("value", "")).lower()
    if f["operator"] == "EQ":
        return value == wanted
    return any(fnmatch.fnmatchcase(token, wanted) for token in re.split(r"[\s,;]+", value) if token)
