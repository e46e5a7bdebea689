"""A Bitrix24 portal's REST API as an inbound webhook sees it, in memory, on a real HTTP server.

`POST /rest/<user>/<code>/<method>.json` with a JSON body, as the documentation shows: a
wrong user or code gets 401 NO_AUTH_FOUND, a method outside the webhook's permissions 403
insufficient_scope, an unknown method 404 ERROR_METHOD_NOT_FOUND, a refused call 400 with
{"error", "error_description"}. Lists page by 50 with `next`/`total`; findbycomm compares
digits exactly and returns at most 20 ids a type; register hands back the same CALL_ID for
the same EXTERNAL_CALL_ID while the call is open; finish moves the call to the statistics.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from datetime import datetime
from typing import Any

from tests.crm.fake import FakeCrm, Reply, Request

PAGE = 50
SCOPE_OF = {"crm": "crm", "telephony": "telephony", "voximplant": "telephony", "user": "user"}
STAT_FIELDS = ("CALL_RECORD_URL", "RECORD_FILE_ID", "COMMENT")


class BitrixError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.reply = Reply(status, {"error": error, "error_description": description})


def _digits(value: Any) -> str:
    """A phone as the duplicate index holds it: its digits, without an extension."""
    return re.sub(r"\D", "", re.sub(r"\s*(?:ext\.?|x|#|доб\.?)\s*\d+\s*$", "", str(value), flags=re.I))


class FakeBitrix24:
    """`with FakeBitrix24() as b24: b24.add("CONTACT", phones=(...), NAME=...); use b24.webhook`."""

    def __init__(self, user: int = 1, code: str = "q7hz0kd5ar8wx3vb", scopes: tuple[str, ...] = ()) -> None:
        self.user, self.code = user, code
        self.scopes = set(scopes or ("crm", "telephony", "user"))
        self.http = FakeCrm()
        self.http.route("POST", r"/rest/(\d+)/([^/]+)/([\w.]+?)(?:\.json)?", self._serve)
        self.entities: dict[str, dict[int, dict[str, Any]]] = {
            "CONTACT": {},
            "COMPANY": {},
            "LEAD": {},
            "DEAL": {},
        }
        self.indexed: dict[tuple[str, int], list[str]] = {}  # the duplicate index, by (entity, id)
        self.users: dict[int, dict[str, Any]] = {}
        self.open_calls: dict[str, dict[str, Any]] = {}
        self.stats: list[dict[str, Any]] = []
        self.lost: dict[str, list[Reply]] = {}  # method -> replies that replace its answer after it ran
        self.page_size = PAGE
        self.ids = itertools.count(100)
        self.add_user(user, "Admin", "Istrator", extension="100")

    @property
    def webhook(self) -> str:
        return f"{self.http.url}/rest/{self.user}/{self.code}/"

    def __enter__(self) -> FakeBitrix24:
        self.http.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.__exit__(*exc)

    # seeding -----------------------------------------------------------------------------

    def add_user(self, uid: int, name: str, last: str = "", extension: str = "", active: bool = True) -> int:
        email = f"{name.lower()}@example.com"
        self.users[uid] = {"ID": str(uid), "ACTIVE": active, "NAME": name, "LAST_NAME": last, "EMAIL": email}
        self.users[uid]["UF_PHONE_INNER"] = extension
        return uid

    def add(
        self, entity: str, *, phones: tuple[str, ...] = (), indexed_as: tuple[str, ...] = (), **f: Any
    ) -> int:
        """A CRM record; `indexed_as` = a stale duplicate index that still holds other numbers."""
        rid = next(self.ids)
        phone = [
            {"ID": str(i), "VALUE_TYPE": "WORK", "VALUE": p, "TYPE_ID": "PHONE"} for i, p in enumerate(phones)
        ]
        record = {
            "ID": str(rid),
            "ASSIGNED_BY_ID": str(self.user),
            "DATE_MODIFY": f"2024-01-01T{rid // 3600:02}:{rid // 60 % 60:02}:{rid % 60:02}+00:00",
        }
        self.entities[entity][rid] = {**record, **{k: str(v) for k, v in f.items()}, "PHONE": phone}
        self.indexed[(entity, rid)] = [_digits(p) for p in indexed_as or phones]
        return rid

    def lose_answer(self, method: str, reply: Reply, times: int = 1) -> None:
        """Run `method` for real, then answer `reply` instead (a 502 or a stall after the commit)."""
        self.lost.setdefault(method.lower(), []).extend([reply] * times)

    def calls(self, method: str) -> list[dict[str, Any]]:
        """The parameters of every request to `method`, in order."""
        return [
            r.json or {}
            for r in self.http.calls("POST")
            if r.path.lower().rstrip("/").split("/")[-1].removesuffix(".json") == method.lower()
        ]

    # serving -----------------------------------------------------------------------------

    def _serve(self, req: Request, m: re.Match[str]) -> Reply:
        uid, code, method = int(m[1]), m[2], m[3].lower()
        try:
            if (uid, code) != (self.user, self.code):
                raise BitrixError(401, "NO_AUTH_FOUND", "Wrong authorization data")
            handler = getattr(self, "m_" + method.replace(".", "_"), None)
            if handler is None:
                raise BitrixError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
            needs = SCOPE_OF.get(method.split(".")[0])
            if needs and needs not in self.scopes:
                raise BitrixError(
                    403,
                    "insufficient_scope",
                    "The request requires higher privileges than provided by the webhook token",
                )
            body = handler(req.json or {})
        except BitrixError as exc:
            return exc.reply
        if self.lost.get(method):
            return self.lost[method].pop(0)
        return Reply(200, {**body, "time": {"start": 0, "finish": 0, "duration": 0.01}})

    def _page(self, rows: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        start = int(params.get("start") or 0)
        page = rows[start : start + self.page_size]
        out: dict[str, Any] = {"result": page, "total": len(rows)}
        if start + self.page_size < len(rows):
            out["next"] = start + self.page_size
        return out

    @staticmethod
    def _matches(record: dict[str, Any], filt: dict[str, Any]) -> bool:
        for key, want in filt.items():
            have = record.get(key.lstrip("@="))
            wanted = [str(w) for w in want] if isinstance(want, list) else [str(want)]
            if isinstance(have, bool):
                have = "true" if have else "false"
                wanted = [w.lower() for w in wanted]
            if str(have) not in wanted:
                return False
        return True

    def _list(self, entity: str, params: dict[str, Any]) -> dict[str, Any]:
        rows = [r for r in self.entities[entity].values() if self._matches(r, params.get("filter") or {})]
        for field, way in reversed(list((params.get("order") or {}).items())):
            rows.sort(key=lambda r, f=field: str(r.get(f) or ""), reverse=str(way).upper() == "DESC")
        select = params.get("select") or ["*"]
        shown = [
            {k: v for k, v in r.items() if ("*" in select and k != "PHONE") or k in select} for r in rows
        ]
        return self._page(shown, params)

    def m_crm_contact_list(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("CONTACT", p)

    def m_crm_company_list(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("COMPANY", p)

    def m_crm_lead_list(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("LEAD", p)

    def m_crm_deal_list(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("DEAL", p)

    def m_crm_duplicate_findbycomm(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("type"):
            raise BitrixError(400, "Communication type is not defined", "Parameter 'type' is required.")
        if p["type"] != "PHONE":
            unsupported = f"Communication type '{p['type']}' is not supported in current context"
            raise BitrixError(400, unsupported, unsupported)
        if not p.get("values"):
            raise BitrixError(400, "Communication values is not defined", "Parameter 'values' is required.")
        wanted = {_digits(v) for v in p["values"]} - {""}
        types = [p["entity_type"]] if p.get("entity_type") else ["LEAD", "CONTACT", "COMPANY"]
        found = {}
        for entity in types:
            ids = sorted(rid for (e, rid), nums in self.indexed.items() if e == entity and wanted & set(nums))
            if ids:
                found[entity] = ids[:20]
            if len(ids) >= 20:
                break  # as documented: 20 duplicates of one type hide the types after it
        return {"result": found or []}  # PHP's empty array: a JSON list

    def m_user_get(self, p: dict[str, Any]) -> dict[str, Any]:
        filt = p.get("FILTER") or p.get("filter") or {}
        rows = [u for u in self.users.values() if self._matches(u, filt)]
        return self._page(rows, p)

    def m_scope(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"result": sorted(self.scopes)}

    def _user(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("USER_ID"):
            user = self.users.get(int(p["USER_ID"]))
        elif p.get("USER_PHONE_INNER"):
            user = next(
                (u for u in self.users.values() if u["UF_PHONE_INNER"] == str(p["USER_PHONE_INNER"])), None
            )
        else:
            raise BitrixError(400, "ERROR_CORE", "USER_ID or USER_PHONE_INNER should be set")
        if user is None or not user["ACTIVE"]:
            raise BitrixError(400, "ERROR_CORE", "User is not found or is not active")
        return user

    def m_telephony_externalcall_register(self, p: dict[str, Any]) -> dict[str, Any]:
        user = self._user(p)
        if int(p.get("TYPE") or 0) not in (1, 2, 3, 4, 5):
            raise BitrixError(400, "ERROR_CORE", "Unknown TYPE")
        try:
            started = datetime.fromisoformat(str(p.get("CALL_START_DATE")))
        except ValueError:
            started = None
        if started is None or started.tzinfo is None:
            raise BitrixError(400, "ERROR_CORE", "CALL_START_DATE should be in the ISO-8601 format")
        if len(_digits(p.get("PHONE_NUMBER"))) < 3:
            raise BitrixError(400, "ERROR_CORE", "Unsupported phone number format")
        same = (
            ("EXTERNAL_CALL_ID",)
            if p.get("EXTERNAL_CALL_ID")
            else ("USER_ID", "PHONE_NUMBER", "TYPE", "CALL_START_DATE")
        )
        for call in self.open_calls.values():
            if all(call["params"].get(k) == p.get(k) for k in same):
                return {"result": call["result"]}
        entity, eid, created = p.get("CRM_ENTITY_TYPE"), p.get("CRM_ENTITY_ID"), []
        if not entity:
            number = _digits(p["PHONE_NUMBER"])
            entity, eid = next(
                ((e, rid) for (e, rid), nums in self.indexed.items() if number in nums), (None, None)
            )
        if not entity and int(p.get("CRM_CREATE") or 0):
            eid = self.add("LEAD", phones=(p["PHONE_NUMBER"],), TITLE=f"Call from {p['PHONE_NUMBER']}")
            entity, created = "LEAD", [{"ENTITY_TYPE": "LEAD", "ENTITY_ID": eid}]
        digest = hashlib.md5(repr(sorted(p.items())).encode()).hexdigest()
        call_id = f"externalCall.{digest}.{int(started.timestamp())}"
        result = {
            "CALL_ID": call_id,
            "CRM_CREATED_LEAD": created[0]["ENTITY_ID"] if created else None,
            "CRM_CREATED_ENTITIES": created,
            "CRM_ENTITY_TYPE": entity,
            "CRM_ENTITY_ID": int(eid) if eid else None,
        }
        self.open_calls[call_id] = {"params": dict(p), "user": user, "result": result}
        return {"result": result}

    def m_telephony_externalcall_finish(self, p: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(p.get("CALL_ID"), str):
            raise BitrixError(400, "INVALID_ARGUMENT", "CALL_ID must be a string")
        user = self._user(p)
        call = self.open_calls.pop(p["CALL_ID"], None)
        if call is None:
            raise BitrixError(
                400, "ERROR_CORE", "Call is not found (call should be registered prior to finishing"
            )
        reg, result, duration = call["params"], call["result"], int(p.get("DURATION") or 0)
        code = str(p.get("STATUS_CODE") or ("200" if duration > 0 else "304"))
        row = {
            "ID": str(len(self.stats) + 1),
            "CALL_ID": p["CALL_ID"],
            "EXTERNAL_CALL_ID": reg.get("EXTERNAL_CALL_ID"),
            "PORTAL_USER_ID": user["ID"],
            "PORTAL_NUMBER": reg.get("LINE_NUMBER") or "",
            "PHONE_NUMBER": reg["PHONE_NUMBER"],
            "CALL_TYPE": str(reg["TYPE"]),
            "CALL_DURATION": str(duration),
            "CALL_START_DATE": reg["CALL_START_DATE"],
            "CALL_FAILED_CODE": code,
            "CALL_FAILED_REASON": p.get("FAILED_REASON") or "",
            "CRM_ENTITY_TYPE": result["CRM_ENTITY_TYPE"],
            "CRM_ENTITY_ID": str(result["CRM_ENTITY_ID"]) if result["CRM_ENTITY_ID"] else None,
            "CRM_ACTIVITY_ID": str(next(self.ids)) if result["CRM_ENTITY_TYPE"] else None,
            "CALL_RECORD_URL": p.get("RECORD_URL") or None,
            "RECORD_FILE_ID": None,
            "COMMENT": None,
        }
        self.stats.append(row)
        answer = {k: v for k, v in row.items() if k not in STAT_FIELDS}
        return {"result": {**answer, "INCOMING": row["CALL_TYPE"], "CALL_STATUS": int(code == "200")}}

    def m_telephony_externalcall_attachrecord(self, p: dict[str, Any]) -> dict[str, Any]:
        row = next((r for r in self.stats if r["CALL_ID"] == p.get("CALL_ID")), None)
        if row is None:
            raise BitrixError(
                400,
                "ERROR_CORE",
                "Call is not found in the statistic table. Looks like it is not finished yet.",
            )
        if not p.get("RECORD_URL") and not p.get("FILENAME"):
            raise BitrixError(
                400,
                "ERROR_CORE",
                "Required parameters are not set. Request should contain or URL or FILENAME parameter",
            )
        row["CALL_RECORD_URL"], row["RECORD_FILE_ID"] = p.get("RECORD_URL"), next(self.ids)
        return {"result": {"FILE_ID": row["RECORD_FILE_ID"]}}

    def m_voximplant_statistic_get(self, p: dict[str, Any]) -> dict[str, Any]:
        rows = [r for r in self.stats if self._matches(r, p.get("FILTER") or {})]
        return self._page(rows, p)
