"""A fake Odoo answering its external JSON-RPC API as Odoo 17 does, with records in memory.

POST /jsonrpc takes {"jsonrpc": "2.0", "method": "call", "params": {"service", "method",
"args"}, "id"} and answers {"jsonrpc", "id", "result"} or, for any exception, still with
HTTP 200, {"jsonrpc", "id", "error": {"code": 200, "message": "Odoo Server Error", "data":
{"name": "odoo.exceptions.AccessDenied", "message", "arguments", "context", "debug"}}}.
common.authenticate answers the uid or false; object.execute_kw checks the uid and key
on every call. Domains are evaluated as the ORM does for the operators pbxlink sends
(prefix "|" "&" "!", "=", "!=", "in", "<", "ilike", "=ilike", and "stage_id.is_won").
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable
from typing import Any

from tests.crm.fake import FakeCrm, Reply, Request

PARTNER_FIELDS = {
    "name": "char",
    "is_company": "boolean",
    "parent_id": "many2one",
    "commercial_company_name": "char",
    "user_id": "many2one",
    "phone": "char",
    "mobile": "char",
    "email": "char",
}
LEAD_FIELDS = {
    "name": "char",
    "partner_id": "many2one",
    "stage_id": "many2one",
    "expected_revenue": "monetary",
    "company_currency": "many2one",
    "type": "selection",
    "active": "boolean",
}
STAGES = {1: ("New", False), 2: ("Proposition", False), 4: ("Won", True)}


class OdooFault(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name, self.message = name, message


class FakeOdoo(FakeCrm):
    """`with FakeOdoo() as odoo: pid = odoo.add_partner("Ann", phone="(555) 123-4567")`"""

    def __init__(
        self,
        db: str = "acme",
        login: str = "pbx@acme.example",
        key: str = "odoo-key-0123456789",
        *,
        crm: bool = True,
    ) -> None:
        super().__init__()
        self.db, self.login, self.key = db, login, key
        self.uid = 7
        self.version = 17  # message_post takes body_is_html from 17 on
        self.partner_fields = dict(PARTNER_FIELDS)
        self.models: dict[str, dict[int, dict[str, Any]]] = {"res.partner": {}, "mail.message": {}}
        if crm:
            self.models["crm.lead"] = {}
        self.denied_models: set[str] = set()  # models the user has no access right on
        self.users = {7: "PBX Robot", 9: "Sam Seller"}
        self.lose_next_write: Reply | None = None  # commit the next write, then answer this instead
        self.executed: list[tuple[str, str, list[Any], dict[str, Any]]] = []
        self._ids = itertools.count(100)
        self.route("POST", r"/jsonrpc", self._jsonrpc)

    # -- seeding and reading back ---------------------------------------------------------------

    def add_partner(self, name: str, **values: Any) -> int:
        pid = next(self._ids)
        self.models["res.partner"][pid] = {"id": pid, "name": name, "is_company": False, **values}
        return pid

    def add_lead(self, partner: int, name: str, revenue: float, stage: int = 1, **values: Any) -> int:
        lid = next(self._ids)
        self.models["crm.lead"][lid] = {
            "id": lid,
            "name": name,
            "partner_id": partner,
            "stage_id": stage,
            "expected_revenue": revenue,
            "company_currency": 2,
            "type": "opportunity",
            "active": True,
            **values,
        }
        return lid

    def notes(self, partner: int) -> list[dict[str, Any]]:
        return [m for m in self.models["mail.message"].values() if m["res_id"] == partner]

    # -- the wire -------------------------------------------------------------------------------

    def _jsonrpc(self, req: Request, _m: re.Match[str]) -> Reply:
        call = req.json
        params = call["params"]
        try:
            result = self._dispatch(params["service"], params["method"], params["args"])
        except OdooFault as fault:
            data: dict[str, Any] = {"name": fault.name, "debug": "Traceback …", "message": fault.message}
            data |= {"arguments": [fault.message], "context": {}}
            error = {"code": 200, "message": "Odoo Server Error", "data": data}
            return Reply(200, {"jsonrpc": "2.0", "id": call["id"], "error": error})
        reply = Reply(200, {"jsonrpc": "2.0", "id": call["id"], "result": result})
        if self.lose_next_write and params["method"] == "execute_kw" and params["args"][4] == "message_post":
            reply, self.lose_next_write = self.lose_next_write, None
        return reply

    def _dispatch(self, service: str, method: str, args: list[Any]) -> Any:
        if service == "common" and method in ("login", "authenticate"):
            db, login, key = args[:3]
            self._check_db(db)
            return self.uid if (login, key) == (self.login, self.key) else False
        if service == "common" and method == "version":
            return {"server_version": f"{self.version}.0", "protocol_version": 1}
        if service == "object" and method == "execute_kw":
            db, uid, key, model, name, margs, kwargs = (*args, {})[:7]
            self._check_db(db)
            if (uid, key) != (self.uid, self.key):
                raise OdooFault("odoo.exceptions.AccessDenied", "Access Denied")
            if model not in self.models:
                raise OdooFault("odoo.exceptions.UserError", f"Object {model} doesn't exist")
            if model in self.denied_models:
                raise OdooFault(
                    "odoo.exceptions.AccessError",
                    f"You are not allowed to access '{model}' records.\nThis operation is allowed for: Sales",
                )
            self.executed.append((model, name, margs, kwargs))
            return self._method(model, name)(margs, kwargs)
        raise OdooFault("builtins.KeyError", f"'{method}'")

    def _check_db(self, db: str) -> None:
        if db != self.db:
            raise OdooFault(
                "psycopg2.OperationalError", f'connection failed: FATAL:  database "{db}" does not exist'
            )

    def _method(self, model: str, name: str) -> Callable[[list[Any], dict[str, Any]], Any]:
        methods = {
            "search_read": lambda a, k: self._search_read(model, *a, **k),
            "fields_get": lambda a, k: self._fields_get(model, **k),
            "message_post": lambda a, k: self._message_post(model, *a, **k),
        }
        if name not in methods:
            raise OdooFault("builtins.AttributeError", f"The method '{model}.{name}' does not exist")
        return methods[name]

    def _fields(self, model: str) -> dict[str, str]:
        kinds = {"res.partner": self.partner_fields, "crm.lead": LEAD_FIELDS}
        return {"id": "integer", **kinds.get(model, {"model": "char", "res_id": "integer", "body": "html"})}

    def _fields_get(self, model: str, allfields: list[str] | None = None, attributes: Any = None) -> Any:
        known = self._fields(model)
        return {f: {"type": known[f]} for f in allfields or known if f in known}

    def _search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
    ) -> list[dict[str, Any]]:
        known = self._fields(model)
        for f in fields or ():
            if f not in known:
                raise OdooFault("builtins.ValueError", f"Invalid field {f!r} on model {model!r}")
        rows = [
            r for r in self.models[model].values() if r.get("active", True) and self._match(model, domain, r)
        ]
        rows.sort(key=lambda r: r["id"], reverse=(order or "").strip() == "id desc")
        rows = rows[offset : offset + limit if limit else None]
        return [{f: self._show(model, r, f) for f in ["id", *(fields or known)]} for r in rows]

    def _show(self, model: str, row: dict[str, Any], field: str) -> Any:
        value = row.get(field)
        if self._fields(model).get(field) == "many2one":
            return [value, self._name_of(field, value)] if value else False
        return False if value is None else value

    def _name_of(self, field: str, value: int) -> str:
        if field == "user_id":
            return self.users[value]
        if field == "stage_id":
            return STAGES[value][0]
        if field == "company_currency":
            return {2: "USD", 1: "EUR"}[value]
        return str(self.models["res.partner"][value]["name"])

    def _match(self, model: str, domain: list[Any], row: dict[str, Any]) -> bool:
        stack: list[bool] = []
        for term in reversed(domain):
            if term in ("|", "&"):
                a, b = stack.pop(), stack.pop()
                stack.append(a or b if term == "|" else a and b)
            elif term == "!":
                stack.append(not stack.pop())
            else:
                stack.append(self._leaf(model, row, *term))
        return all(stack)

    def _leaf(self, model: str, row: dict[str, Any], field: str, op: str, value: Any) -> bool:
        if field == "stage_id.is_won":
            have: Any = STAGES[row["stage_id"]][1]
        elif field.split(".")[0] not in self._fields(model):
            raise OdooFault("builtins.ValueError", f"Invalid field {model}.{field} in leaf")
        else:
            have = row.get(field)
        if op in ("ilike", "=ilike", "like", "=like"):
            pattern = value if op.startswith("=") else f"%{value}%"
            regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
            flags = re.IGNORECASE | re.DOTALL if "ilike" in op else re.DOTALL
            return isinstance(have, str) and re.fullmatch(regex, have, flags) is not None
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "=": lambda h, v: h == v,
            "!=": lambda h, v: h != v,
            "in": lambda h, v: h in v,
            "<": lambda h, v: h is not None and h < v,
        }
        return ops[op](have, value)

    def _message_post(
        self,
        model: str,
        ids: list[int],
        body: str = "",
        message_type: str = "notification",
        subtype_xmlid: str | None = None,
        **kwargs: Any,
    ) -> int:
        if "body_is_html" in kwargs and self.version < 17:
            raise OdooFault(
                "builtins.TypeError",
                "MailThread.message_post() got an unexpected keyword argument 'body_is_html'",
            )
        if self.version >= 17 and not kwargs.pop("body_is_html", False):
            body = f"<p>{html.escape(body)}</p>"  # a plain str is text, escaped
        if kwargs:
            raise OdooFault("builtins.TypeError", f"unexpected keyword argument {next(iter(kwargs))!r}")
        mid = next(self._ids)
        self.models["mail.message"][mid] = {
            "id": mid,
            "model": model,
            "res_id": ids[0],
            "body": body,
            "message_type": message_type,
            "subtype": subtype_xmlid,
        }
        return mid
