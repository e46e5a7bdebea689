"""An in-house system's HTTP API, as the generic REST connector meets them, on a real HTTP server.

Customers are searched by phone the loose way many systems do (the last 7 digits), so the
connector's own check of the number matters; lists page with a relative `links.next`; calls
are created once per Idempotency-Key (a repeat answers 409 with the existing id). Auth is one
of bearer, basic or an API-key header; anything else gets 401 with a JSON error body.
"""

from __future__ import annotations

import base64
import itertools
import re
from typing import Any
from urllib.parse import quote

from tests.crm.fake import FakeCrm, Reply, Request

UNAUTHORIZED = Reply(
    401,
    {"error": "unauthorized", "message": "missing or invalid credentials"},
    {"WWW-Authenticate": "Bearer"},
)


def _tail(number: str) -> str:
    return re.sub(r"\D", "", number)[-7:]


class FakeRest:
    """`with FakeRest(auth="basic") as api: api.add_customer(...); api.url`"""

    def __init__(
        self, auth: str = "bearer", token: str = "tok-3f9a7c1e", password: str = "pw-81xq9z"
    ) -> None:
        self.auth, self.token, self.username, self.password = auth, token, "pbx", password
        self.http = FakeCrm()
        self.customers: list[dict[str, Any]] = []
        self.logged: dict[str, dict[str, Any]] = {}  # id -> {"body", "headers"}
        self.keys: dict[str, str] = {}  # Idempotency-Key -> id
        self.lost: list[Reply] = []  # answers that replace the next created call's answer
        self.page_size = 20
        self.next_host = ""  # set to make `links.next` point at another host
        self.ids = itertools.count(1)
        for method, path, handler in (
            ("GET", r"/api/v2/customers/search", self._search),
            ("POST", r"/api/v2/lookup", self._lookup),
            ("GET", r"/api/v2/customers/by-phone/([^/]+)", self._by_phone),
            ("POST", r"/api/v2/calls", self._log),
            ("GET", r"/api/v2/ping", lambda req, m: Reply(200, {"ok": True})),
        ):
            self.http.route(method, path, self._guarded(handler))

    @property
    def url(self) -> str:
        return self.http.url

    def __enter__(self) -> FakeRest:
        self.http.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.__exit__(*exc)

    def add_customer(self, name: str, *phones: str, **extra: Any) -> int:
        cid = next(self.ids)
        numbers = [{"type": "work", "number": p} for p in phones]
        self.customers.append({"id": cid, "display_name": name, "phones": numbers, **extra})
        return cid

    def _authorized(self, req: Request) -> bool:
        given = req.headers.get("Authorization", "")
        if self.auth == "bearer":
            return given == f"Bearer {self.token}"
        if self.auth == "basic":
            return given == "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return req.headers.get("X-Api-Key") == self.token

    def _guarded(self, handler: Any) -> Any:
        def serve(req: Request, m: re.Match[str]) -> Reply:
            return handler(req, m) if self._authorized(req) else UNAUTHORIZED

        return serve

    def _matching(self, phone: str) -> list[dict[str, Any]]:
        tail = _tail(phone)
        return [
            c
            for c in self.customers
            if len(tail) == 7 and any(_tail(p["number"]) == tail for p in c["phones"])
        ]

    def _search(self, req: Request, m: re.Match[str]) -> Reply:
        phone, page = req.arg("phone") or "", int(req.arg("page") or 1)
        found = self._matching(phone)
        items = found[(page - 1) * self.page_size : page * self.page_size]
        more = page * self.page_size < len(found)
        nxt = (
            f"{self.next_host}/api/v2/customers/search?phone={quote(phone)}&page={page + 1}" if more else None
        )
        return Reply(200, {"data": {"items": items, "total": len(found)}, "links": {"next": nxt}})

    def _lookup(self, req: Request, m: re.Match[str]) -> Reply:
        return Reply(200, self._matching(str((req.json or {}).get("phone") or "")))

    def _by_phone(self, req: Request, m: re.Match[str]) -> Reply:
        found = self._matching(m[1])
        return (
            Reply(200, found[0])
            if found
            else Reply(404, {"error": "not_found", "message": "no such customer"})
        )

    def _log(self, req: Request, m: re.Match[str]) -> Reply:
        key = req.headers.get("Idempotency-Key")
        if key in self.keys:
            return Reply(
                409, {"error": "conflict", "message": "already logged", "data": {"id": self.keys[key]}}
            )
        cid = f"call-{next(self.ids)}"
        self.logged[cid] = {"body": req.json, "headers": req.headers}
        if key:
            self.keys[key] = cid
        return self.lost.pop(0) if self.lost else Reply(201, {"data": {"id": cid}})
