"""Odoo: contacts (res.partner) over the external JSON-RPC API at <url>/jsonrpc.

- **Login and errors**: see `_odoo_rpc` (JSON-RPC "common" authenticate, "object" execute_kw).
- **Lookup**: Odoo stores numbers as typed. pbxlink asks for `=ilike` on the pattern
  `%5%5%1%2%3%4%5%6%7%` (the number's last digits in order, anything between them) over
  every phone field the partner model has (`phone`, `mobile`: asked once with fields_get,
  since newer Odoo versions dropped `mobile`), so "(555) 123-4567", "+1 555-123-4567" and
  "555.123.4567" all come back; `numbers().same` then keeps the partners that really have
  the number. At most `MAX_PAGES` pages of `PAGE` partners are read.
- **Open deals**: the crm.lead opportunities of the found partners whose stage is not won
  (lost ones are archived, so never returned), in one request; skipped, with one log line,
  when the CRM app is not installed or the user may not read it.
- **Call log**: Odoo Community has no call object, so a call becomes a note in the
  partner's chatter (res.partner message_post, subtype "mail.mt_note"). Notes have no
  external id: the note carries `_callnote.marker(key)`, and log_call first searches the
  partner's messages for that marker, returning the note found instead of posting twice.
  The post itself is never retried blindly (a timeout may hide a commit); the next
  log_call finds the note. A call without a partner (nobody has the number) is not
  logged: log_call returns "" and says so in the log.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from pbxlink.config import CrmConfig
from pbxlink.crm import _callnote
from pbxlink.crm._odoo_rpc import OdooRpc
from pbxlink.crm.http import HttpClient
from pbxlink.crm.options import Options
from pbxlink.domain.crm import (
    CallLogEntry,
    Contact,
    CrmAuthError,
    CrmError,
    CrmRequestError,
    Deal,
)
from pbxlink.domain.phone import PhoneQuery, numbers
from pbxlink.domain.ports import CheckResult

log = logging.getLogger(__name__)

PAGE = 80
MAX_PAGES = 3
PHONE_FIELDS = ("phone", "mobile")
LEAD_FIELDS = ("name", "stage_id", "expected_revenue", "planned_revenue", "company_currency")


class OdooConnector:
    kind = "odoo"

    def __init__(self, name: str, rpc: OdooRpc, web_url: str) -> None:
        self.name = name
        self.rpc = rpc
        self.web_url = web_url
        self._fields: dict[str, list[str]] = {}  # model -> the wanted fields it has ([] = no such model)
        self._html_body = True  # Odoo >= 17 escapes a plain-str body unless told body_is_html

    def _known(self, model: str, wanted: tuple[str, ...]) -> list[str]:
        """The `wanted` fields `model` has, asked once: versions differ (`mobile`, `expected_revenue`)."""
        if model not in self._fields:
            got = self.rpc.execute(
                model, "fields_get", [], {"allfields": list(wanted), "attributes": ["type"]}
            )
            self._fields[model] = [f for f in wanted if f in (got or {})]
        return self._fields[model]

    def _lead_fields(self) -> list[str]:
        """crm.lead's fields, or [] (said once in the log) when the CRM app is missing or unreadable."""
        try:
            return self._known("crm.lead", LEAD_FIELDS)
        except (CrmRequestError, CrmAuthError) as exc:
            log.warning("%s; pops show no deals (install the CRM app or let the user read it)", exc)
            self._fields["crm.lead"] = []
            return []

    # -- Connector --------------------------------------------------------------------------------

    def _partners(self, q: PhoneQuery) -> tuple[list[str], list[dict[str, Any]]]:
        fields = self._known("res.partner", PHONE_FIELDS) or ["phone"]
        pattern = "%" + "%".join(q.tail) + "%"
        domain: list[Any] = ["|"] * (len(fields) - 1) + [[f, "=ilike", pattern] for f in fields]
        wanted = ["name", "is_company", "parent_id", "commercial_company_name", "user_id", *fields]
        found: dict[int, dict[str, Any]] = {}
        same = numbers().same
        for page in range(MAX_PAGES):
            batch = self.rpc.execute(
                "res.partner",
                "search_read",
                [domain],
                {"fields": wanted, "offset": page * PAGE, "limit": PAGE, "order": "id desc"},
            )
            found.update((r["id"], r) for r in batch if any(same(q, r.get(f) or None) for f in fields))
            if len(batch) < PAGE:
                break
        people_first = sorted(found.values(), key=lambda r: bool(r.get("is_company")))
        return fields, people_first

    def find_contacts(self, number: PhoneQuery) -> list[Contact]:
        fields, partners = self._partners(number)
        deals = self._deals([p["id"] for p in partners]) if partners else {}
        return [self._contact(p, fields, deals.get(p["id"], ())) for p in partners]

    def _contact(self, p: dict[str, Any], fields: list[str], deals: tuple[Deal, ...]) -> Contact:
        company = p["parent_id"][1] if p.get("parent_id") else None
        if not company and not p.get("is_company"):
            company = p.get("commercial_company_name") or None
        return Contact(
            crm=self.name,
            id=str(p["id"]),
            name=str(p.get("name") or ""),
            company=company,
            owner=p["user_id"][1] if p.get("user_id") else None,
            url=self.contact_url(str(p["id"])),
            phones=tuple(str(p[f]) for f in fields if p.get(f)),
            deals=deals,
            kind="company" if p.get("is_company") else "contact",
        )

    def _deals(self, partner_ids: list[int]) -> dict[int, tuple[Deal, ...]]:
        fields = self._lead_fields()
        if not fields:
            return {}
        domain = [
            ["partner_id", "in", partner_ids],
            ["type", "=", "opportunity"],
            ["stage_id.is_won", "=", False],
        ]
        try:
            leads = self.rpc.execute(
                "crm.lead",
                "search_read",
                [domain],
                {"fields": ["partner_id", *fields], "limit": 50, "order": "id desc"},
            )
        except (CrmRequestError, CrmAuthError) as exc:
            log.warning("%s; the pop shows no deals", exc)
            return {}
        found: dict[int, list[Deal]] = defaultdict(list)
        for lead in leads:
            if lead.get("partner_id"):
                found[lead["partner_id"][0]].append(self._deal(lead))
        return {k: tuple(v) for k, v in found.items()}

    def _deal(self, lead: dict[str, Any]) -> Deal:
        revenue = lead.get("expected_revenue", lead.get("planned_revenue"))
        currency = lead["company_currency"][1] if lead.get("company_currency") else ""
        amount = (
            f"{revenue:,.2f} {currency}".strip() if isinstance(revenue, int | float) and revenue else None
        )
        return Deal(
            title=str(lead.get("name") or ""),
            amount=amount,
            stage=lead["stage_id"][1] if lead.get("stage_id") else None,
            url=self._web(lead["id"], "crm.lead"),
        )

    def log_call(self, entry: CallLogEntry) -> str:
        partner = entry.contact_id
        if partner is None or not partner.isdigit():
            log.info(
                "%s: call %s not logged: no partner has the number %s (a note needs a contact to go on)",
                self.name,
                entry.key,
                entry.number,
            )
            return ""
        pid, ref = int(partner), _callnote.marker(entry.key)
        domain = [["model", "=", "res.partner"], ["res_id", "=", pid], ["body", "ilike", ref]]
        logged = self.rpc.execute("mail.message", "search_read", [domain], {"fields": ["id"], "limit": 1})
        if logged:
            return str(logged[0]["id"])
        note = {
            "body": _callnote.html(entry, _callnote.title(entry)),
            "message_type": "comment",
            "subtype_xmlid": "mail.mt_note",
        }
        if self._html_body:
            try:
                return _message_id(self._post(pid, {**note, "body_is_html": True}))
            except CrmRequestError as exc:
                if "body_is_html" not in str(exc):
                    raise
                self._html_body = False  # Odoo 16 and older: a str body is HTML already
        return _message_id(self._post(pid, note))

    def _post(self, pid: int, note: dict[str, Any]) -> Any:
        return self.rpc.execute("res.partner", "message_post", [[pid]], note, retry=False)

    def contact_url(self, contact_id: str) -> str:
        return self._web(contact_id, "res.partner")

    def _web(self, record_id: int | str, model: str) -> str:
        # /web#… opens the form in every version; 17+ also has /odoo/contacts/<id>, older ones do not
        return f"{self.web_url}/web#id={record_id}&model={model}&view_type=form"

    def check(self) -> CheckResult:
        what = f"CRM {self.name} ({self.kind})"
        try:
            self.rpc.user(fresh=True)
            self.rpc.execute("res.partner", "search_read", [[]], {"fields": ["id"], "limit": 1})
            deals = "open deals from the CRM app" if self._lead_fields() else "no CRM app: no deals"
        except CrmError as exc:
            return CheckResult(False, what, str(exc))
        return CheckResult(
            True, what, f"logged in as {self.rpc.login} on {self.rpc.db}; contacts readable; {deals}"
        )


def _message_id(result: Any) -> str:
    """message_post answers the new message's id (a list of one in some versions)."""
    value = result[0] if isinstance(result, list) and result else result
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise CrmRequestError(f"message_post answered {str(result)[:80]!r}, not a message id")


def from_config(cfg: CrmConfig) -> OdooConnector:
    opts = Options(cfg)
    url = opts.url("url")  # no default: every Odoo has its own address
    db = opts.string("db")
    login = opts.string("username")
    key = opts.secret("api_key")
    web_url = opts.url("web_url", url)
    opts.done()
    http = HttpClient(cfg.name, url, timeout=cfg.timeout, secrets=[key])
    return OdooConnector(cfg.name, OdooRpc(http, db=db, login=login, key=key), web_url)
