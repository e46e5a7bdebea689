"""Phone numbers as the PBXes and the CRMs write them, in four regions, to one comparable form."""

from __future__ import annotations

import pytest

from pbxlink.domain import phone
from pbxlink.domain.phone import PhoneNumbers

US, GB, DE, FR = (PhoneNumbers(region) for region in ("US", "GB", "DE", "FR"))


@pytest.mark.parametrize(
    ("numbers", "raw", "e164"),
    [
        # US: the trunk's forms, the CRM's formatting, the 011 international prefix and the 00 one
        (US, "+14155552671", "+14155552671"),
        (US, "14155552671", "+14155552671"),
        (US, "4155552671", "+14155552671"),
        (US, "+1 (415) 555-2671", "+14155552671"),
        (US, "(415)555-2671", "+14155552671"),
        (US, "415.555.2671", "+14155552671"),
        (US, "011 44 20 7946 0958", "+442079460958"),
        (US, "0044 20 7946 0958", "+442079460958"),
        (US, "00 1 415 555 2671", "+14155552671"),
        (US, "+15551234567", "+15551234567"),  # 555: possible though not assigned, still E.164
        # GB: the national 0, "+44 (0)", and 00 as the region's own international prefix
        (GB, "020 7946 0958", "+442079460958"),
        (GB, "+44 (0)20 7946 0958", "+442079460958"),
        (GB, "0044 20 7946 0958", "+442079460958"),
        (GB, "07700 900123", "+447700900123"),
        (GB, "0033 1 23 45 67 89", "+33123456789"),
        # DE and FR: national prefixes, area codes in parentheses, spaces in pairs
        (DE, "030 1234567", "+49301234567"),
        (DE, "(030) 123-4567", "+49301234567"),
        (DE, "+49 30 1234567", "+49301234567"),
        (DE, "0049 30 1234567", "+49301234567"),
        (DE, "0170 1234567", "+491701234567"),
        (FR, "01 23 45 67 89", "+33123456789"),
        (FR, "06 12 34 56 78", "+33612345678"),
        (FR, "+33 (0)6 12 34 56 78", "+33612345678"),
        (FR, "00 33 6 12 34 56 78", "+33612345678"),
    ],
)
def test_e164(numbers: PhoneNumbers, raw: str, e164: str) -> None:
    assert numbers.e164(raw) == e164
    assert numbers.key(raw) == e164


@pytest.mark.parametrize(
    "raw",
    [
        "(415) 555-2671 x12",
        "415-555-2671 X 12",
        "+1 415 555 2671 ext. 12",
        "+1 415 555 2671 ext 12",
        "415 555 2671 extension 7",
        "4155552671;ext=12",
        "tel:+1-415-555-2671;ext=12",
        "+1 415 555 2671 #12",
    ],
)
def test_extensions_are_not_part_of_the_number(raw: str) -> None:
    q = US.query(raw)
    assert q is not None
    assert q.e164 == "+14155552671"
    assert q.digits.endswith("4155552671")  # the extension's digits are not in the tail either
    assert q.tail == "155552671"


@pytest.mark.parametrize(
    "raw", ["", "   ", None, "anonymous", "Anonymous", "unknown", "201", "4567", "123456", "*97"]
)
def test_short_numbers_and_words_are_no_phone_numbers(raw: str | None) -> None:
    assert US.query(raw) is None
    assert US.e164(raw) is None
    assert US.key(raw) is None
    assert US.tail(raw) is None


def test_the_tail_when_no_numbering_plan_fits() -> None:
    local = US.query("555-2671")  # seven digits: possible only locally, so no E.164
    assert local is not None and (local.e164, local.tail, local.key) == (None, "5552671", "5552671")
    foreign = US.query("020 7946 0958")  # a GB national number at a US site
    assert foreign is not None and foreign.e164 is None
    assert foreign.key == foreign.tail == "079460958"
    assert GB.query("011 44 20 7946 0958") is not None  # 011 is not GB's international prefix ...
    assert GB.e164("011 44 20 7946 0958") is None  # ... so it stays unplaced, and matches by tail
    assert GB.tail("011 44 20 7946 0958") == GB.tail("+44 20 7946 0958") == "079460958"


def test_match_digits_sets_the_tail_length() -> None:
    assert PhoneNumbers("US", match_digits=7).tail("+1 415 555 2671") == "5552671"
    assert PhoneNumbers("US", match_digits=11).tail("+1 415 555 2671") == "14155552671"


def test_same() -> None:
    q = US.query("+1 (415) 555-2671")
    assert q is not None
    for theirs in ("4155552671", "+14155552671", "1-415-555-2671 ext. 9", "415.555.2671"):
        assert US.same(q, theirs), theirs
    for theirs in ("+14155552672", "+442079460958", None, "", "anonymous", "2671"):
        assert not US.same(q, theirs), theirs
    # when one side has no E.164, the tails decide
    unplaced = GB.query("011 44 20 7946 0958")
    assert unplaced is not None
    assert GB.same(unplaced, "+44 20 7946 0958")
    assert not GB.same(unplaced, "+44 20 7946 0959")


def test_same_compares_e164_not_tails_when_both_are_known() -> None:
    """Two countries' numbers may end in the same nine digits."""
    us = US.query("+1 207 946 0958")
    assert us is not None and us.tail == US.tail("+44 20 7946 0958")
    assert not US.same(us, "+44 20 7946 0958")


def test_the_site_rules_are_configured_once() -> None:
    before = phone.numbers()
    try:
        phone.configure(DE)
        assert phone.numbers().e164("030 1234567") == "+49301234567"
    finally:
        phone.configure(before)
    assert phone.numbers() is before


def test_over_long_input_is_no_phone_number() -> None:
    assert US.e164("1" * 80) is None
    assert US.query("1" * 80) is None  # else its last nine 1s match any number ending in them


def test_a_local_number_is_the_end_of_its_full_form() -> None:
    local = US.query("555-2671")
    assert local is not None and local.e164 is None
    assert US.same(local, "+1 415 555 2671")
    assert not US.same(local, "+1 415 555 2672")


def test_the_tail_comes_from_e164_when_known() -> None:
    assert DE.tail("089 12345") == DE.tail("+49 89 12345") == "498912345"
