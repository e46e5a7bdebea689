"""From the cells of one CSV line to a campaign contact, or the reason it cannot be one.

The columns are mapped once per file (`columns`): which one holds the number, the name,
the time zone; the others become custom fields, which the dialer hands to the dialplan as
channel variables `PBXLINK_COL_<KEY>`. Everything here is refused for a reason a person can
act on: the number must be one a campaign may dial (no short codes, no premium rate, as the
website's callback form, whose checks these are), and a value bound for the dialplan must
survive the trip (the AMI splits variables on `,` and `|`, and a line break ends a header).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from zoneinfo import available_timezones

import phonenumbers
from phonenumbers import timezone as number_zones

from pbxlink.domain.phone import PhoneNumbers
from pbxlink.services.callback_input import web_number
from pbxlink.services.csv_lines import CsvFileError, CsvLines
from pbxlink.services.csv_safe import restore

FIELDS = ("number", "name", "timezone")
CHOICES = (*FIELDS, "custom", "ignore")
MAX_NAME = 128
MAX_VALUE = 200  # characters of a custom value: a channel variable, not a document
MAX_KEY = 32
MAX_ZONES = 255  # CampaignContact.timezones
REJECTS_TAIL = ["line", "reason"]  # the columns a rejects file adds to the original ones

_SUGGEST = {
    "number": {"phone", "number", "mobile", "tel", "telephone", "phonenumber", "mobilephone"},
    "name": {"name", "fullname", "contact", "contactname"},
    "timezone": {"timezone", "tz"},
}
_NOT_KEY = re.compile(r"[^A-Z0-9]+")
_UNSAFE = re.compile(r"[\r\n\x00,|]")


def read_header(path: Path, encoding: str = "utf-8") -> list[str]:
    """The column names of a CSV file (CsvFileError when it cannot be read), for the mapping step."""
    with CsvLines(path, encoding) as lines:
        return lines.header


def suggest_mapping(headers: Sequence[str]) -> dict[str, str]:
    """A first guess: the first column named like a phone number is the number, and so on; the rest custom.

    A rejects file, fixed and imported again, ends with our `line` and `reason` columns: ignored.
    """
    mapping: dict[str, str] = (
        dict.fromkeys(headers[-2:], "ignore") if list(headers[-2:]) == REJECTS_TAIL else {}
    )
    taken: set[str] = set()
    for header in headers:
        plain = "".join(c for c in header.lower() if c.isalnum())
        field = next((f for f, names in _SUGGEST.items() if plain in names and f not in taken), "custom")
        taken.add(field)
        mapping.setdefault(header, "ignore" if not header else field)
    return mapping


def variable_key(header: str) -> str:
    """A column name as a dialplan variable suffix: "Due date" -> DUE_DATE, "Échéance" -> ECHEANCE."""
    plain = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode().upper()
    return _NOT_KEY.sub("_", plain).strip("_")[:MAX_KEY].rstrip("_")


@dataclass(frozen=True)
class Columns:
    """Where each field is in a line, and the mapping that says so (every header, in file order)."""

    number: int
    name: int | None
    timezone: int | None
    custom: tuple[tuple[int, str, str], ...]  # (index, header, variable key)
    mapping: dict[str, str]


def columns(headers: Sequence[str], mapping: Mapping[str, str] | None) -> Columns:
    """The plan for a file with these headers (CsvFileError saying what to change when it cannot be followed).

    Columns the mapping does not name are custom; a column without a name is ignored.
    """
    seen: set[str] = set()
    for header in headers:
        if header and header in seen:
            raise CsvFileError(f"two columns are named {header!r}: rename one so that each name is unique")
        seen.add(header)
    given = dict(mapping or suggest_mapping(headers))
    unknown = [h for h in given if h not in seen]
    if unknown:
        raise CsvFileError(f"no column {unknown[0]!r} in the file; its columns: {', '.join(headers)}")
    bad = {h: f for h, f in given.items() if f not in CHOICES}
    if bad:
        header, field = next(iter(bad.items()))
        raise CsvFileError(f"column {header!r}: {field!r} is not one of {', '.join(CHOICES)}")
    full = {h: given.get(h, "custom" if h else "ignore") for h in headers}
    where: dict[str, list[int]] = {f: [i for i, h in enumerate(headers) if full[h] == f] for f in FIELDS}
    if not where["number"]:
        raise CsvFileError(f"no column holds the phone number: map one of {', '.join(headers)} to number")
    for field, found in where.items():
        if len(found) > 1:
            names = " and ".join(repr(headers[i]) for i in found)
            raise CsvFileError(f"{names} both map to {field}: map all but one to custom or ignore")
    custom: list[tuple[int, str, str]] = []
    keys: dict[str, str] = {}
    for i, header in enumerate(headers):
        if full[header] != "custom":
            continue
        key = variable_key(header)
        if not key:
            raise CsvFileError(f"column {header!r} gives no variable name: rename it, or map it to ignore")
        if key in keys:
            raise CsvFileError(
                f"columns {keys[key]!r} and {header!r} would both be the dialplan variable PBXLINK_COL_{key}:"
                " rename one, or map it to ignore"
            )
        keys[key] = header
        custom.append((i, header, key))
    return Columns(
        number=where["number"][0],
        name=next(iter(where["name"]), None),
        timezone=next(iter(where["timezone"]), None),
        custom=tuple(custom),
        mapping=full,
    )


@dataclass(frozen=True, slots=True)
class Contact:
    number: str  # E.164
    key: str  # PhoneNumbers.key of the number: its E.164, since only valid numbers get here
    name: str | None
    timezones: str
    fields: str  # JSON
    line: int


def contact(
    cells: Sequence[str], cols: Columns, line: int, default_zone: str, phones: PhoneNumbers
) -> Contact:
    """The contact one line describes, or ValueError with the reason it is refused."""
    typed = restore(cells[cols.number].strip())
    if not typed:
        raise ValueError("no phone number")
    try:
        e164 = web_number(typed, phones)
    except ValueError as exc:
        raise ValueError(f"number {typed[:40]!r}: {exc}") from None
    name = _name(cells[cols.name]) if cols.name is not None else None
    zone = restore(cells[cols.timezone].strip()) if cols.timezone is not None else ""
    if zone:
        zones = _zone_names().get(zone.lower())
        if zones is None:
            raise ValueError(
                f"time zone {zone[:64]!r} is not a zone name such as Europe/Paris or America/Chicago"
            )
    else:
        zones = _zones_of(e164) or default_zone
    fields: dict[str, str] = {}
    for i, header, key in cols.custom:
        value = restore(cells[i].strip())
        if len(value) > MAX_VALUE:
            raise ValueError(f"column {header!r} is {len(value):,} characters, over the {MAX_VALUE} allowed")
        if _UNSAFE.search(value):
            raise ValueError(
                f"column {header!r} holds a , or | or a line break, which cannot reach the dialplan "
                "(the AMI splits variables on them)"
            )
        fields[key] = value
    return Contact(e164, e164, name, zones, json.dumps(fields, ensure_ascii=False), line)


def _name(cell: str) -> str | None:
    name = restore(cell.strip())
    if len(name) > MAX_NAME:
        raise ValueError(f"the name is {len(name):,} characters, over the {MAX_NAME} allowed")
    if not name.isprintable():
        raise ValueError("the name holds control characters (a line break, a tab, NUL …)")
    return name or None


def _zones_of(e164: str) -> str | None:
    """The number's zones from phonenumbers' data; None when unknown or too many to be of use (+1 800 …)."""
    zones = number_zones.time_zones_for_number(phonenumbers.parse(e164))
    joined = ",".join(zones)
    if not zones or "Etc/Unknown" in zones or len(joined) > MAX_ZONES:
        return None
    return joined


@cache
def _zone_names() -> dict[str, str]:
    """Every IANA zone this machine knows, by its lower-case name."""
    return {name.lower(): name for name in available_timezones() if name != "Etc/Unknown"}
