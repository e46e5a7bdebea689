"""A fake Zoho CRM (Accounts token endpoint + REST API) answering as Zoho documents, records in memory.

- POST /oauth/v2/token (form: grant_type=refresh_token, client_id, client_secret,
  refresh_token) → {"access_token", "api_domain", "token_type": "Bearer", "expires_in"};
  a wrong refresh token or client is still HTTP 200, with {"error": "invalid_code"} or
  {"error": "invalid_client"}.
- Every /crm/<version>/… request needs `Authorization: Zoho-oauthtoken <token>`, else 401
  {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"};
  a token without the scope a path needs gets 401 OAUTH_SCOPE_MISMATCH.
- GET /<module>/search?phone=&page=&per_page= → {"data", "info": {"per_page", "count", "page",
  "more_records"}} or 204 with no body. How Zoho compares phone numbers is not documented;
  this fake matches a record when a phone field's digits end with the searched digits.
- GET /Contacts/{id}/Deals (fields required) → the related deals, or 204.
- POST /Calls and /Calls/upsert ({"data": [...], "duplicate_check_fields"}) → {"data": [{"code":
  "SUCCESS", "details": {"id", …}, "message", "status"}]}; per-record errors such as
  MANDATORY_NOT_FOUND come back as 400 with the same shape.
- POST /coql {"select_query"} for `select id from Calls where Subject like '%…%' limit n`.
"""

from __future__ import annotations

import itertools
import re
import secrets
from typing import Any

from tests.crm.fake import FakeCrm, Reply, Request, Route

ALL_SCOPES = frozenset({"contacts", "leads", "deals", "calls", "coql"})
PHONES = ("Phone", "Mobile", "Home_Phone", "Other_Phone", "Asst_Phone")
API = r"/crm/v[0-9.]+/"


def _error(status: int, code: str, message: str, **details: Any) -> Reply:
    return Reply(status, {"code": code, "details": details, "message": message, "status": "error"})


def _digits(value: Any) -> str:
    return re.sub(r"\D", "", str(value or ""))


