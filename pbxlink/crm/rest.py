"""Any CRM or in-house system with an HTTP API, set up by URL templates and a field mapping.

Lookup: `lookup_url` (GET, or POST with the `lookup_body` JSON template) with the number put
in as {number}, {e164}, {digits} or {tail}; `results` is the dotted path to the records,
`fields` maps a record to a contact, `next_url` (optional) is the dotted path to the next
page's URL, followed with GET for at most MAX_PAGES pages on the same host. Records are kept
only when a mapped phone really is the number (all of them when `phones` is not mapped).
A {number} not written like a phone number is refused before any request (see _rest_mapping
for why no value can reach another host).

Call log: `log_url` receives the call as JSON (the whole CallLogEntry, or what `log_fields`
maps) with `Idempotency-Key: <entry.key>`. pbxlink cannot search a system it does not know,
so idempotency is the receiver's part: it keeps the key with the entry and answers a repeat
with the existing entry (2xx) or 409 Conflict, which counts as logged.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from pbxlink.config import CrmConfig
from pbxlink.crm import _rest_mapping as m
from pbxlink.crm._rest_config import choice, dotted_path, headers_and_secrets, table, url_template
from pbxlink.crm.http import HttpClient
from pbxlink.crm.options import Options
from pbxlink.domain.crm import CallLogEntry, Contact, CrmError, CrmRequestError, Deal
from pbxlink.domain.phone import PhoneQuery, numbers
from pbxlink.domain.ports import CheckResult

log = logging.getLogger(__name__)

MAX_PAGES = 3
LOOKUP_VALUES = frozenset({"number", "e164", "digits", "tail"})
DEAL_FIELDS = ("title", "amount", "stage", "url")
FIELDS = {"id", "name", "company", "owner", "owner_extension", "url", "phones", "deals"} | {
    f"deal.{k}" for k in DEAL_FIELDS
}
ENTRY_FIELDS = (
    "key", "direction", "number", "started_at", "duration_s", "disposition", "miss_reason",
    "agent", "caller_name", "recording_url", "contact_id", "owner",
)  # fmt: skip
_PHONE = re.compile(r"^(?!.*\.\.)\+?[\d\s().\-]+(?:\s*(?:;ext=|ext\.?|x|#)\s*\d+)?$", re.IGNORECASE)


class Refused(CrmRequestError):
    """A 404 or 409 with the answer's body: "nobody" for a lookup, "already logged" for a call."""

    def __init__(self, message: str, status: int, body: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class _Client(HttpClient):
    def error_for(self, what: str, resp: requests.Response) -> CrmError:
        error = super().error_for(what, resp)
        return (
            Refused(str(error), resp.status_code, m.json_of(resp))
            if resp.status_code in (404, 409)
            else error
        )


@dataclass
class Rest:
    """One system reached by configured URLs; the module docstring has the contract."""

    name: str
    http: HttpClient
    lookup_url: str | None = None
    lookup_method: str = "GET"
    lookup_body: Any = None
    results: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    next_url: str | None = None
    empty_on_404: bool = False
    contact_url_template: str | None = None
    log_url: str | None = None
    log_method: str = "POST"
    log_fields: dict[str, str] = field(default_factory=dict)
    log_id: str | None = None
    check_number: str | None = None
    check_url: str | None = None
    kind: str = field(default="rest", init=False)

    def find_contacts(self, number: PhoneQuery) -> list[Contact]:
        if self.lookup_url is None:
            return []
        values = {"number": number.raw, "e164": number.e164, "digits": number.digits, "tail": number.tail}
        wanted = m.used(self.lookup_url) | m.used(self.lookup_body)
        if "number" in wanted and not _PHONE.match(number.raw):
            raise CrmRequestError(f"{self.name}: {number.raw[:40]!r} is not written like a phone number")
        if "e164" in wanted and number.e164 is None:
            return []  # not askable in the form this system wants
        url: str | None = m.fill_url(self.lookup_url, values)
        body = m.fill_json(self.lookup_body, values) if self.lookup_method == "POST" else None
        records: list[Any] = []
        for page in range(MAX_PAGES):
            if url is None:
                break
            try:
                answer = self.http.json(
                    "GET" if page else self.lookup_method, url, json=None if page else body
                )
            except Refused as exc:
                if self.empty_on_404 and exc.status == 404:
                    break
                raise
            found = m.get(answer, self.results)
            records += found if isinstance(found, list) else [found] if isinstance(found, dict) else []
            url = self.next_page(url, answer)
        contacts = [c for c in (self.contact(r) for r in records if isinstance(r, dict)) if c]
        if "phones" not in self.fields:
            return contacts
        return [c for c in contacts if any(numbers().same(number, p) for p in c.phones)]

    def next_page(self, url: str, answer: Any) -> str | None:
        """The next page's URL, when the answer names one on the same host."""
        link = m.get(answer, self.next_url) if self.next_url else None
        if not isinstance(link, str) or not link:
            return None
        nxt = urljoin(url, link)
        if urlsplit(nxt)[:2] != urlsplit(url)[:2]:
            log.warning("%s: not following a next page on another host (%s)", self.name, urlsplit(nxt).netloc)
            return None
        return nxt

    def contact(self, record: dict[str, Any]) -> Contact | None:
        cid = m.text(m.get(record, self.fields["id"]))
        if not cid:
            return None
        got = {k: m.text(m.get(record, self.fields[k])) if k in self.fields else None for k in FIELDS}
        deals = m.get(record, self.fields["deals"]) if "deals" in self.fields else None
        return Contact(
            crm=self.name,
            id=cid,
            name=got["name"] or cid,
            company=got["company"],
            owner=got["owner"],
            owner_extension=got["owner_extension"],
            url=got["url"] or (self.contact_url(cid) or None),
            phones=tuple(t for p in m.every(record, self.fields.get("phones", "")) if (t := m.text(p))),
            deals=tuple(self.deal(d) for d in deals if isinstance(d, dict))
            if isinstance(deals, list)
            else (),
        )

    def deal(self, record: dict[str, Any]) -> Deal:
        title, amount, stage, url = (
            m.text(m.get(record, self.fields.get(f"deal.{k}", k))) for k in DEAL_FIELDS
        )
        return Deal(title or "", amount, stage, url)

    def log_call(self, entry: CallLogEntry) -> str:
        if self.log_url is None:
            return entry.key  # lookups only: nothing is logged to this system
        full = {k: getattr(entry, k) for k in ENTRY_FIELDS} | {"started_at": entry.started_at.isoformat()}
        body = m.nest(
            {out: full[attr] for out, attr in (self.log_fields or {k: k for k in ENTRY_FIELDS}).items()}
        )
        headers = {"Idempotency-Key": entry.key}
        try:  # a 2xx that is not JSON still means "logged"
            answer = m.json_of(self.http.request(self.log_method, self.log_url, json=body, headers=headers))
        except Refused as exc:
            if exc.status != 409:
                raise
            answer = exc.body  # logged before: the body names that entry
        return (m.text(m.get(answer, self.log_id)) if self.log_id else None) or entry.key

    def contact_url(self, contact_id: str) -> str:
        return m.fill_url(self.contact_url_template, {"id": contact_id}) if self.contact_url_template else ""

    def check(self) -> CheckResult:
        what = f"CRM {self.name} ({self.kind})"
        query = numbers().query(self.check_number)
        try:
            if query is not None:
                found = self.find_contacts(query)
                return CheckResult(
                    True, what, f"lookup of {self.check_number} answered: {len(found)} contact(s)"
                )
            if self.check_url:
                resp = self.http.request("GET", self.check_url)
                return CheckResult(
                    True, what, f"GET {urlsplit(self.check_url).path} answered {resp.status_code}"
                )
        except CrmError as exc:
            return CheckResult(False, what, str(exc))
        return CheckResult(
            True, what, "configured, not verified: set check_number or check_url", warning=True
        )


def from_config(cfg: CrmConfig) -> Rest:
    opts = Options(cfg)
    lookup_url = url_template(opts, "lookup_url", LOOKUP_VALUES)
    log_url = url_template(opts, "log_url")
    if lookup_url is None and log_url is None:
        raise opts.fail("lookup_url", "missing (set lookup_url, log_url or both)")
    body = opts.get("lookup_body")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            raise opts.fail("lookup_body", "expected a JSON template or a table") from None
    method = choice(opts, "lookup_method", ("GET", "POST"))
    if body is not None and method != "POST":
        raise opts.fail("lookup_body", 'is sent with lookup_method = "POST" only')
    if m.used(body) - LOOKUP_VALUES:
        raise opts.fail("lookup_body", "unknown placeholder (known: {number}, {e164}, {digits}, {tail})")
    fields = table(opts, "fields", FIELDS)
    if lookup_url and "id" not in fields:
        raise opts.fail("fields", 'missing id (the dotted path of a record\'s id, e.g. id = "id")')
    check_number = opts.get("check_number")
    if check_number is not None and numbers().query(str(check_number)) is None:
        raise opts.fail("check_number", "expected a phone number")
    empty_on_404 = opts.get("empty_on_404", False)
    if not isinstance(empty_on_404, bool):
        raise opts.fail("empty_on_404", "expected true or false")
    headers, secrets = headers_and_secrets(opts)
    base = lookup_url or log_url or ""
    rest = Rest(
        cfg.name,
        _Client(cfg.name, base, timeout=cfg.timeout, headers=headers, secrets=secrets),
        lookup_url=lookup_url,
        lookup_method=method,
        lookup_body=body,
        results=dotted_path(opts, "results") or "",
        fields=fields,
        next_url=dotted_path(opts, "next_url"),
        empty_on_404=empty_on_404,
        contact_url_template=url_template(opts, "contact_url", frozenset({"id"})),
        log_url=log_url,
        log_method=choice(opts, "log_method", ("POST", "PUT")),
        log_fields=table(opts, "log_fields", ENTRY_FIELDS, values=True),
        log_id=dotted_path(opts, "log_id"),
        check_number=None if check_number is None else str(check_number),
        check_url=url_template(opts, "check_url"),
    )
    opts.done()
    return rest
