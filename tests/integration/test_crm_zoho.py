"""The Zoho CRM connector against a fake Zoho over real HTTP: OAuth, lookups, calls, idempotency, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from pbxlink.config import ConfigError, CrmConfig
from pbxlink.crm import build_connector
from pbxlink.crm.zoho import MAX_PAGES, PER_PAGE, ZohoConnector
from pbxlink.domain.crm import CrmAuthError, CrmRequestError, CrmUnavailable
from tests.crm.fake import Reply
from tests.crm.fake_zoho import FakeZoho
from tests.crm.samples import NUMBER, log_entry, numbering, query

SECRET, REFRESH = "zoho-client-secret-1", "1000.refresh-token-abcdef"


@pytest.fixture(autouse=True)
def us_numbers() -> Iterator[None]:
    with numbering("US"):
        yield


@pytest.fixture
def zoho() -> Iterator[FakeZoho]:
    with FakeZoho() as fake:
        yield fake


def connect(fake: FakeZoho, timeout: float = 3.0, **options: Any) -> ZohoConnector:
    opts = {
        "client_id": "1000.CLIENT",
        "client_secret": SECRET,
        "refresh_token": REFRESH,
        "accounts_url": fake.url,
        "org": "org7001",
        **options,
    }
    conn = build_connector(CrmConfig(name="zoho", type="zoho", options=opts, timeout=timeout))
    assert isinstance(conn, ZohoConnector)
    conn.http.backoff = 0.01  # keep the 5xx retries quick; Retry-After waits stay real
    return conn


entry = partial(log_entry, recording_url="https://pbx.example.com/rec/42.wav")


def api_calls(fake: FakeZoho, path: str) -> list[Any]:
    return [r for r in fake.calls(path=path) if r.path.startswith("/crm/")]


# -- lookups --------------------------------------------------------------------------------------


def test_finds_contacts_whatever_format_zoho_stored_the_number_in(zoho: FakeZoho) -> None:
    a = zoho.add("Contacts", Full_Name="Ann Phone", Phone="(555) 123-4567")
    b = zoho.add("Contacts", Full_Name="Bob Mobile", Mobile="+1 555-123-4567")
    c = zoho.add("Contacts", First_Name="Cy", Last_Name="Home", Home_Phone="1-555-123-4567")
    zoho.add("Contacts", Full_Name="Other", Phone="(555) 123-4568")
    uk = zoho.add("Contacts", Full_Name="Uk Person", Other_Phone="0044 20 7946 0958")
    conn = connect(zoho)

    found = conn.find_contacts(query(NUMBER))
    assert [x.id for x in found] == [a, b, c]
    assert [x.name for x in found] == ["Ann Phone", "Bob Mobile", "Cy Home"]
    assert {x.id for x in conn.find_contacts(query("555-123-4567"))} == {a, b, c}
    assert [x.id for x in conn.find_contacts(query("+44 20 7946 0958"))] == [uk]

    # As Zoho receives it: the national digits first, the bearer token as Zoho-oauthtoken.
    search = api_calls(zoho, "/search")[0]
    assert search.path == "/crm/v6/Contacts/search"
    assert (search.arg("phone"), search.arg("page"), search.arg("per_page")) == (
        "5551234567",
        "1",
        str(PER_PAGE),
    )
    assert search.headers["Authorization"].startswith("Zoho-oauthtoken 1000.")
    token = zoho.calls("POST", "/oauth/v2/token")
    assert len(token) == 1  # one token for all these lookups
    assert token[0].form["grant_type"] == ["refresh_token"] and token[0].form["refresh_token"] == [REFRESH]
    assert REFRESH not in token[0].path + str(token[0].query)  # secrets travel in the body, never in the URL


def test_unknown_number_tries_both_forms_then_finds_nobody(zoho: FakeZoho) -> None:
    assert connect(zoho).find_contacts(query("+1 212 555 0100")) == []
    assert [r.arg("phone") for r in api_calls(zoho, "/search")] == ["2125550100", "+12125550100"]


def test_owner_company_open_deals_and_links(zoho: FakeZoho) -> None:
    account = {"name": "Acme Corp", "id": "4150868000000300001"}
    ann = zoho.add("Contacts", Full_Name="Ann Buyer", Account_Name=account, Phone="+15551234567")
    ref = {"name": "Ann Buyer", "id": ann}
    open_deal = zoho.add(
        "Deals",
        Deal_Name="50 desk phones",
        Stage="Negotiation/Review",
        Amount=12500,
        **{"$currency_symbol": "$"},
        Contact_Name=ref,
    )
    zoho.add("Deals", Deal_Name="Old win", Stage="Closed Won", Amount=900, Contact_Name=ref)
    zoho.add("Deals", Deal_Name="Gone", Stage="Closed-Lost to Competition", Amount=10, Contact_Name=ref)
    conn = connect(zoho)

    (c,) = conn.find_contacts(query(NUMBER))
    assert (c.name, c.company, c.owner, c.kind) == ("Ann Buyer", "Acme Corp", "Sam Seller", "contact")
    assert c.url == f"https://crm.zoho.com/crm/org7001/tab/Contacts/{ann}" == conn.contact_url(ann)
    (deal,) = c.deals
    assert (deal.title, deal.amount, deal.stage) == ("50 desk phones", "$12,500.00", "Negotiation/Review")
    assert deal.url == f"https://crm.zoho.com/crm/org7001/tab/Potentials/{open_deal}"
    (related,) = api_calls(zoho, "/Deals")
    assert (
        related.path == f"/crm/v6/Contacts/{ann}/Deals" and related.arg("fields") == "Deal_Name,Stage,Amount"
    )


def test_deals_skipped_when_the_token_may_not_read_them(zoho: FakeZoho) -> None:
    ann = zoho.add("Contacts", Full_Name="Ann", Phone="555-123-4567")
    zoho.add("Deals", Deal_Name="Secret", Stage="Qualification", Amount=1, Contact_Name={"id": ann})
    zoho.scopes.discard("deals")
    (c,) = connect(zoho).find_contacts(query(NUMBER))
    assert (c.id, c.deals) == (ann, ())


def test_leads_too_when_configured(zoho: FakeZoho) -> None:
    contact = zoho.add("Contacts", Full_Name="Ann", Phone="555 123 4567")
    lead = zoho.add("Leads", Full_Name="Lee Lead", Company="Lead Co", Mobile="+1 555 123 4567")
    conn = connect(
        zoho, modules="Contacts, Leads", web_url="https://crm.zoho.eu"
    )  # as the environment gives it
    found = conn.find_contacts(query(NUMBER))
    assert [(x.id, x.kind) for x in found] == [(contact, "contact"), (lead, "lead")]
    assert (found[1].company, found[1].url) == (
        "Lead Co",
        f"https://crm.zoho.eu/crm/org7001/tab/Leads/{lead}",
    )


def test_pages_through_lookalikes_but_no_further_than_max_pages(zoho: FakeZoho) -> None:
    for i in range(PER_PAGE + 5):
        zoho.add(
            "Contacts", Full_Name=f"German {i}", Phone="+49 555 123 4567"
        )  # same last digits, another number
    real = zoho.add("Contacts", Full_Name="Real", Phone="555-123-4567")
    conn = connect(zoho)
    assert [c.id for c in conn.find_contacts(query(NUMBER))] == [real]
    assert [r.arg("page") for r in api_calls(zoho, "/search")] == ["1", "2"]

    for i in range(PER_PAGE * MAX_PAGES):
        zoho.add("Contacts", Full_Name=f"More {i}", Mobile="+49 555 123 4567")
    zoho.requests.clear()
    assert [c.id for c in conn.find_contacts(query(NUMBER))] == [real]
    assert [r.arg("page") for r in api_calls(zoho, "/search")] == [str(p + 1) for p in range(MAX_PAGES)]


def test_names_are_passed_through_as_text(zoho: FakeZoho) -> None:
    zoho.add("Contacts", Full_Name="Evil\r\nX-Injected: yes <b>", Phone="555-123-4567")
    (c,) = connect(zoho).find_contacts(query(NUMBER))
    assert c.name == "Evil\r\nX-Injected: yes <b>"


# -- call log ---------------------------------------------------------------------------------------


def test_log_call_creates_a_call_record_as_zoho_expects(zoho: FakeZoho) -> None:
    ann = zoho.add("Contacts", Full_Name="Ann", Phone="555-123-4567")
    call_id = connect(zoho).log_call(entry(contact_id=ann))
    call = zoho.records["Calls"][call_id]
    assert call["Subject"].startswith("Inbound call +15551234567 [pbxlink-")
    assert (call["Call_Type"], call["Call_Duration"], call["Who_Id"]) == ("Inbound", "02:05", {"id": ann})
    assert call["Call_Start_Time"] == "2024-05-01T14:03:07+00:00"
    for line in ("Agent: 201", "Talk time: 2 min 05 s", "Recording: https://pbx.example.com/rec/42.wav"):
        assert line in call["Description"].splitlines()


def test_missed_and_unanswered_calls(zoho: FakeZoho) -> None:
    conn = connect(zoho)
    missed = conn.log_call(entry(disposition="missed", miss_reason="no agent", duration_s=0, key="k1"))
    no_answer = conn.log_call(entry(direction="outbound", disposition="missed", duration_s=0, key="k2"))
    m, n = zoho.records["Calls"][missed], zoho.records["Calls"][no_answer]
    assert (m["Call_Type"], "Call_Duration" in m, "Who_Id" in m) == ("Missed", False, False)
    assert "Result: missed (no agent)" in m["Description"]
    assert (n["Call_Type"], n["Call_Duration"]) == ("Outbound", "00:00")
    assert n["Subject"].startswith("Outbound call, not answered")


def test_logging_twice_leaves_one_call_with_the_marker_search(zoho: FakeZoho) -> None:
    conn = connect(zoho)
    first = conn.log_call(entry())
    assert conn.log_call(entry()) == first
    assert len(zoho.records["Calls"]) == 1
    (coql, _) = [r.json["select_query"] for r in api_calls(zoho, "/coql")]
    assert coql.startswith("select id from Calls where Subject like '%pbxlink-")


@pytest.mark.parametrize(
    "lost",
    [Reply(502, "Bad Gateway"), Reply(201, {"data": []}, delay=1.5)],
    ids=["502-after-commit", "timeout"],
)
def test_lost_answer_after_commit_still_one_call(zoho: FakeZoho, lost: Reply) -> None:
    conn = connect(zoho, timeout=0.3)
    zoho.lose_next_write = lost
    with pytest.raises(CrmUnavailable):
        conn.log_call(entry())
    (call_id,) = zoho.records["Calls"]  # Zoho committed; the insert was not repeated blindly
    assert conn.log_call(entry()) == call_id
    assert len(zoho.records["Calls"]) == 1


def test_upsert_on_a_unique_key_field(zoho: FakeZoho) -> None:
    conn = connect(zoho, key_field="PBX_Call_Key")
    zoho.lose_next_write = Reply(
        502, "Bad Gateway"
    )  # committed, answer lost: upsert is safe to repeat at once
    first = conn.log_call(entry())
    assert conn.log_call(entry()) == first
    (call,) = zoho.records["Calls"].values()
    assert call["PBX_Call_Key"] == "asterisk:1714570000.42" and "[pbxlink-" not in call["Subject"]
    upserts = api_calls(zoho, "/Calls/upsert")
    assert len(upserts) == 3 and upserts[0].json["duplicate_check_fields"] == ["PBX_Call_Key"]
    assert api_calls(zoho, "/coql") == []


def test_a_key_field_zoho_does_not_know_is_a_request_error(zoho: FakeZoho) -> None:
    with pytest.raises(CrmRequestError, match=r"INVALID_DATA.*duplicate_check_fields"):
        connect(zoho, key_field="Call_Key_Typo").log_call(entry())


# -- OAuth and errors -------------------------------------------------------------------------------


def test_expired_token_is_renewed_once_and_the_request_repeated(zoho: FakeZoho) -> None:
    zoho.add("Contacts", Full_Name="Ann", Phone="555-123-4567")
    conn = connect(zoho)
    assert conn.find_contacts(query(NUMBER))
    zoho.expire_tokens()
    assert conn.find_contacts(query(NUMBER))
    assert len(zoho.calls("POST", "/oauth/v2/token")) == 2


def test_missing_scope_is_an_auth_error_naming_the_scopes_without_renewing(zoho: FakeZoho) -> None:
    zoho.scopes.discard("calls")
    conn = connect(zoho, key_field="PBX_Call_Key")
    for _ in range(3):
        with pytest.raises(CrmAuthError) as info:
            conn.log_call(entry())
        assert "invalid oauth scope" in str(info.value) and "ZohoCRM.modules.calls.ALL" in str(info.value)
    assert len(zoho.calls("POST", "/oauth/v2/token")) == 1  # a scope mismatch is no reason for a new token


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"refresh_token": "1000.revoked-token-xyz"}, "invalid_code"),
        ({"client_secret": "wrong-secret-77"}, "invalid_client"),
    ],
)
def test_refused_credentials_say_what_to_check_and_no_secret(
    zoho: FakeZoho, options: dict[str, str], expected: str
) -> None:
    with pytest.raises(CrmAuthError) as info:
        connect(zoho, **options).find_contacts(query(NUMBER))
    message = str(info.value)
    assert expected in message and "accounts_url" in message
    for secret in (*options.values(), SECRET, REFRESH):
        assert secret not in message


def test_a_token_refused_twice_is_an_auth_error_without_the_token(zoho: FakeZoho) -> None:
    conn = connect(zoho)
    token, _ = conn.auth.token()
    invalid = {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"}
    zoho.fail_next(Reply(401, invalid), times=2, path="/search")
    with pytest.raises(CrmAuthError) as info:
        conn.find_contacts(query(NUMBER))
    assert "invalid oauth token" in str(info.value) and token not in str(info.value)
    assert len(zoho.calls("POST", "/oauth/v2/token")) == 2  # renewed once, not more


def test_the_token_is_kept_until_a_minute_before_it_expires(zoho: FakeZoho) -> None:
    now = [1000.0]
    conn = connect(zoho)
    conn.auth.clock = lambda: now[0]
    first, domain = conn.auth.token()
    assert domain == zoho.url
    now[0] += 3600 - 61
    assert conn.auth.token()[0] == first
    now[0] += 2
    assert conn.auth.token()[0] != first
    assert len(zoho.calls("POST", "/oauth/v2/token")) == 2


def test_404_is_a_request_error(zoho: FakeZoho) -> None:
    with pytest.raises(CrmRequestError, match="404"):
        connect(zoho, api_version="v6/nowhere").find_contacts(query(NUMBER))


def test_short_retry_after_is_honoured_then_the_lookup_succeeds(zoho: FakeZoho) -> None:
    zoho.add("Contacts", Full_Name="Ann", Phone="555-123-4567")
    conn = connect(zoho)
    conn.auth.token()
    too_many = {"code": "TOO_MANY_REQUESTS", "details": {}, "message": "too many requests", "status": "error"}
    zoho.fail_next(Reply(429, too_many, headers={"Retry-After": "1"}), path="/search")
    started = time.monotonic()
    assert [c.name for c in conn.find_contacts(query(NUMBER))] == ["Ann"]
    assert time.monotonic() - started >= 0.95


def test_long_retry_after_fails_at_once_with_retry_after(zoho: FakeZoho) -> None:
    conn = connect(zoho)
    zoho.fail_next(
        Reply(429, {"code": "TOO_MANY_REQUESTS", "status": "error"}, headers={"Retry-After": "300"}),
        path="/search",
    )
    started = time.monotonic()
    with pytest.raises(CrmUnavailable) as info:
        conn.find_contacts(query(NUMBER))
    assert info.value.retry_after == 300 and time.monotonic() - started < 2
    assert len(api_calls(zoho, "/search")) == 1


def test_accounts_rate_limit_is_unavailable_not_auth(zoho: FakeZoho) -> None:
    busy = {
        "error_description": "You have made too many requests continuously. Please try again after some time",
        "error": "Access Denied",
        "status": "failure",
    }
    zoho.fail_next(Reply(400, busy), path="/oauth/v2/token")
    with pytest.raises(CrmUnavailable) as info:
        connect(zoho).find_contacts(query(NUMBER))
    assert info.value.retry_after == 60


def test_5xx_is_retried_then_unavailable(zoho: FakeZoho) -> None:
    conn = connect(zoho)
    conn.auth.token()
    zoho.fail_next(
        Reply(500, {"code": "INTERNAL_ERROR", "status": "error", "message": "Internal Server Error"}), times=3
    )
    with pytest.raises(CrmUnavailable, match="500"):
        conn.find_contacts(query(NUMBER))
    assert len(api_calls(zoho, "/search")) == 3


def test_a_silent_zoho_is_unavailable_within_the_timeout(zoho: FakeZoho) -> None:
    conn = connect(zoho, timeout=0.3)
    conn.auth.token()
    zoho.fail_next(Reply(200, "", delay=3), times=3)
    started = time.monotonic()
    with pytest.raises(CrmUnavailable, match=r"no answer within 0\.3 s"):
        conn.find_contacts(query(NUMBER))
    assert time.monotonic() - started < 2.5


# -- check and config -------------------------------------------------------------------------------


def test_check_ok_and_failing(zoho: FakeZoho) -> None:
    ok = connect(zoho).check()
    assert ok.ok and ok.what == "CRM zoho (zoho)" and "COQL marker search" in ok.detail
    assert "upsert on PBX_Call_Key" in connect(zoho, key_field="PBX_Call_Key").check().detail

    bad = connect(zoho, refresh_token="1000.revoked-token-xyz").check()
    assert not bad.ok and "invalid_code" in bad.detail and "1000.revoked-token-xyz" not in bad.detail

    zoho.scopes.discard("contacts")
    scope = connect(zoho).check()
    assert not scope.ok and "ZohoCRM.modules.contacts.READ" in scope.detail

    gone = connect(zoho, accounts_url="http://127.0.0.1:9").check()
    assert not gone.ok and "cannot connect" in gone.detail


def test_config_mistakes_name_the_crm_and_the_key(zoho: FakeZoho) -> None:
    base = {"client_id": "1000.CLIENT", "client_secret": SECRET, "refresh_token": REFRESH}
    cases = [
        ({k: v for k, v in base.items() if k != "client_id"}, "client_id: missing"),
        ({**base, "refresh": "x"}, "refresh: unknown key"),
        ({**base, "modules": ["Deals"]}, 'modules: expected a list of "Contacts", "Leads"'),
        ({**base, "accounts_url": "accounts.zoho.eu"}, "accounts_url: expected an http(s):// URL"),
        ({k: v for k, v in base.items() if k != "refresh_token"}, "PBXLINK_CRM_ZOHO_EU_REFRESH_TOKEN"),
    ]
    for options, expected in cases:
        with pytest.raises(ConfigError) as info:
            build_connector(CrmConfig(name="zoho-eu", type="zoho", options=options))
        assert '[[crm]] "zoho-eu" (zoho)' in str(info.value) and expected in str(info.value)


def test_web_links_follow_the_data_centre() -> None:
    options = {
        "client_id": "1000.C",
        "client_secret": SECRET,
        "refresh_token": REFRESH,
        "accounts_url": "https://accounts.zoho.eu",
    }
    conn = build_connector(CrmConfig(name="z", type="zoho", options=options))
    assert conn.contact_url("42") == "https://crm.zoho.eu/crm/tab/Contacts/42"