class FakeZoho(FakeCrm):
    def __init__(
        self,
        client_id: str = "1000.CLIENT",
        client_secret: str = "zoho-client-secret-1",
        *,
        refresh_token: str = "1000.refresh-token-abcdef",
    ) -> None:
        super().__init__()
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.scopes = set(ALL_SCOPES)  # what the refresh token was granted
        self.tokens: dict[str, set[str]] = {}  # live access tokens and their scopes
        self.records: dict[str, dict[str, dict[str, Any]]] = {
            "Contacts": {},
            "Leads": {},
            "Deals": {},
            "Calls": {},
        }
        self.unique_call_fields = {"PBX_Call_Key"}  # custom Calls fields set to "do not allow duplicates"
        self.lose_next_write: Reply | None = None  # commit the next Calls write, then answer this instead
        self._ids = itertools.count(4_150_868_000_000_100_001)
        self.route("POST", r"/oauth/v2/token", self._token)
        self.route("GET", API + r"(Contacts|Leads)/search", self._guard("search", self._search))
        self.route("GET", API + r"Contacts/(\d+)/Deals", self._guard("deals", self._deals))
        self.route("GET", API + r"(Contacts|Leads)", self._guard("list", self._list))
        self.route("POST", API + r"Calls(/upsert)?", self._guard("calls", self._calls))
        self.route("POST", API + r"coql", self._guard("coql", self._coql))

    # -- seeding and reading back ---------------------------------------------------------------

    def add(self, module: str, **fields: Any) -> str:
        rid = str(next(self._ids))
        owner = {"name": "Sam Seller", "id": "4150868000000225013", "email": "sam@acme.example"}
        self.records[module][rid] = {"id": rid, "Owner": owner, **fields}
        return rid

    def expire_tokens(self) -> None:
        self.tokens.clear()

    # -- the wire -------------------------------------------------------------------------------

    def _token(self, req: Request, _m: re.Match[str]) -> Reply:
        form = {k: v[0] for k, v in (req.form or req.query).items()}
        if form.get("grant_type") != "refresh_token":
            return Reply(200, {"error": "unsupported_grant_type"})
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return Reply(200, {"error": "invalid_client"})
        if form.get("refresh_token") != self.refresh_token:
            return Reply(200, {"error": "invalid_code"})
        token = "1000." + secrets.token_hex(16)
        self.tokens[token] = set(self.scopes)
        return Reply(
            200, {"access_token": token, "api_domain": self.url, "token_type": "Bearer", "expires_in": 3600}
        )

    def _guard(self, action: str, handler: Route) -> Route:
        need = {"search": None, "deals": "deals", "list": None, "calls": "calls", "coql": "coql"}[action]

        def guarded(req: Request, m: re.Match[str]) -> Reply:
            auth = req.headers.get("Authorization", "")
            token = auth.removeprefix("Zoho-oauthtoken ")
            if not auth.startswith("Zoho-oauthtoken ") or token not in self.tokens:
                return _error(401, "INVALID_TOKEN", "invalid oauth token")
            module_scope = need or m.group(1).lower()
            if module_scope not in self.tokens[token]:
                return _error(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")
            return handler(req, m)

        return guarded

    def _page(self, req: Request, rows: list[dict[str, Any]]) -> Reply:
        if not rows:
            return Reply(204, b"")
        page, per_page = int(req.arg("page") or 1), int(req.arg("per_page") or 200)
        if per_page > 200:
            return _error(400, "INVALID_DATA", "invalid data", param_name="per_page", maximum_length=200)
        chunk = rows[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(rows)
        info = {"per_page": per_page, "count": len(chunk), "page": page, "more_records": more}
        return Reply(200, {"data": chunk, "info": info}) if chunk else Reply(204, b"")

    def _search(self, req: Request, m: re.Match[str]) -> Reply:
        phone = req.arg("phone")
        if not (phone or req.arg("criteria") or req.arg("email") or req.arg("word")):
            names = ["criteria", "email", "phone", "word"]
            return _error(
                400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param_names=names
            )
        wanted = _digits(phone)
        rows = [
            r
            for r in self.records[m.group(1)].values()
            if wanted and any(_digits(r.get(f)).endswith(wanted) and r.get(f) for f in PHONES)
        ]
        return self._page(req, rows)

    def _deals(self, req: Request, m: re.Match[str]) -> Reply:
        if not req.arg("fields"):
            return _error(
                400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param_name="fields"
            )
        if m.group(1) not in self.records["Contacts"]:
            return _error(400, "INVALID_DATA", "the related id given seems to be invalid")
        rows = [
            d for d in self.records["Deals"].values() if (d.get("Contact_Name") or {}).get("id") == m.group(1)
        ]
        return self._page(req, rows)

    def _list(self, req: Request, m: re.Match[str]) -> Reply:
        if not req.arg("fields"):
            return _error(
                400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param_name="fields"
            )
        return self._page(req, list(self.records[m.group(1)].values()))

    def _calls(self, req: Request, m: re.Match[str]) -> Reply:
        body = req.json or {}
        (record,) = body.get("data") or [{}]
        for field in ("Subject", "Call_Type", "Call_Start_Time"):
            if not record.get(field):
                return self._row_error("MANDATORY_NOT_FOUND", "required field not found", api_name=field)
        if record["Call_Type"] not in ("Inbound", "Outbound", "Missed"):
            return self._row_error("INVALID_DATA", "invalid data", api_name="Call_Type")
        if "Call_Duration" in record and not re.fullmatch(r"\d+:[0-5]\d", str(record["Call_Duration"])):
            return self._row_error("INVALID_DATA", "invalid data", api_name="Call_Duration")
        who = (record.get("Who_Id") or {}).get("id")
        if who and who not in self.records["Contacts"] and who not in self.records["Leads"]:
            return self._row_error("INVALID_DATA", "invalid data", api_name="Who_Id")
        action, existing = "insert", None
        if m.group(1):  # upsert
            (field,) = body.get("duplicate_check_fields") or [None]
            if field not in self.unique_call_fields:
                return self._row_error("INVALID_DATA", "invalid data", api_name="duplicate_check_fields")
            existing = next(
                (c for c in self.records["Calls"].values() if c.get(field) == record.get(field)), None
            )
        if existing:
            action = "update"
            existing.update(record)
            rid = existing["id"]
        else:
            rid = str(next(self._ids))
            self.records["Calls"][rid] = {**record, "id": rid}
        details = {
            "Modified_Time": "2024-05-01T09:35:00+00:00",
            "id": rid,
            "Created_Time": "2024-05-01T09:35:00+00:00",
        }
        row: dict[str, Any] = {"code": "SUCCESS", "details": details, "status": "success"}
        row["message"] = "record updated" if action == "update" else "record added"
        if m.group(1):
            row |= {"action": action, "duplicate_field": field if action == "update" else None}
        reply = Reply(201 if action == "insert" else 200, {"data": [row]})
        if self.lose_next_write:
            reply, self.lose_next_write = self.lose_next_write, None
        return reply

    def _row_error(self, code: str, message: str, **details: Any) -> Reply:
        return Reply(
            400, {"data": [{"code": code, "details": details, "message": message, "status": "error"}]}
        )

    def _coql(self, req: Request, _m: re.Match[str]) -> Reply:
        query = (req.json or {}).get("select_query", "")
        got = re.fullmatch(r"select id from Calls where Subject like '%([^%']+)%' limit (\d+)", query)
        if not got:
            return _error(400, "SYNTAX_ERROR", "error occured while parsing the query", clause="select")
        rows = [
            {"id": c["id"]} for c in self.records["Calls"].values() if got.group(1) in c.get("Subject", "")
        ]
        rows = rows[: int(got.group(2))]
        if not rows:
            return Reply(204, b"")
        return Reply(200, {"data": rows, "info": {"count": len(rows), "more_records": False}})
