"""A Pipedrive that answers as API v1 documents: persons search (term of 2+ characters, `fields`,
`exact_match`, start/limit paging with `more_items_in_collection`/`next_start`), a person's deals
and activities, users, activity creation, the token in `x-api-token` or `api_token`, `data: null`
for an empty list, and Pipedrive's error bodies (success/error/error_info).

Phone search is modelled on what Pipedrive does with phone fields: it compares digits, ignoring
spaces, dashes, brackets and the plus sign; a term that is not exact matches the digits anywhere
inside a stored number.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.crm.fake import FakeCrm, Reply, Request

TOKEN = "0123456789abcdef0123456789abcdef01234567"
COMPANY = "acme"
ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."
ACTIVITY_TYPES = {"call", "meeting", "task", "deadline", "email", "lunch"}
SEARCH_FIELDS = {"custom_fields", "email", "notes", "phone", "name"}
_HHMM = re.compile(r"\d{2}:\d{2}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def error(status: int, message: str, **extra: Any) -> Reply:
    return Reply(
        status,
        {
            "success": False,
            "error": message,
            "error_info": ERROR_INFO,
            "data": None,
            "additional_data": None,
            **extra,
        },
    )


def rate_limited(retry_after: str | None = None) -> Reply:
    """Pipedrive's 429 once the burst limit is spent (the test chooses whether Retry-After comes too)."""
    reply = error(429, "Request over limit", errorCode=429)
    reply.headers = {"x-ratelimit-limit": "80", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"}
    if retry_after is not None:
        reply.headers["Retry-After"] = retry_after
    return reply


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


class FakePipedrive(FakeCrm):
    def __init__(self, token: str = TOKEN, company: str = COMPANY) -> None:
        super().__init__()
        self.token = token
        self.company = company
        self.data_lock = threading.Lock()
        self.persons: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.deals: dict[int, dict[str, Any]] = {}
        self.activities: dict[int, dict[str, Any]] = {}
        #: answered instead of the next created activity's 201, after it is stored (a lost response)
        self.lose_next_create: Reply | None = None
        self.next_id = 100
        self.clock = datetime(2024, 5, 1, tzinfo=UTC)
        self.me = self.add_user("Alice Admin", "alice@acme.example")
        for method, path, handler in (
            ("GET", r"/api/v1/persons/search", self._search),
            ("GET", r"/api/v1/persons/(?P<id>\d+)/deals", self._person_deals),
            ("GET", r"/api/v1/persons/(?P<id>\d+)/activities", self._person_activities),
            ("GET", r"/api/v1/users/me", self._user_me),
            ("GET", r"/api/v1/users/(?P<id>\d+)", self._user),
            ("GET", r"/api/v1/activities", self._list_activities),
            ("POST", r"/api/v1/activities", self._create_activity),
        ):
            self.route(method, path, self._authed(handler))

    def __enter__(self) -> FakePipedrive:
        super().__enter__()
        return self

    # seeding and reading back

    def add_user(self, name: str, email: str) -> int:
        uid = self._id()
        self.users[uid] = {
            "id": uid,
            "name": name,
            "email": email,
            "active_flag": True,
            "company_id": 777,
            "company_name": "Acme Inc",
            "company_domain": self.company,
        }
        return uid

    def add_person(self, name: str, *phones: str, owner: int | None = None, org: str | None = None) -> int:
        pid = self._id()
        self.persons[pid] = {
            "id": pid,
            "name": name,
            "phone": [{"label": "work", "value": p, "primary": i == 0} for i, p in enumerate(phones)],
            "owner_id": owner or self.me,
            "org": {"id": self._id(), "name": org, "address": None} if org else None,
        }
        return pid

    def add_deal(self, person_id: int, title: str, formatted_value: str, status: str = "open") -> int:
        did = self._id()
        self.deals[did] = {
            "id": did,
            "title": title,
            "value": 0,
            "currency": "EUR",
            "formatted_value": formatted_value,
            "status": status,
            "person_id": person_id,
            "stage_id": 1,
        }
        return did

    def add_activity(self, person_id: int | None, note: str, due_date: str = "2024-05-01") -> int:
        """A done call logged earlier (what a search for an already logged call wades through)."""
        aid = self._id()
        self.activities[aid] = {
            "id": aid,
            "user_id": self.me,
            "done": True,
            "type": "call",
            "subject": "Call",
            "due_date": due_date,
            "person_id": person_id,
            "note": note,
        }
        return aid

    # the API

    def _authed(self, handler: Any) -> Any:
        def serve(req: Request, m: re.Match[str]) -> Reply:
            headers = {k.lower(): v for k, v in req.headers.items()}
            if self.token not in (headers.get("x-api-token"), req.arg("api_token")):
                return error(401, "unauthorized access", errorCode=401)
            reply: Reply = handler(req, m)
            return reply

        return serve

    def _page(self, req: Request, rows: list[dict[str, Any]]) -> Reply:
        start, limit = int(req.arg("start") or 0), int(req.arg("limit") or 100)
        if limit > 500:
            return error(
                400, "Validation failed: limit: Must be at most 500", code="ERR_SCHEMA_VALIDATION_FAILED"
            )
        more = start + limit < len(rows)
        pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start + limit
        return Reply(
            200,
            {
                "success": True,
                "data": rows[start : start + limit] or None,
                "additional_data": {"pagination": pagination},
            },
        )

    def _search(self, req: Request, m: re.Match[str]) -> Reply:
        term, exact = req.arg("term") or "", req.arg("exact_match") == "true"
        fields = set((req.arg("fields") or ",".join(SEARCH_FIELDS)).split(","))
        if len(term) < (1 if exact else 2) or fields - SEARCH_FIELDS:
            return error(
                400,
                "Validation failed: term: Must be at least 2 characters long",
                code="ERR_SCHEMA_VALIDATION_FAILED",
            )
        wanted = _digits(term)
        with self.data_lock:
            found = [
                p
                for p in self.persons.values()
                if "phone" in fields
                and wanted
                and any(
                    (_digits(ph["value"]) == wanted) if exact else (wanted in _digits(ph["value"]))
                    for ph in p["phone"]
                )
            ]
        reply = self._page(req, [{"result_score": 0.5, "item": self._item(p)} for p in found])
        reply.body["data"] = {"items": reply.body["data"] or []}
        return reply

    def _item(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": p["id"],
            "type": "person",
            "name": p["name"],
            "phones": [ph["value"] for ph in p["phone"]],
            "emails": [],
            "primary_email": None,
            "visible_to": 3,
            "owner": {"id": p["owner_id"]},
            "organization": p["org"],
            "custom_fields": [],
            "notes": [],
            "update_time": self.clock.strftime("%Y-%m-%d %H:%M:%S"),
        }

    def _person_deals(self, req: Request, m: re.Match[str]) -> Reply:
        status = req.arg("status") or "all_not_deleted"
        rows = [
            d
            for d in self.deals.values()
            if d["person_id"] == int(m["id"]) and (status == "all_not_deleted" or d["status"] == status)
        ]
        return self._page(req, rows)

    def _person_activities(self, req: Request, m: re.Match[str]) -> Reply:
        if int(m["id"]) not in self.persons:
            return error(404, "Person not found")
        return self._page(req, self._activities(req, lambda a: a["person_id"] == int(m["id"])))

    def _list_activities(self, req: Request, m: re.Match[str]) -> Reply:
        user = int(req.arg("user_id") or self.me)
        types = set((req.arg("type") or ",".join(ACTIVITY_TYPES)).split(","))
        first, last = req.arg("start_date") or "0000-00-00", req.arg("end_date") or "9999-99-99"
        return self._page(
            req,
            self._activities(
                req,
                lambda a: (
                    (user == 0 or a["user_id"] == user)
                    and a["type"] in types
                    and first <= a["due_date"] <= last
                ),
            ),
        )

    def _activities(self, req: Request, keep: Any) -> list[dict[str, Any]]:
        done = req.arg("done")
        with self.data_lock:
            return [
                a
                for a in self.activities.values()
                if keep(a) and (done is None or a["done"] == (done == "1"))
            ]

    def _create_activity(self, req: Request, m: re.Match[str]) -> Reply:
        body = req.json or {}
        if body.get("type", "call") not in ACTIVITY_TYPES:
            return error(400, "Activity type is not valid")
        for key, pattern in (("due_date", _DATE), ("due_time", _HHMM), ("duration", _HHMM)):
            if key in body and not pattern.fullmatch(str(body[key])):
                return error(400, f"Validation failed: {key}: invalid format")
        person = body.get("person_id")
        if person is not None and person not in self.persons:
            return error(400, "Person not found")
        aid, now = self._id(), self._tick()
        activity = {
            "id": aid,
            "company_id": 777,
            "user_id": self.me,
            "done": bool(body.get("done")),
            "type": body.get("type", "call"),
            "subject": body.get("subject") or "Call",
            "due_date": body.get("due_date") or now[:10],
            "due_time": body.get("due_time") or "",
            "duration": body.get("duration") or "",
            "person_id": person,
            "org_id": None,
            "deal_id": None,
            "note": body.get("note"),
            "add_time": now,
            "update_time": now,
            "active_flag": True,
            "person_name": self.persons[person]["name"] if person else None,
        }
        with self.data_lock:
            self.activities[aid] = activity
            lost, self.lose_next_create = self.lose_next_create, None
        if lost:
            return lost
        return Reply(
            201,
            {
                "success": True,
                "data": activity,
                "additional_data": {"updates_story_id": aid},
                "related_objects": {},
            },
        )

    def _user(self, req: Request, m: re.Match[str]) -> Reply:
        user = self.users.get(int(m["id"]))
        return Reply(200, {"success": True, "data": user}) if user else error(404, "User not found")

    def _user_me(self, req: Request, m: re.Match[str]) -> Reply:
        return Reply(200, {"success": True, "data": self.users[self.me]})

    def _id(self) -> int:
        with self.data_lock:
            self.next_id += 1
            return self.next_id

    def _tick(self) -> str:
        with self.data_lock:
            self.clock += timedelta(seconds=1)
            return self.clock.strftime("%Y-%m-%d %H:%M:%S")
