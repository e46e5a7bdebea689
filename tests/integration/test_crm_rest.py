"""The generic REST connector against a fake in-house API over real HTTP: mapping, templates, log, errors."""

from __future__ import annotations

import logging
import time
import tomllib
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pbxlink.config import ConfigError, CrmConfig
from pbxlink.crm.rest import Rest, from_config
from pbxlink.domain.crm import CrmAuthError, CrmRequestError, CrmUnavailable, Deal
from tests.crm.fake import Reply
from tests.crm.fake_rest import FakeRest
from tests.crm.samples import log_entry, query

FIELDS = {
    "id": "id",
    "name": "display_name",
    "company": "org.name",
    "owner": "owner.name",
    "owner_extension": "owner.ext",
    "phones": "phones.*.number, mobile",
    "deals": "deals",
    "deal.amount": "value",
    "deal.url": "link",
}


@pytest.fixture
def api() -> Iterator[FakeRest]:
    with FakeRest() as fake:
        yield fake


def options(api: FakeRest, **over: Any) -> dict[str, Any]:
    base = {
        "lookup_url": f"{api.url}/api/v2/customers/search?phone={{e164}}",
        "results": "data.items",
        "next_url": "links.next",
        "fields": FIELDS,
        "contact_url": "https://crm.example.com/customers/{id}/view",
        "log_url": f"{api.url}/api/v2/calls",
        "log_id": "data.id",
        "auth": "bearer",
        "token": api.token,
    }
    return {k: v for k, v in {**base, **over}.items() if v is not None}


def connector(api: FakeRest, timeout: float = 2.0, **over: Any) -> Rest:
    conn = from_config(CrmConfig(name="inhouse", type="rest", options=options(api, **over), timeout=timeout))
    conn.http.backoff = 0.05  # keep retries quick; the policy itself is HttpClient's
    return conn


entry = partial(log_entry, duration_s=42.5)


# lookups ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stored", ["(555) 123-4567", "+1 555-123-4567", "001 555 123 4567", "15551234567"])
def test_a_customer_is_found_whatever_form_its_number_is_stored_in(api: FakeRest, stored: str) -> None:
    cid = api.add_customer("Ada Lovelace", stored)
    [found] = connector(api).find_contacts(query("(555) 123 4567"))
    assert (found.crm, found.id, found.name, found.phones) == ("inhouse", str(cid), "Ada Lovelace", (stored,))
    assert found.url == f"https://crm.example.com/customers/{cid}/view"
    [req] = api.http.calls("GET")
    assert req.arg("phone") == "+15551234567" and req.headers["Authorization"] == f"Bearer {api.token}"


def test_a_number_template_gets_the_callers_text_percent_encoded(api: FakeRest) -> None:
    api.add_customer("Ada", "+15551234567")
    conn = connector(api, lookup_url=f"{api.url}/api/v2/customers/search?phone={{number}}&x=1")
    conn.find_contacts(query("+1 (555) 123-4567 #12"))
    [req] = api.http.calls("GET")
    assert req.arg("phone") == "+1 (555) 123-4567 #12" and req.arg("x") == "1"


def test_a_caller_id_that_is_not_a_phone_number_is_refused_before_any_request(api: FakeRest) -> None:
    conn = connector(api, lookup_url=f"{api.url}/api/v2/customers/by-phone/{{number}}")
    for evil in ("5551234567&admin=1", "../../admin/5551234567", "5551234567?x=1"):
        with pytest.raises(CrmRequestError, match="not written like a phone number"):
            conn.find_contacts(query(evil))
    assert api.http.calls() == []


def test_a_record_the_system_matched_loosely_is_dropped_unless_phones_are_unmapped(api: FakeRest) -> None:
    keep = api.add_customer("Right", "+15551234567")
    api.add_customer("Wrong", "+1 666 123 4567")  # the same last 7 digits
    assert [c.id for c in connector(api).find_contacts(query("+15551234567"))] == [str(keep)]
    trusting = connector(api, fields={"id": "id", "name": "display_name"})
    assert [c.name for c in trusting.find_contacts(query("+15551234567"))] == ["Right", "Wrong"]


def test_an_unknown_number_is_nothing_found(api: FakeRest) -> None:
    api.add_customer("Someone", "+15550000001")
    assert connector(api).find_contacts(query("+15551234567")) == []


