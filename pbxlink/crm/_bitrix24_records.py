"""Bitrix24's records as pbxlink sees them: the number's searchable forms, ids, contacts, deals, links.

Pure: no requests. pbxlink's ids are Bitrix24's own binding ids: "123" a contact,
"CO_45" a company, "L_7" a lead.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers

from pbxlink.domain.crm import Contact, CrmRequestError, Deal
from pbxlink.domain.phone import PhoneQuery, numbers

MAX_VALUES = 20  # crm.duplicate.findbycomm takes at most 20 values

#: Bitrix entity type -> (our kind, id prefix, list method, the fields a contact needs)
KINDS: dict[str, tuple[str, str, str, list[str]]] = {
    "CONTACT": ("contact", "", "crm.contact.list", ["NAME", "SECOND_NAME", "LAST_NAME", "COMPANY_ID"]),
    "COMPANY": ("company", "CO_", "crm.company.list", ["TITLE"]),
    "LEAD": ("lead", "L_", "crm.lead.list", ["TITLE", "NAME", "SECOND_NAME", "LAST_NAME", "COMPANY_TITLE"]),
}
DEAL_KEYS = {"contact": "CONTACT_ID", "company": "COMPANY_ID"}  # a deal's link to its client
Owners = dict[str, tuple[str | None, str | None]]  # user id -> (name or e-mail, internal phone)


def forms(q: PhoneQuery) -> list[str]:
    """Every digit string the number may be stored as: Bitrix compares a phone's digits exactly."""
    out = [q.digits]
    if q.e164:
        parsed = phonenumbers.parse(q.e164)
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        intl = q.e164[1:]
        out += [q.e164, intl, "00" + intl, str(parsed.national_number), re.sub(r"\D", "", national)]
    return list(dict.fromkeys(out))[:MAX_VALUES]


def phones(record: dict[str, Any]) -> list[str]:
    return [str(p["VALUE"]) for p in record.get("PHONE") or [] if isinstance(p, dict) and p.get("VALUE")]


def has(record: dict[str, Any], number: PhoneQuery) -> bool:
    return any(numbers().same(number, p) for p in phones(record))


def join(record: dict[str, Any], *keys: str) -> str:
    return " ".join(str(record[k]).strip() for k in keys if str(record.get(k) or "").strip())


def entity(contact_id: str) -> tuple[str, str]:
    """ "CO_45" -> ("COMPANY", "45"), "L_7" -> ("LEAD", "7"), "12" -> ("CONTACT", "12")."""
    kind, number = next(
        ((e, contact_id[len(k[1]) :]) for e, k in KINDS.items() if k[1] and contact_id.startswith(k[1])),
        ("CONTACT", contact_id),
    )
    if not number.isdigit():
        raise CrmRequestError(f"{contact_id[:40]!r} is not a Bitrix24 contact, company or lead id")
    return kind, number


def record_url(portal: str, contact_id: str) -> str:
    kind, number = entity(contact_id)
    return f"{portal}/crm/{KINDS[kind][0]}/details/{number}/"


def owners(users: list[dict[str, Any]]) -> Owners:
    return {
        str(u["ID"]): (
            join(u, "NAME", "LAST_NAME") or u.get("EMAIL") or None,
            u.get("UF_PHONE_INNER") or None,
        )
        for u in users
    }


def deal(portal: str, record: dict[str, Any]) -> Deal:
    amount = record.get("OPPORTUNITY")
    shown = f"{amount} {record.get('CURRENCY_ID') or ''}".strip() if amount else None
    url = f"{portal}/crm/deal/details/{record['ID']}/"
    return Deal(str(record.get("TITLE") or ""), shown, record.get("STAGE_ID") or None, url)


def contact(
    crm: str, portal: str, entity_type: str, row: dict[str, Any], found: Owners, companies: dict[str, Any],
    deals: dict[str, list[Deal]],
) -> Contact:  # fmt: skip
    kind, prefix = KINDS[entity_type][:2]
    owner, extension = found.get(str(row.get("ASSIGNED_BY_ID")), (None, None))
    cid = prefix + str(row["ID"])
    return Contact(
        crm=crm,
        id=cid,
        name=join(row, "NAME", "SECOND_NAME", "LAST_NAME") or str(row.get("TITLE") or f"{kind} {row['ID']}"),
        company=row.get("COMPANY_TITLE") or companies.get(str(row.get("COMPANY_ID"))) or None,
        owner=owner,
        owner_extension=extension,
        url=record_url(portal, cid),
        phones=tuple(phones(row)),
        deals=tuple(deals.get(str(row["ID"]), ())),
        kind=kind,
    )
