"""The Pipedrive connector against a fake Pipedrive over real HTTP: lookups, call logging, errors, config."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from pbxlink.config import ConfigError, CrmConfig
from pbxlink.crm import build_connector
from pbxlink.crm._callnote import marker
from pbxlink.crm.pipedrive import Pipedrive
from pbxlink.domain.crm import CrmAuthError, CrmRequestError, CrmUnavailable
from tests.crm.fake import Reply
from tests.crm.fake_pipedrive import COMPANY, TOKEN, FakePipedrive, rate_limited
from tests.crm.samples import log_entry, numbering, query

NUMBER = "+12125550142"
SEARCH = "/api/v1/persons/search"
CREATE = "/api/v1/activities$"


@pytest.fixture(autouse=True)
def us_numbers() -> Iterator[None]:
    with numbering("US"):
        yield


@pytest.fixture
def pd() -> Iterator[FakePipedrive]:
    with FakePipedrive() as fake:
        yield fake


def connect(pd: FakePipedrive, timeout: float = 2.0, **options: Any) -> Pipedrive:
    opts = {"api_token": TOKEN, "company": COMPANY, "api_url": pd.url + "/api/v1", **options}
    connector = build_connector(CrmConfig(name="pipedrive", type="pipedrive", options=opts, timeout=timeout))
    assert isinstance(connector, Pipedrive)
    return connector


entry = partial(
    log_entry,
    number=NUMBER,
    caller_name="Ann Example",
    recording_url="https://pbx.example.com/recordings/42.wav",
)


@pytest.mark.parametrize(
    ("stored", "asked", "term"),
    [
        ("(212) 555-0142", NUMBER, "2125550142"),
        ("+1 212-555-0142", NUMBER, "2125550142"),
        ("212.555.0142 ext. 7", NUMBER, "2125550142"),
        ("+12125550142", "2125550142", "2125550142"),
        ("0044 20 7946 0958", "+442079460958", "2079460958"),
        ("+44 20 7946 0958", "00442079460958", "2079460958"),
    ],
)
def test_finds_the_person_whatever_format_the_number_was_stored_in(
    pd: FakePipedrive, stored: str, asked: str, term: str
) -> None:
    pid = pd.add_person("Ann Example", stored, org="Acme")
    [found] = connect(pd).find_contacts(query(asked))
    assert (found.crm, found.id, found.name, found.company, found.phones, found.kind) == (
        "pipedrive",
        str(pid),
        "Ann Example",
        "Acme",
        (stored,),
        "person",
    )
    assert found.url == f"https://{COMPANY}.pipedrive.com/person/{pid}"
    [search] = pd.calls("GET", SEARCH)
    assert search.query == {"term": [term], "fields": ["phone"], "limit": ["100"], "start": ["0"]}
    assert search.headers["x-api-token"] == TOKEN  # in a header, never in the URL


def test_an_unknown_number_is_nobody(pd: FakePipedrive) -> None:
    pd.add_person("Bob", "+1 212 555 0199")
    assert connect(pd).find_contacts(query("+12125550100")) == []


def test_a_search_hit_that_is_another_number_is_dropped(pd: FakePipedrive) -> None:
    """Pipedrive matches digits anywhere: +44 212 555 0142 contains 2125550142 too."""
    pd.add_person("Not Ann", "+44 212 555 0142")
    assert connect(pd).find_contacts(query(NUMBER)) == []


def test_several_matches_with_owners_organization_and_open_deals(pd: FakePipedrive) -> None:
    olga = pd.add_user("Olga Owner", "olga@acme.example")
    first = pd.add_person("First", "(212) 555-0142", owner=olga, org="Acme")
    second = pd.add_person("Second", "+1 917 555 0100", NUMBER)
    deal = pd.add_deal(first, "Renewal 2024", "€1,500")
    pd.add_deal(first, "Won already", "€10", status="won")
    pd.add_deal(second, "Someone else's", "€20")
    best, other = connect(pd).find_contacts(query(NUMBER))
    assert (best.id, best.owner, best.company) == (str(first), "Olga Owner", "Acme")
    assert (other.id, other.owner, other.company, other.deals) == (str(second), "Alice Admin", None, ())
    assert other.phones == ("+1 917 555 0100", NUMBER)
    [open_deal] = best.deals
    assert (open_deal.title, open_deal.amount) == ("Renewal 2024", "€1,500")
    assert open_deal.url == f"https://{COMPANY}.pipedrive.com/deal/{deal}"
    [deals] = pd.calls("GET", "/deals")  # one extra request per lookup, for the best match
    assert (deals.path, deals.arg("status")) == (f"/api/v1/persons/{first}/deals", "open")


def test_owners_are_asked_once_and_an_unknown_owner_leaves_the_lookup_intact(pd: FakePipedrive) -> None:
    pd.add_person("Ann", NUMBER, owner=999)
    connector = connect(pd)
    for _ in range(2):
        [found] = connector.find_contacts(query(NUMBER))
        assert (found.name, found.owner) == ("Ann", None)
    assert len(pd.calls("GET", "/api/v1/users/999")) == 1


def test_deals_pipedrive_will_not_show_leave_the_person(pd: FakePipedrive) -> None:
    pd.add_person("Ann", NUMBER)
    pd.fail_next(Reply(403, {"success": False, "error": "Forbidden", "errorCode": 403}), path="/deals")
    [found] = connect(pd).find_contacts(query(NUMBER))
    assert (found.name, found.deals) == ("Ann", ())


def test_paging_follows_more_items_in_collection(pd: FakePipedrive) -> None:
    for i in range(120):
        pd.add_person(f"Decoy {i}", "+44 212 555 0142")
    real = pd.add_person("Real", NUMBER)
    assert [c.id for c in connect(pd).find_contacts(query(NUMBER))] == [str(real)]
    assert [r.arg("start") for r in pd.calls("GET", SEARCH)] == ["0", "100"]


def test_paging_stops_after_three_pages(pd: FakePipedrive) -> None:
    for i in range(300):
        pd.add_person(f"Decoy {i}", "+44 212 555 0142")
    pd.add_person("Real", NUMBER)  # on page 4: not read
    assert connect(pd).find_contacts(query(NUMBER)) == []
    assert [r.arg("start") for r in pd.calls("GET", SEARCH)] == ["0", "100", "200"]


def test_names_pass_through_as_text_and_repeated_numbers_count_once(pd: FakePipedrive) -> None:
    pid = pd.add_person("Eve\r\nX-Injected: 1 <script>", NUMBER, NUMBER)
    [found] = connect(pd).find_contacts(query(NUMBER))
    assert (found.id, found.name, found.phones) == (str(pid), "Eve\r\nX-Injected: 1 <script>", (NUMBER,))


def test_contact_url_opens_the_person_in_the_company_account(pd: FakePipedrive) -> None:
    assert connect(pd).contact_url("42") == "https://acme.pipedrive.com/person/42"
    assert (
        connect(pd, company="Acme.pipedrive.com").contact_url("42") == "https://acme.pipedrive.com/person/42"
    )


def test_log_call_adds_a_done_call_activity_on_the_person(pd: FakePipedrive) -> None:
    pid = pd.add_person("Ann", NUMBER)
    activity = connect(pd).log_call(entry(contact_id=str(pid), caller_name="Ann <b>Example</b>\r\nX: y"))
    [sent] = pd.calls("POST", CREATE)
    body = dict(sent.json)
    note = body.pop("note")
    assert body == {
        "subject": f"Inbound call: Ann <b>Example</b> X: y ({NUMBER})",
        "type": "call",
        "done": 1,
        "due_date": "2024-05-01",
        "due_time": "14:03",
        "duration": "00:03",
        "person_id": pid,
    }
    assert "Ann &lt;b&gt;Example&lt;/b&gt;" in note and "<b>Example</b>" not in note
    assert '<a href="https://pbx.example.com/recordings/42.wav">' in note and marker(entry().key) in note
    stored = pd.activities[int(activity)]
    assert (stored["done"], stored["person_id"], stored["user_id"]) == (True, pid, pd.me)


def test_a_missed_call_from_an_unknown_number_is_logged_without_a_person(pd: FakePipedrive) -> None:
    missed = entry(
        disposition="missed", miss_reason="no_answer", duration_s=0.0, agent=None, recording_url=None
    )
    activity = pd.activities[int(connect(pd).log_call(missed))]
    assert (activity["subject"], activity["duration"], activity["person_id"]) == (
        "Missed call: Ann Example (+12125550142)",
        "00:00",
        None,
    )
    assert "Result: missed (no_answer)" in activity["note"]


@pytest.mark.parametrize("with_person", [True, False])
def test_logging_the_same_call_twice_leaves_one_activity(pd: FakePipedrive, with_person: bool) -> None:
    pid = pd.add_person("Ann", NUMBER)
    for i in range(130):  # earlier calls: the search for this one reads past the first page
        pd.add_activity(pid, f"<p>pbxlink call: asterisk:{i} ({marker(f'asterisk:{i}')})</p>")
    call = entry(contact_id=str(pid) if with_person else None)
    connector = connect(pd)
    first = connector.log_call(call)
    assert connector.log_call(call) == first
    assert len(pd.calls("POST", CREATE)) == 1 and len(pd.activities) == 131
    scans = pd.calls("GET", "/activities$")
    if with_person:
        assert {(s.path, s.arg("done")) for s in scans} == {(f"/api/v1/persons/{pid}/activities", "1")}
        assert [s.arg("start") for s in scans] == ["0", "100", "0", "100"]
    else:
        assert {(s.path, s.arg("type"), s.arg("start_date"), s.arg("end_date")) for s in scans} == {
            ("/api/v1/activities", "call", "2024-05-01", "2024-05-01")
        }


@pytest.mark.parametrize("lost", [Reply(502, "<html>502 Bad Gateway</html>"), Reply(201, {}, delay=1.5)])
def test_an_activity_pipedrive_stored_but_whose_answer_was_lost_is_not_logged_twice(
    pd: FakePipedrive, lost: Reply
) -> None:
    pid = pd.add_person("Ann", NUMBER)
    connector = connect(pd, timeout=0.5)
    pd.lose_next_create = lost
    with pytest.raises(CrmUnavailable):
        connector.log_call(entry(contact_id=str(pid)))
    assert len(pd.calls("POST", CREATE)) == 1  # a create is never retried blindly
    [stored] = list(pd.activities)
    assert connector.log_call(entry(contact_id=str(pid))) == str(stored)
    assert list(pd.activities) == [stored]


def test_a_wrong_token_is_an_auth_error_that_names_no_secret(pd: FakePipedrive) -> None:
    with pytest.raises(CrmAuthError) as exc:
        connect(pd, api_token="wrong-token-0000").find_contacts(query(NUMBER))
    message = str(exc.value)
    assert "401" in message and "unauthorized access" in message and "check the API key" in message
    assert "wrong-token-0000" not in message and TOKEN not in message
    assert len(pd.calls()) == 1


def test_a_wrong_api_address_is_a_request_error_at_once(pd: FakePipedrive) -> None:
    with pytest.raises(CrmRequestError) as exc:
        connect(pd, api_url=pd.url + "/api/v9").find_contacts(query(NUMBER))
    assert "404" in str(exc.value) and "/api/v9/persons/search" in str(exc.value)
    assert len(pd.calls()) == 1


def test_a_short_retry_after_is_honoured_then_the_lookup_succeeds(pd: FakePipedrive) -> None:
    pd.add_person("Ann", NUMBER)
    pd.fail_next(rate_limited("0.3"), path=SEARCH)
    started = time.monotonic()
    assert [c.name for c in connect(pd).find_contacts(query(NUMBER))] == ["Ann"]
    assert time.monotonic() - started >= 0.3
    assert len(pd.calls("GET", SEARCH)) == 2


def test_a_long_retry_after_gives_up_at_once_and_says_when(pd: FakePipedrive) -> None:
    pd.fail_next(rate_limited("86400"))
    started = time.monotonic()
    with pytest.raises(CrmUnavailable) as exc:
        connect(pd).find_contacts(query(NUMBER))
    assert exc.value.retry_after == 86400 and time.monotonic() - started < 1.0
    assert "429" in str(exc.value) and "Request over limit" in str(exc.value)


def test_server_errors_are_retried_then_reported_unavailable(pd: FakePipedrive) -> None:
    pd.add_person("Ann", NUMBER)
    pd.fail_next(Reply(502, "<html>Bad Gateway</html>"))
    assert [c.name for c in connect(pd).find_contacts(query(NUMBER))] == ["Ann"]
    pd.fail_next(Reply(503, {"success": False, "error": "Service unavailable"}), times=3)
    with pytest.raises(CrmUnavailable) as exc:
        connect(pd).find_contacts(query(NUMBER))
    assert "503" in str(exc.value) and len(pd.calls("GET", SEARCH)) == 2 + 3


def test_a_pipedrive_that_never_answers_is_unavailable_within_the_timeouts(pd: FakePipedrive) -> None:
    pd.fail_next(Reply(200, {}, delay=3.0), times=3)
    started = time.monotonic()
    with pytest.raises(CrmUnavailable) as exc:
        connect(pd, timeout=0.3).find_contacts(query(NUMBER))
    assert "no answer within 0.3 s" in str(exc.value)
    assert time.monotonic() - started < 3 * 0.3 + 1.5 + 2.0  # three attempts, backoff, a loaded machine


def test_check_accepts_the_token_of_the_configured_company(pd: FakePipedrive) -> None:
    result = connect(pd).check()
    assert (result.ok, result.what) == (True, "CRM pipedrive (pipedrive)")
    assert "Alice Admin" in result.detail and "acme.pipedrive.com" in result.detail
    assert [r.path for r in pd.calls()] == ["/api/v1/users/me"]


def test_check_names_the_company_a_token_belongs_to() -> None:
    with FakePipedrive(company="globex") as pd:
        result = connect(pd).check()
    assert not result.ok and 'set company = "globex"' in result.detail


def test_check_reports_a_bad_token_and_an_unreachable_pipedrive(pd: FakePipedrive) -> None:
    result = connect(pd, api_token="bad-token").check()
    assert not result.ok and "401" in result.detail and "bad-token" not in result.detail
    down = connect(pd, api_url="http://127.0.0.1:9", timeout=0.3).check()
    assert not down.ok and "unreachable" in down.detail and "cannot connect" in down.detail


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (
            {"company": COMPANY},
            "api_token: missing (set it in the file or in PBXLINK_CRM_PIPEDRIVE_API_TOKEN)",
        ),
        ({"api_token": TOKEN}, "company: missing"),
        ({"api_token": TOKEN, "company": "acme corp"}, "company: expected the subdomain"),
        (
            {"api_token": TOKEN, "company": COMPANY, "api_url": "acme.pipedrive.com"},
            "api_url: expected an http(s)",
        ),
        ({"api_token": TOKEN, "company": COMPANY, "domain": "acme"}, "domain: unknown key"),
    ],
)
def test_config_mistakes_name_the_crm_and_the_key(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build_connector(CrmConfig(name="pipedrive", type="pipedrive", options=options))
    assert str(exc.value).startswith('[[crm]] "pipedrive" (pipedrive): ') and says in str(exc.value)
    assert TOKEN not in str(exc.value)