def test_paging_follows_next_links_and_is_bounded(api: FakeRest) -> None:
    for i in range(7):
        api.add_customer(f"Twin {i}", "+15551234567")
    api.page_size = 3
    assert len(connector(api).find_contacts(query("+15551234567"))) == 7
    api.page_size = 2
    assert len(connector(api).find_contacts(query("+15551234567"))) == 6  # 3 pages, no more
    assert [r.arg("page") for r in api.http.calls("GET")] == [None, "2", "3", None, "2", "3"]


def test_a_next_link_to_another_host_is_not_followed(api: FakeRest, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(3):
        api.add_customer(f"Twin {i}", "+15551234567")
    api.page_size, api.next_host = 2, "http://attacker.example"
    with caplog.at_level(logging.WARNING):
        assert len(connector(api).find_contacts(query("+15551234567"))) == 2
    assert len(api.http.calls()) == 1 and "attacker.example" in caplog.text


def test_owner_company_deals_and_the_records_own_link_are_mapped(api: FakeRest) -> None:
    api.add_customer(
        "Ada",
        "+15551234567",
        mobile="+1 555 000 1111",
        org={"name": "Acme Ltd"},
        owner={"name": "Olga Owner", "ext": 201},
        deals=[
            {"title": "Big order", "value": "1500 USD", "stage": "proposal", "link": "https://crm/d/1"},
            "junk",
        ],
        links={"web": "https://crm.example.com/c/ada"},
    )
    [found] = connector(api, fields={**FIELDS, "url": "links.web"}).find_contacts(query("+15551234567"))
    assert (found.company, found.owner, found.owner_extension) == ("Acme Ltd", "Olga Owner", "201")
    assert found.phones == ("+15551234567", "+1 555 000 1111")
    assert found.deals == (Deal("Big order", "1500 USD", "proposal", "https://crm/d/1"),)
    assert found.url == "https://crm.example.com/c/ada"


@pytest.mark.parametrize("body", ['{"phone": "{e164}", "limit": 5}', {"phone": "{e164}", "limit": 5}])
def test_a_post_lookup_fills_the_json_template_and_reads_a_bare_list(api: FakeRest, body: Any) -> None:
    api.add_customer("Ada", "+15551234567")
    conn = connector(
        api, lookup_url=f"{api.url}/api/v2/lookup", lookup_method="POST", lookup_body=body, results=""
    )
    assert [c.name for c in conn.find_contacts(query("5551234567"))] == ["Ada"]
    [req] = api.http.calls("POST")
    assert req.json == {"phone": "+15551234567", "limit": 5}


def test_a_single_object_answer_and_404_as_nobody_when_asked_to(api: FakeRest) -> None:
    api.add_customer("Ada", "+15551234567")
    by_phone = f"{api.url}/api/v2/customers/by-phone/{{e164}}"
    assert [
        c.name for c in connector(api, lookup_url=by_phone, results="").find_contacts(query("5551234567"))
    ] == ["Ada"]
    with pytest.raises(CrmRequestError, match=r"404 Not Found: no such customer"):
        connector(api, lookup_url=by_phone).find_contacts(query("+15559876543"))
    assert connector(api, lookup_url=by_phone, empty_on_404=True).find_contacts(query("+15559876543")) == []


def test_names_from_the_system_are_passed_through_as_text(api: FakeRest) -> None:
    api.add_customer("<b>Eve</b>\r\nX-Injected: 1", "+15551234567")
    [found] = connector(api).find_contacts(query("+15551234567"))
    assert found.name == "<b>Eve</b>\r\nX-Injected: 1"


# call logging ----------------------------------------------------------------------------------


def test_a_call_is_posted_whole_with_its_idempotency_key(api: FakeRest) -> None:
    call_id = connector(api).log_call(
        entry(recording_url="https://pbx/r/1.wav", contact_id="17", caller_name="Ada")
    )
    [(cid, logged)] = api.logged.items()
    assert call_id == cid
    assert logged["headers"]["Idempotency-Key"] == "asterisk:1714570000.42"
    assert logged["headers"]["Authorization"] == f"Bearer {api.token}"
    assert logged["body"] == {
        "key": "asterisk:1714570000.42",
        "direction": "inbound",
        "number": "+15551234567",
        "started_at": "2024-05-01T14:03:07+00:00",
        "duration_s": 42.5,
        "disposition": "answered",
        "miss_reason": None,
        "agent": "201",
        "caller_name": "Ada",
        "recording_url": "https://pbx/r/1.wav",
        "contact_id": "17",
        "owner": None,
    }


def test_log_fields_shape_the_body(api: FakeRest) -> None:
    mapping = {"call.phone": "number", "call.at": "started_at", "ref": "key", "result": "disposition"}
    connector(api, log_fields=mapping).log_call(entry(disposition="missed", duration_s=0, miss_reason="busy"))
    [logged] = api.logged.values()
    assert logged["body"] == {
        "call": {"phone": "+15551234567", "at": "2024-05-01T14:03:07+00:00"},
        "ref": "asterisk:1714570000.42",
        "result": "missed",
    }


def test_logging_the_same_key_twice_leaves_one_entry(api: FakeRest) -> None:
    conn = connector(api)
    first = conn.log_call(entry())
    assert conn.log_call(entry()) == first and len(api.logged) == 1
    assert connector(api, log_id=None).log_call(entry()) == "asterisk:1714570000.42"  # no id path: the key


@pytest.mark.parametrize(
    ("lost", "timeout"),
    [
        (Reply(502, "<html>502 Bad Gateway</html>"), 2.0),
        (Reply(201, {"data": {"id": "late"}}, delay=1.0), 0.3),
    ],
)
def test_a_lost_answer_after_the_commit_leaves_one_entry(api: FakeRest, lost: Reply, timeout: float) -> None:
    api.lost.append(lost)
    conn = connector(api, timeout=timeout)
    call_id = conn.log_call(entry())  # the retry gets 409 with the entry the lost answer was about
    assert list(api.logged) == [call_id] and conn.log_call(entry()) == call_id


def test_without_a_log_url_nothing_is_sent(api: FakeRest) -> None:
    assert connector(api, log_url=None).log_call(entry()) == "asterisk:1714570000.42"
    assert api.http.calls() == []


# errors ----------------------------------------------------------------------------------------


def test_a_wrong_token_is_an_auth_error_that_hides_the_token(
    api: FakeRest, caplog: pytest.LogCaptureFixture
) -> None:
    conn = connector(api, token="s3cr3t-wrong")
    with caplog.at_level(logging.DEBUG, logger="pbxlink"), pytest.raises(CrmAuthError) as err:
        conn.find_contacts(query("+15551234567"))
    assert (
        "401" in str(err.value) and "invalid credentials" in str(err.value) and "check the" in str(err.value)
    )
    assert "s3cr3t-wrong" not in str(err.value) + caplog.text
    assert len(api.http.calls()) == 1


@pytest.mark.parametrize(
    ("auth", "extra"),
    [("basic", {"username": "pbx", "password": "pw-81xq9z"}), ("header", {"header_name": "X-Api-Key"})],
)
def test_basic_and_header_auth_are_sent(auth: str, extra: dict[str, str]) -> None:
    with FakeRest(auth=auth) as api:
        api.add_customer("Ada", "+15551234567")
        creds = {"token": api.token if auth == "header" else None, **extra}
        conn = connector(api, auth=auth, **creds)
        assert [c.name for c in conn.find_contacts(query("+15551234567"))] == ["Ada"]


def test_a_short_retry_after_is_honoured_then_the_lookup_succeeds(api: FakeRest) -> None:
    api.add_customer("Ada", "+15551234567")
    api.http.fail_next(Reply(429, {"message": "slow down"}, headers={"Retry-After": "0.3"}))
    t0 = time.monotonic()
    assert [c.name for c in connector(api).find_contacts(query("+15551234567"))] == ["Ada"]
    assert time.monotonic() - t0 >= 0.3


def test_a_long_retry_after_fails_at_once_with_retry_after_set(api: FakeRest) -> None:
    api.http.fail_next(Reply(429, {"message": "slow down"}, headers={"Retry-After": "120"}))
    t0 = time.monotonic()
    with pytest.raises(CrmUnavailable) as err:
        connector(api).log_call(entry())
    assert err.value.retry_after == 120 and time.monotonic() - t0 < 2 and api.logged == {}


def test_server_errors_are_retried_then_unavailable(api: FakeRest) -> None:
    api.http.fail_next(Reply(503, {"message": "maintenance"}), times=2)
    assert connector(api).find_contacts(query("+15551234567")) == []
    api.http.fail_next(Reply(500, {"message": "boom"}), times=3)
    with pytest.raises(CrmUnavailable, match=r"500 Internal Server Error: boom"):
        connector(api).find_contacts(query("+15551234567"))
    assert len(api.http.calls()) == 6


def test_a_system_that_never_answers_is_unavailable_within_the_timeout(api: FakeRest) -> None:
    api.http.fail_next(Reply(200, [], delay=3.0), times=3)
    t0 = time.monotonic()
    with pytest.raises(CrmUnavailable, match=r"no answer within 0\.3 s"):
        connector(api, timeout=0.3).find_contacts(query("+15551234567"))
    assert time.monotonic() - t0 < 2.5


# check and config ------------------------------------------------------------------------------


def test_check_by_number_by_url_or_unverified(api: FakeRest) -> None:
    api.add_customer("Ada", "+15551234567")
    by_number = connector(api, check_number="+15551234567").check()
    assert by_number.ok and by_number.what == "CRM inhouse (rest)" and "1 contact(s)" in by_number.detail
    by_url = connector(api, check_url=f"{api.url}/api/v2/ping").check()
    assert by_url.ok and by_url.detail == "GET /api/v2/ping answered 200"
    failing = connector(api, token="nope-nope", check_url=f"{api.url}/api/v2/ping").check()
    assert not failing.ok and "401" in failing.detail and "nope-nope" not in failing.detail
    unverified = connector(api).check()
    assert unverified.ok and unverified.warning and "check_number or check_url" in unverified.detail


@pytest.mark.parametrize(
    ("over", "key", "says"),
    [
        ({"lookup_url": None, "log_url": None}, "lookup_url", "set lookup_url, log_url or both"),
        ({"token": None}, "token", "PBXLINK_CRM_INHOUSE_TOKEN"),
        ({"lookup_url": "https://{digits}.example.com/x"}, "lookup_url", "never in the host"),
        ({"lookup_url": "https://api.example.com/x?q={name}"}, "lookup_url", "unknown placeholder {name}"),
        ({"contact_url": "https://crm/{number}"}, "contact_url", "unknown placeholder {number}"),
        ({"lookup_body": "{not json", "lookup_method": "POST"}, "lookup_body", "JSON"),
        ({"lookup_body": {"phone": "{e164}"}}, "lookup_body", 'lookup_method = "POST" only'),
        ({"lookup_body": {"phone": "{name}"}, "lookup_method": "POST"}, "lookup_body", "unknown placeholder"),
        ({"fields": {"name": "n"}}, "fields", "missing id"),
        ({"fields": {"id": "id", "nmae": "n"}}, "fields", "'nmae' is not one of"),
        ({"log_fields": {"x": "secret"}}, "log_fields", "'secret' is not one of"),
        ({"auth": "oauth"}, "auth", "expected one of none, bearer, basic, header"),
        ({"headers": {"X-A": "1\r\nX-B: 2"}}, "headers", "CR or LF"),
        ({"auth": "header", "header_name": "X Key"}, "header_name", "one token"),
        ({"check_number": "12"}, "check_number", "phone number"),
        ({"tokne": "x"}, "tokne", "unknown key"),
    ],
)
def test_config_mistakes_name_the_crm_and_the_key(
    api: FakeRest, over: dict[str, Any], key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as err:
        from_config(CrmConfig(name="inhouse", type="rest", options=options(api, **over)))
    assert f'"inhouse" (rest): {key}: ' in str(err.value) and says in str(err.value)
    assert api.token not in str(err.value)


def test_the_config_example_in_the_docs_builds() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "crm" / "rest.md").read_text(encoding="utf-8")
    [crm] = tomllib.loads(doc.split("```toml", 1)[1].split("```", 1)[0])["crm"]
    opts = {k: v for k, v in crm.items() if k not in ("name", "type", "timeout")} | {"token": "from-the-env"}
    conn = from_config(CrmConfig(name=crm["name"], type=crm["type"], options=opts))
    assert conn.lookup_url and conn.log_url and conn.contact_url("a/b").endswith("a%2Fb")
