"""Zoho CRM: contacts (and leads) by phone, calls in the Calls module, over the REST API with OAuth.

- **Auth**: `_zoho_oauth` turns the refresh token into access tokens, sent as
  `Authorization: Zoho-oauthtoken <token>` to the api_domain Zoho names with each token;
  a 401 INVALID_TOKEN makes pbxlink fetch a new token once and repeat the request.
- **Lookup**: GET /crm/<version>/<module>/search?phone=… in each of `modules` (Contacts,
  optionally Leads), with the number's national digits, then with its E.164 form if that
  found nobody; Zoho answers 204 for no match and pages with `info.more_records`
  (`PER_PAGE` records, at most `MAX_PAGES` pages). `numbers().same` over every phone field
  keeps only the records that really have the number.
- **Open deals**: the first contact's Deals related list (one request), minus the deals
  whose Stage starts with "Closed".
- **Call log**: a Calls record (Subject, Call_Type Inbound/Outbound/Missed, Call_Start_Time,
  Call_Duration "mm:ss", Description, Who_Id = the contact or lead). Idempotency: with
  `key_field` (a custom Calls field that allows no duplicate values) the record is sent to
  /Calls/upsert with duplicate_check_fields = [key_field], Zoho's own exact check. Without
  it the Subject ends with `_callnote.marker(key)`, a COQL query looks for that marker
  before the insert, and the insert is never repeated blindly (a timeout may hide a commit).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from pbxlink.config import CrmConfig
from pbxlink.crm import _callnote
from pbxlink.crm._zoho_oauth import ZohoAuth
from pbxlink.crm.http import HttpClient
from pbxlink.crm.options import Options
from pbxlink.domain.crm import CallLogEntry, Contact, CrmAuthError, CrmError, CrmRequestError, Deal
from pbxlink.domain.phone import PhoneQuery, numbers
from pbxlink.domain.ports import CheckResult

log = logging.getLogger(__name__)

PER_PAGE = 100
MAX_PAGES = 3
PHONE_FIELDS = ("Phone", "Mobile", "Home_Phone", "Other_Phone", "Asst_Phone")
MODULES = {"Contacts": "contact", "Leads": "lead"}
SCOPES = (
    "ZohoCRM.modules.contacts.READ,ZohoCRM.modules.leads.READ,ZohoCRM.modules.deals.READ,"
    "ZohoCRM.modules.calls.ALL,ZohoCRM.coql.READ,ZohoSearch.securesearch.READ"
)


class ZohoConnector:
    kind = "zoho"

    def __init__(
        self,
        name: str,
        http: HttpClient,
        auth: ZohoAuth,
        *,
        version: str,
        modules: list[str],
        web_url: str,
        key_field: str | None,
    ) -> None:
        self.name = name
        self.http = http
        self.auth = auth
        self.version = version
        self.modules = modules
        self.web_url = web_url
        self.key_field = key_field

    def _api(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API request with a current token; after an INVALID_TOKEN 401, once more with a new one."""
        for attempt in (1, 2):
            token, domain = self.auth.token()
            try:
                body = self.http.json(
                    method,
                    f"{domain}/crm/{self.version}/{path}",
                    headers={"Authorization": f"Zoho-oauthtoken {token}"},
                    **kwargs,
                )
            except CrmAuthError as exc:
                if attempt == 1 and "invalid oauth token" in str(exc).lower():  # Zoho's INVALID_TOKEN
                    self.auth.drop(token)
                    continue
                raise CrmAuthError(f"{exc}; the refresh token needs the scopes {SCOPES}") from None
            return body
        raise AssertionError("unreachable")

    # -- lookup -----------------------------------------------------------------------------------

    def find_contacts(self, number: PhoneQuery) -> list[Contact]:
        contacts = [self._contact(module, record) for module, record in self._search(number)]
        if contacts and contacts[0].kind == "contact":  # deals of the best match only: one request
            contacts[0] = replace(contacts[0], deals=self._deals(contacts[0].id))
        return contacts

    def _search(self, q: PhoneQuery) -> list[tuple[str, dict[str, Any]]]:
        forms = [str(phonenumbers.parse(q.e164).national_number), q.e164] if q.e164 else [q.digits]
        same = numbers().same
        for form in dict.fromkeys(forms):
            found: dict[tuple[str, str], dict[str, Any]] = {}
            for module in self.modules:
                for page in range(1, MAX_PAGES + 1):
                    params = {"phone": form, "page": page, "per_page": PER_PAGE}
                    body = self._api("GET", f"{module}/search", params=params) or {}
                    for r in body.get("data") or []:
                        if any(same(q, r.get(f)) for f in PHONE_FIELDS):
                            found.setdefault((module, str(r["id"])), r)
                    if not (body.get("info") or {}).get("more_records"):
                        break
            if found:
                return [(module, r) for (module, _), r in found.items()]
        return []

    def _contact(self, module: str, r: dict[str, Any]) -> Contact:
        name = r.get("Full_Name") or " ".join(str(r[k]) for k in ("First_Name", "Last_Name") if r.get(k))
        account = r.get("Account_Name")
        owner = r.get("Owner") or {}
        return Contact(
            crm=self.name,
            id=str(r["id"]),
            name=str(name),
            company=account.get("name") if isinstance(account, dict) else r.get("Company") or None,
            owner=owner.get("name") or owner.get("email") or None,
            url=self._tab(module, str(r["id"])),
            phones=tuple(str(r[f]) for f in PHONE_FIELDS if r.get(f)),
            kind=MODULES[module],
        )

    def _deals(self, contact_id: str) -> tuple[Deal, ...]:
        params = {"fields": "Deal_Name,Stage,Amount", "per_page": 20}
        try:
            body = self._api("GET", f"Contacts/{contact_id}/Deals", params=params) or {}
        except (CrmRequestError, CrmAuthError) as exc:
            log.warning("%s; the pop shows no deals", exc)
            return ()
        deals = []
        for d in body.get("data") or []:
            stage = str(d.get("Stage") or "")
            if stage.lower().startswith("closed"):
                continue
            amount = d.get("Amount")
            shown = (
                f"{d.get('$currency_symbol') or ''}{amount:,.2f}" if isinstance(amount, int | float) else None
            )
            deals.append(
                Deal(str(d.get("Deal_Name") or ""), shown, stage or None, self._tab("Potentials", d["id"]))
            )
        return tuple(deals)

    # -- call log ---------------------------------------------------------------------------------

    def log_call(self, entry: CallLogEntry) -> str:
        record = self._record(entry, entry.contact_id)
        if self.key_field:
            record[self.key_field] = entry.key
            body = self._api(
                "POST", "Calls/upsert", json={"data": [record], "duplicate_check_fields": [self.key_field]}
            )
            return self._created_id(body)
        ref = _callnote.marker(entry.key)
        record["Subject"] += f" [{ref}]"
        query = f"select id from Calls where Subject like '%{ref}%' limit 1"
        logged = self._api("POST", "coql", json={"select_query": query}) or {}
        if logged.get("data"):
            return str(logged["data"][0]["id"])
        return self._created_id(self._api("POST", "Calls", json={"data": [record]}, retry=False))

    def _record(self, entry: CallLogEntry, who: str | None) -> dict[str, Any]:
        missed = not entry.answered and entry.direction == "inbound"
        number = "".join(c for c in entry.number if c.isdigit() or c == "+") or "unknown number"
        record: dict[str, Any] = {
            "Subject": f"{_callnote.title(entry)} {number}",
            "Call_Type": "Missed" if missed else "Inbound" if entry.direction == "inbound" else "Outbound",
            "Call_Start_Time": _callnote.utc(entry.started_at).isoformat(timespec="seconds"),
            "Description": "\n".join(f"{label}: {value}" for label, value in _callnote.facts(entry)),
        }
        if not missed:
            seconds = max(0, round(entry.duration_s)) if entry.answered else 0
            record["Call_Duration"] = f"{seconds // 60:02d}:{seconds % 60:02d}"
        if who:
            record["Who_Id"] = {"id": who}
        return record

    def _created_id(self, body: Any) -> str:
        rows = body.get("data") if isinstance(body, dict) else None
        row = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], dict) else {}
        details = row.get("details") or {}
        if row.get("status") != "success" or not details.get("id"):
            field = f" ({details.get('api_name')})" if details.get("api_name") else ""
            raise CrmRequestError(f"{self.name}: Calls: {row.get('code')}: {row.get('message')}{field}")
        return str(details["id"])

    # -- links and check --------------------------------------------------------------------------

    def contact_url(self, contact_id: str) -> str:
        return self._tab("Contacts", contact_id)

    def _tab(self, tab: str, record_id: str) -> str:
        return f"{self.web_url}/tab/{tab}/{record_id}"

    def check(self) -> CheckResult:
        what = f"CRM {self.name} ({self.kind})"
        try:
            self._api("GET", "Contacts", params={"fields": "Last_Name", "per_page": 1})
        except CrmError as exc:
            return CheckResult(False, what, str(exc))
        mode = f"upsert on {self.key_field}" if self.key_field else "COQL marker search"
        return CheckResult(True, what, f"token refreshed; contacts readable; calls logged once by {mode}")


