"""Phone numbers as one comparable form: E.164 where it can be known, the last digits otherwise.

A PBX reports `+15551234567`, `15551234567`, `5551234567` or `0044 20 7946 0958` for the
same kind of caller depending on the trunk; a CRM stores `(555) 123-4567` or
`+44 20 7946 0958 ext. 12`. Matching needs one form: phonenumbers with the site's default
region gives E.164; when it cannot (a short code, a number foreign to the region's plan),
the last `match_digits` digits still find the contact, as every CTI bridge does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

#: Numbers with fewer digits are extensions, short codes or junk: never looked up, never matched by tail.
MIN_DIGITS = 7
DEFAULT_MATCH_DIGITS = 9
MAX_INPUT = 64  # nothing longer is a phone number; refuse it before phonenumbers spends time on it

_DIGITS = re.compile(r"\D")
_EXTENSION = re.compile(r"\s*(?:;ext=|ext\.?|extension|x|#)\s*\d+\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class PhoneQuery:
    """One number in every form a connector may search or compare with."""

    raw: str
    e164: str | None  # "+15551234567", or None when the number cannot be placed in a numbering plan
    digits: str  # every digit of the number, without its extension
    tail: str  # the last `match_digits` digits: the fallback key

    @property
    def key(self) -> str:
        """The cache and storage key: E.164 when known, else the tail."""
        return self.e164 or self.tail


@dataclass(frozen=True)
class PhoneNumbers:
    """The site's numbering rules: the region that national numbers belong to, and the tail length."""

    default_region: str = "US"
    match_digits: int = DEFAULT_MATCH_DIGITS

    def e164(self, raw: str | None) -> str | None:
        """`raw` in E.164, or None when it is not a possible phone number (an extension, "anonymous")."""
        text = (raw or "").strip()
        if not text or len(text) > MAX_INPUT or len(_DIGITS.sub("", _EXTENSION.sub("", text))) < MIN_DIGITS:
            return None
        candidates = [text]
        if text.startswith("00"):  # the international prefix of most of the world, whatever the region's
            candidates.insert(0, "+" + text[2:])
        possible: str | None = None
        for candidate in candidates:
            try:
                parsed = phonenumbers.parse(candidate, self.default_region)
            except phonenumbers.NumberParseException:
                continue
            formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(parsed):
                return formatted
            reason = phonenumbers.is_possible_number_with_reason(parsed)
            if possible is None and reason == phonenumbers.ValidationResult.IS_POSSIBLE:
                possible = formatted
        return possible

    def query(self, raw: str | None) -> PhoneQuery | None:
        """Every form of `raw`, or None when it has too few digits to be anybody's phone number."""
        text = (raw or "").strip()
        if len(text) > MAX_INPUT:
            return None
        digits = _DIGITS.sub("", _EXTENSION.sub("", text))
        if len(digits) < MIN_DIGITS:
            return None
        e164 = self.e164(text)
        # From E.164 when known, so "089 12345" and "+49 89 12345" end in the same digits.
        tail = ((e164 or "")[1:] or digits)[-self.match_digits :]
        return PhoneQuery(raw=text, e164=e164, digits=digits, tail=tail)

    def same(self, query: PhoneQuery, other: str | None) -> bool:
        """Whether `other` (a number from a CRM record) is the number asked about."""
        theirs = self.query(other)
        if theirs is None:
            return False
        if query.e164 and theirs.e164:
            return query.e164 == theirs.e164
        # A local number (7-8 digits, no area code) is the end of its full form.
        return query.tail.endswith(theirs.tail) or theirs.tail.endswith(query.tail)

    def key(self, raw: str | None) -> str | None:
        """What a number is stored and matched under (see `PhoneQuery.key`)."""
        q = self.query(raw)
        return None if q is None else q.key

    def tail(self, raw: str | None) -> str | None:
        q = self.query(raw)
        return None if q is None else q.tail


_current = PhoneNumbers()


def configure(numbers: PhoneNumbers) -> None:
    """Set the site's rules once at start-up (bootstrap); storage and services read them with `numbers()`."""
    global _current
    _current = numbers


def numbers() -> PhoneNumbers:
    return _current
