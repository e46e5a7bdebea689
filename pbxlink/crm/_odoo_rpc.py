"""Odoo's external JSON-RPC (<url>/jsonrpc): log in once, call model methods, sort its errors.

Odoo answers errors with HTTP 200 and an "error" object whose data.name is the Python
exception class: AccessDenied (a wrong or revoked key, after one fresh login) and
AccessError (a missing access right) become `CrmAuthError`; anything else, such as a
UserError or a missing database, a `CrmRequestError` quoting Odoo's first line.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from pbxlink.crm.http import MAX_MESSAGE, HttpClient
from pbxlink.domain.crm import CrmAuthError, CrmError, CrmRequestError


class Fault(Exception):
    """A JSON-RPC "error" object: Odoo's exception class name and the first line of its message."""

    def __init__(self, error: Any) -> None:
        error = error if isinstance(error, dict) else {"message": str(error)}
        data = error.get("data") if isinstance(error.get("data"), dict) else {}
        self.kind = str(data.get("name") or "")
        text = str(data.get("message") or error.get("message") or "").strip()
        self.text = (text.splitlines() or [""])[0][:MAX_MESSAGE]
        super().__init__(f"{self.kind.rsplit('.', 1)[-1]}: {self.text}")

    @property
    def denied(self) -> bool:
        return self.kind.endswith(("AccessDenied", "SessionExpiredException"))


class OdooRpc:
    """Calls as one Odoo user; the user id is cached and renewed when Odoo says access denied."""

    def __init__(self, http: HttpClient, *, db: str, login: str, key: str) -> None:
        self.http = http
        self.crm = http.crm
        self.db = db
        self.login = login
        self.key = key
        self._uid: int | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def call(self, service: str, method: str, *args: Any, retry: bool = True) -> Any:
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": list(args)},
            "id": next(self._ids),
        }
        reply = self.http.json("POST", "/jsonrpc", json=body, retry=retry)
        if not isinstance(reply, dict) or not ("result" in reply or "error" in reply):
            raise CrmRequestError(f"{self.crm}: /jsonrpc did not answer JSON-RPC (is url the Odoo address?)")
        if "error" in reply:
            raise Fault(reply["error"])
        return reply["result"]

    def user(self, fresh: bool = False) -> int:
        with self._lock:
            if self._uid is None or fresh:
                try:
                    uid = self.call("common", "authenticate", self.db, self.login, self.key, {})
                except Fault as fault:
                    raise self.error(fault, f"login on database {self.db!r}") from None
                if not uid:
                    raise CrmAuthError(
                        f"{self.crm}: Odoo refused the login {self.login!r} on database {self.db!r}: "
                        "check db, username and api_key (an API key from the user's Account Security)"
                    )
                self._uid = int(uid)
            return self._uid

    def execute(
        self, model: str, method: str, args: list[Any], kwargs: dict[str, Any], retry: bool = True
    ) -> Any:
        """`execute_kw` as the configured user; on AccessDenied, logs in again once and repeats."""
        for attempt in (1, 2):
            uid = self.user(fresh=attempt == 2)
            try:
                return self.call(
                    "object", "execute_kw", self.db, uid, self.key, model, method, args, kwargs, retry=retry
                )
            except Fault as fault:
                if not (fault.denied and attempt == 1):
                    raise self.error(fault, f"{model}.{method}") from None
        raise AssertionError("unreachable")

    def error(self, fault: Fault, what: str) -> CrmError:
        text = self.http.redact(str(fault))
        if fault.denied:
            return CrmAuthError(
                f"{self.crm}: {what}: Odoo denied access to {self.login!r}: api_key wrong or revoked"
            )
        if fault.kind.endswith("AccessError"):
            return CrmAuthError(
                f"{self.crm}: {what}: {text} (give the user {self.login!r} that access right)"
            )
        return CrmRequestError(f"{self.crm}: {what}: {text}")