def from_config(cfg: CrmConfig) -> ZohoConnector:
    opts = Options(cfg)
    client_id = opts.string("client_id")
    client_secret = opts.secret("client_secret")
    refresh_token = opts.secret("refresh_token")
    accounts_url = opts.url("accounts_url", "https://accounts.zoho.com")
    host = urlsplit(accounts_url).netloc
    crm_site = "https://crm." + host.removeprefix("accounts.") if host.startswith("accounts.") else None
    web = opts.url("web_url", crm_site or "https://crm.zoho.com")
    org = opts.string("org") if opts.get("org") is not None else None
    version = opts.string("api_version", "v6")
    modules = opts.get("modules", ["Contacts"])
    if isinstance(modules, str):  # from the environment: "Contacts,Leads"
        modules = [m.strip() for m in modules.split(",") if m.strip()]
    if not isinstance(modules, list) or not modules or not set(modules) <= set(MODULES):
        raise opts.fail("modules", 'expected a list of "Contacts", "Leads"')
    key_field = opts.string("key_field") if opts.get("key_field") is not None else None
    opts.done()
    http = HttpClient(cfg.name, accounts_url, timeout=cfg.timeout, secrets=[client_secret, refresh_token])
    auth = ZohoAuth(
        http, accounts_url, client_id=client_id, client_secret=client_secret, refresh_token=refresh_token
    )
    return ZohoConnector(
        cfg.name,
        http,
        auth,
        version=version,
        modules=list(modules),
        web_url=f"{web}/crm/{org}" if org else f"{web}/crm",
        key_field=key_field,
    )
