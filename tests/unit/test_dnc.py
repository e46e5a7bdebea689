"""The do-not-call list on real databases (SQLite and PostgreSQL): one entry per number whatever its form."""

from __future__ import annotations

import pytest

from pbxlink.domain.phone import PhoneNumbers
from pbxlink.storage import dnc
from pbxlink.storage.models import DncEntry
from tests.unit.test_storage import db, pg_server  # noqa: F401  (fixtures: each test runs on both)

pytestmark = pytest.mark.usefixtures("db")


def test_a_number_is_listed_once_whatever_its_form_and_stored_in_e164() -> None:
    entry, added = dnc.add("(212) 555-0100", "asked on\nthe phone", "alice")
    assert added
    assert (entry.number, entry.number_key, entry.reason, entry.added_by) == (
        "+12125550100",
        "+12125550100",
        "asked on the phone",  # one line
        "alice",
    )
    for form in ("+1 212 555 0100", "12125550100", "001 212 555 0100"):
        again, added = dnc.add(form, "other reason", "bob")
        assert (again.id, added, again.reason) == (entry.id, False, "asked on the phone")
    assert dnc.count() == 1


def test_numbers_are_keyed_by_the_sites_numbering_plan() -> None:
    entry, _ = dnc.add("030 901820", None, None, phones=PhoneNumbers("DE"))
    assert entry.number_key == "+4930901820"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("12345", "is not a phone number"),
        ("anonymous", "is not a phone number"),
        ("+1 212 555\r\n0100", "line breaks or control characters"),
    ],
)
def test_what_is_no_phone_number_is_refused_with_a_reason(number: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dnc.add(number, None, None)
    assert dnc.count() == 0


def test_an_entry_is_removed_by_any_form_of_its_number_or_by_its_id() -> None:
    first, _ = dnc.add("+12125550100", None, None)
    second, _ = dnc.add("+13125550100", None, None)
    assert dnc.remove("(212) 555-0100")
    assert not dnc.remove("(212) 555-0100")
    assert dnc.remove(second.id)
    assert not dnc.remove(first.id)
    assert dnc.count() == 0
    with pytest.raises(ValueError, match="not a phone number"):
        dnc.remove("hello")


def test_blocked_keys_answers_for_more_keys_than_one_query_takes() -> None:
    listed = [f"+1212555{n:04d}" for n in range(0, 1200, 97)]
    for number in listed:
        dnc.add(number, None, None)
    asked = [f"+1212555{n:04d}" for n in range(1200)]  # 1,200 keys: three queries
    assert dnc.blocked_keys(asked) == set(listed)
    assert dnc.blocked_keys([]) == set()
    assert dnc.blocked(listed[0]) and not dnc.blocked("+12125550001")


def test_add_many_counts_only_the_new_entries() -> None:
    dnc.add("+12125550100", "old", None)
    numbers = ("+12125550100", "(312) 555-0100", "+14155550100")
    entries = [(key, number, "bulk") for key, number in map(dnc.normalize, numbers)]
    assert dnc.add_many(entries, "import") == 2
    assert dnc.add_many(entries, "import") == 0
    assert DncEntry.get(DncEntry.number_key == "+12125550100").reason == "old"
    assert DncEntry.get(DncEntry.number_key == "+14155550100").added_by == "import"


def test_the_page_finds_by_digits_or_reason_newest_first() -> None:
    dnc.add("+12125550100", "complaint by letter", "alice")
    dnc.add("+13125550199", "asked on the phone", "bob")
    dnc.add("+14155550100", None, "bob")
    entries, total = dnc.page(None, limit=2)
    assert total == 3 and [e.number for e in entries] == ["+14155550100", "+13125550199"]
    entries, total = dnc.page(None, limit=2, offset=2)
    assert total == 3 and [e.number for e in entries] == ["+12125550100"]
    assert [e.number for e in dnc.page("555-0100", 10)[0]] == ["+14155550100", "+12125550100"]
    assert [e.number for e in dnc.page("letter", 10)[0]] == ["+12125550100"]
    as_dict = dnc.to_dict(dnc.page("312", 10)[0][0])
    assert as_dict["number"] == "+13125550199" and as_dict["reason"] == "asked on the phone"
    assert as_dict["added_by"] == "bob" and str(as_dict["added_at"]).endswith("Z")
