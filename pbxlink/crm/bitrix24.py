"""Bitrix24 through an inbound webhook: callers by crm.duplicate.findbycomm, calls by telephony.externalCall.

Lookup: one `crm.duplicate.findbycomm` over the number's written forms (Bitrix compares digits
exactly: E.164 with and without "+", national, "00" + international), then `crm.<kind>.list`
(at most MAX_PAGES pages) for the first kind that has any (contacts, companies, leads), kept
only when one of their phones really is the number; then one `user.get` (owners' names and
extensions), one `crm.company.list` (the contacts' companies), one `crm.deal.list` (open deals).

Call log: `telephony.externalCall.register`, `.finish` (a "call" activity and a statistics
row), `.attachRecord`. Idempotency is Bitrix's own external id: register carries
`EXTERNAL_CALL_ID = entry.key`, the statistics keep it and `voximplant.statistic.get` filters on
it; a key found there is not logged again. A lost register answer is harmless (the same
EXTERNAL_CALL_ID gets the same CALL_ID, and an unfinished registration is no entry); a lost
finish answer is found by that search, at once and on any later retry.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from pbxlink.config import CrmConfig
from pbxlink.crm import _bitrix24_records as rec
from pbxlink.crm.http import HttpClient
from pbxlink.crm.options import Options
from pbxlink.domain.crm import (
    CallLogEntry,
    Contact,
    CrmAuthError,
    CrmError,
    CrmRequestError,
    CrmUnavailable,
    Deal,
)
from pbxlink.domain.phone import PhoneQuery
from pbxlink.domain.ports import CheckResult

log = logging.getLogger(__name__)

MAX_PAGES = 3  # of 50 records: more callers than that with one number is junk, not a screen-pop
MAX_DEALS = 5
SCOPES = ("crm", "telephony", "user")
AUTH_HINT = (
    "check that the inbound webhook still exists in Bitrix24, that [[crm]] webhook is its whole URL, "
    f"and that it has the permissions {', '.join(SCOPES)}"
)
_WEBHOOK = re.compile(r"^(?P<root>.*?)/rest/(?P<user>\d+)/(?P<code>[^/]+)/?$")

STATUS_CODES = {"busy": "486", "failed": "OTHER"}  # every other miss is "304", a missed call
CALL_TYPES = {"outbound": 1, "inbound": 2, "internal": 1}


@dataclass
class Bitrix24:
    """One Bitrix24 portal, reached through one inbound webhook of one of its users."""

    name: str
    http: HttpClient
    portal: str  # where the web app opens records
    default_user: int  # gets the calls of agents that no Bitrix24 user has as internal phone
    create_lead: bool
    kind: str = field(default="bitrix24", init=False)

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One REST method; its whole answer (result, next, total)."""
        try:
            body = self.http.json("POST", f"{method}.json", json=params)
        except CrmAuthError as exc:
            raise CrmAuthError(f"{exc}; {AUTH_HINT}") from None
        if not isinstance(body, dict) or "result" not in body:
            raise CrmRequestError(f"{self.name}: {method} answered without a result")
        return body

    def result(self, method: str, params: dict[str, Any]) -> Any:
        return self.call(method, params)["result"]

    def rows(self, method: str, params: dict[str, Any], pages: int = 1) -> list[dict[str, Any]]:
        """The records of a list method, following `next` for at most `pages` pages."""
        rows: list[dict[str, Any]] = []
        start: Any = 0
        for _ in range(pages):
            body = self.call(method, {**params, "start": start})
            rows += [r for r in body["result"] or [] if isinstance(r, dict)]
            start = body.get("next")
            if not isinstance(start, int):
                break
        return rows

    def find_contacts(self, number: PhoneQuery) -> list[Contact]:
        found = self.result("crm.duplicate.findbycomm", {"type": "PHONE", "values": rec.forms(number)})
        for entity, (kind, _, method, fields) in rec.KINDS.items():
            ids = found.get(entity) if isinstance(found, dict) else None
            if not ids:
                continue
            select = ["ID", "ASSIGNED_BY_ID", "PHONE", *fields]
            params = {"filter": {"ID": ids}, "select": select, "order": {"DATE_MODIFY": "DESC"}}
            rows = [r for r in self.rows(method, params, MAX_PAGES) if rec.has(r, number)]
            if not rows:
                continue
            user_ids = sorted({str(r["ASSIGNED_BY_ID"]) for r in rows if r.get("ASSIGNED_BY_ID")})
            owners = rec.owners(self.rows("user.get", {"FILTER": {"ID": user_ids}}) if user_ids else [])
            company_ids = sorted(
                {str(r["COMPANY_ID"]) for r in rows if str(r.get("COMPANY_ID") or "0") != "0"}
            )
            companies = self.rows("crm.company.list", {"filter": {"ID": company_ids}}) if company_ids else []
            titles = {str(c["ID"]): c.get("TITLE") for c in companies}
            deals = self.deals(kind, [str(r["ID"]) for r in rows])
            return [rec.contact(self.name, self.portal, entity, r, owners, titles, deals) for r in rows]
        return []

    def deals(self, kind: str, ids: list[str]) -> dict[str, list[Deal]]:
        """Open deals by contact (or company) id, newest first; leads have none."""
        key = rec.DEAL_KEYS.get(kind)
        if key is None:
            return {}
        select = ["ID", "TITLE", "OPPORTUNITY", "CURRENCY_ID", "STAGE_ID", key]
        params = {"filter": {key: ids, "CLOSED": "N"}, "select": select, "order": {"DATE_MODIFY": "DESC"}}
        out: dict[str, list[Deal]] = {}
        for d in self.rows("crm.deal.list", params):
            mine = out.setdefault(str(d.get(key)), [])
            if len(mine) < MAX_DEALS:
                mine.append(rec.deal(self.portal, d))
        return out

    def log_call(self, entry: CallLogEntry) -> str:
        found = self.logged(entry.key)
        if found is None:
            user = self.user_for(entry.agent)
            registered = self.result("telephony.externalcall.register", self.registration(entry, user))
            if not isinstance(registered, dict) or not registered.get("CALL_ID"):
                raise CrmRequestError(f"{self.name}: telephony.externalcall.register gave no CALL_ID")
            finish = {
                "CALL_ID": registered["CALL_ID"],
                "USER_ID": user,
                "DURATION": round(entry.duration_s),
                "STATUS_CODE": "200" if entry.answered else STATUS_CODES.get(entry.miss_reason or "", "304"),
                "FAILED_REASON": "" if entry.answered else (entry.miss_reason or "missed").replace("_", " "),
                "ADD_TO_CHAT": 0,
            }
            try:
                found = self.result("telephony.externalcall.finish", finish) or {}
                found.setdefault("CALL_ID", finish["CALL_ID"])
            except (CrmUnavailable, CrmRequestError):
                found = self.logged(entry.key)  # committed, but the answer was lost
                if found is None:
                    raise
        call_id = str(found["CALL_ID"])
        who = (self.name, entry.key)
        if entry.recording_url and not (found.get("CALL_RECORD_URL") or found.get("RECORD_FILE_ID")):
            record = {"CALL_ID": call_id, "RECORD_URL": entry.recording_url}
            try:
                self.call("telephony.externalcall.attachRecord", record)
            except CrmRequestError as exc:
                log.warning(
                    "%s: call %s logged without its recording (the portal must reach it): %s", *who, exc
                )
        return call_id

    def registration(self, entry: CallLogEntry, user: int) -> dict[str, Any]:
        started = entry.started_at if entry.started_at.tzinfo else entry.started_at.replace(tzinfo=UTC)
        params: dict[str, Any] = {
            "USER_ID": user,
            "PHONE_NUMBER": entry.number,
            "TYPE": CALL_TYPES[entry.direction],
            "CALL_START_DATE": started.isoformat(timespec="seconds"),
            "CRM_CREATE": int(self.create_lead),
            "SHOW": 0,
            "ADD_TO_CHAT": 0,
            "EXTERNAL_CALL_ID": entry.key,
        }
        if entry.contact_id:
            entity, number = rec.entity(entry.contact_id)
            params.update(CRM_ENTITY_TYPE=entity, CRM_ENTITY_ID=int(number))
        return params

    def logged(self, key: str) -> dict[str, Any] | None:
        """The statistics row of the call logged under `key` (checked: an old portal ignores the filter)."""
        rows = self.rows("voximplant.statistic.get", {"FILTER": {"EXTERNAL_CALL_ID": key}})
        return next((r for r in rows if r.get("EXTERNAL_CALL_ID") == key), None)

    def user_for(self, extension: str | None) -> int:
        """The active user whose internal phone is the agent's extension, else the default user."""
        if extension:
            users = self.rows("user.get", {"FILTER": {"UF_PHONE_INNER": extension, "ACTIVE": True}})
            if users:
                return int(users[0]["ID"])
            log.info(
                "%s: no active Bitrix24 user has the internal phone %s; logging the call for user %d "
                "(set it in the agent's Bitrix24 profile)",
                self.name,
                extension,
                self.default_user,
            )
        return self.default_user

    def contact_url(self, contact_id: str) -> str:
        return rec.record_url(self.portal, contact_id)

    def check(self) -> CheckResult:
        what = f"CRM {self.name} ({self.kind})"
        try:
            granted = self.result("scope", {}) or []
        except CrmError as exc:
            return CheckResult(False, what, str(exc))
        missing = ", ".join(s for s in SCOPES if s not in granted)
        if missing:
            return CheckResult(
                False, what, f"the inbound webhook lacks the permission {missing}: tick it in Bitrix24"
            )
        return CheckResult(True, what, f"inbound webhook works, with the permissions {', '.join(SCOPES)}")


def from_config(cfg: CrmConfig) -> Bitrix24:
    opts = Options(cfg)
    webhook = opts.secret("webhook").strip()
    parts = urlsplit(webhook)
    match = _WEBHOOK.match(parts.path)
    if parts.scheme not in ("http", "https") or not parts.netloc or not match:
        raise opts.fail("webhook", "expected the inbound webhook URL https://<portal>/rest/<user id>/<code>/")
    root = f"{parts.scheme}://{parts.netloc}{match['root']}"
    portal = opts.url("portal_url", root)
    user = opts.get("default_user_id", int(match["user"]))
    if isinstance(user, bool) or not isinstance(user, int) or user < 1:
        raise opts.fail("default_user_id", "expected the numeric id of a Bitrix24 user")
    create_lead = opts.get("create_lead", False)
    if not isinstance(create_lead, bool):
        raise opts.fail("create_lead", "expected true or false")
    opts.done()
    base = f"{root}/rest/{match['user']}/{match['code']}/"
    http = HttpClient(cfg.name, base, timeout=cfg.timeout, secrets=[webhook, base, match["code"]])
    return Bitrix24(cfg.name, http, portal, user, create_lead)
