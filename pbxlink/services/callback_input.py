"""What a website visitor types into the "call me back" form, checked before it goes anywhere near a PBX.

Input from the web is hostile: a number may carry a line break (an AMI or ESL header
injection), a short code or a premium-rate number (someone else's bill), and a name may
carry markup meant for the panel. Each is refused with a message fit to show the visitor;
what passes is an E.164 number and a one-line name kept as plain text.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType, ValidationResult, shortnumberinfo

from pbxlink.domain.phone import MIN_DIGITS, PhoneNumbers
from pbxlink.storage.callbacks import MAX_NAME

MAX_TYPED = 32  # characters of a typed number; "+44 (0) 20 7946 0958" is 20
_TYPED = re.compile(r"[0-9 +()./-]+")
_PAID = {
    PhoneNumberType.PREMIUM_RATE: "premium-rate numbers",
    PhoneNumberType.SHARED_COST: "shared-cost numbers",
}
_LENGTH = {
    ValidationResult.TOO_SHORT: "the number is too short: include the area code",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "include the area code",
    ValidationResult.TOO_LONG: "the number is too long",
    ValidationResult.INVALID_LENGTH: "the number has the wrong number of digits",
    ValidationResult.INVALID_COUNTRY_CODE: "the number's country code is unknown",
}


def web_number(typed: object, phones: PhoneNumbers) -> str:
    """The visitor's number in E.164, or ValueError saying why it cannot be called."""
    if not isinstance(typed, str):
        raise ValueError("the number must be text")
    if not typed.isprintable():
        raise ValueError("the number may not contain line breaks or control characters")
    text = typed.strip()
    if not text:
        raise ValueError("no phone number given")
    if len(text) > MAX_TYPED or not _TYPED.fullmatch(text):
        raise ValueError("a phone number holds only digits, spaces and + ( ) - . /")
    region = phones.default_region
    try:
        parsed = phonenumbers.parse("+" + text[2:] if text.startswith("00") else text, region)
    except phonenumbers.NumberParseException:
        raise ValueError("this is not a phone number") from None
    national = str(parsed.national_number)
    if (
        shortnumberinfo.is_emergency_number(text, region)
        or shortnumberinfo.is_valid_short_number(parsed)
        or len(national) < MIN_DIGITS - 2  # no numbering plan has subscriber numbers this short
    ):
        raise ValueError("short codes, service and emergency numbers cannot be dialled")
    length = phonenumbers.is_possible_number_with_reason(parsed)
    if length in _LENGTH:
        raise ValueError(_LENGTH[length])
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(
            f"this is not a valid phone number (outside {region}, start with + and the country code)"
        )
    paid = _PAID.get(phonenumbers.number_type(parsed))
    if paid is not None:
        raise ValueError(f"{paid} cannot be dialled")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def web_name(typed: object) -> str | None:
    """The visitor's name on one line, at most MAX_NAME characters; None when left empty."""
    if typed is None:
        return None
    if not isinstance(typed, str):
        raise ValueError("the name must be text")
    text = " ".join(typed.split())  # line breaks and tabs become single spaces
    if not text.isprintable():
        raise ValueError("the name may not contain control characters")
    if "<" in text or ">" in text:
        raise ValueError("the name may not contain < or >")
    return text[:MAX_NAME] or None
