"""The Bitrix24 connector against a fake portal over real HTTP: lookups, call logging, errors, config."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from functools import partial

import pytest

from pbxlink.config import ConfigError, CrmConfig
from pbxlink.crm.bitrix24 import Bitrix24, from_config
from pbxlink.domain.crm import CrmAuthError, CrmRequestError, CrmUnavailable, Deal
from tests.crm.fake import Reply
from tests.crm.fake_bitrix24 import FakeBitrix24
from tests.crm.samples import log_entry, numbering, query


@pytest.fixture
def b24() -> Iterator[FakeBitrix24]:
    with FakeBitrix24() as fake:
        yield fake


def connector(fake: FakeBitrix24, timeout: float = 2.0, **options: object) -> Bitrix24:
    conn = from_config(
        CrmConfig(name="b24", type="bitrix24", options={"webhook": fake.webhook, **options}, timeout=timeout)
    )
    conn.http.backoff = 0.05  # keep retries quick; the policy itself is HttpClient's
    return conn


entry = partial(log_entry, duration_s=42.4)


# lookups ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("(555) 123-4567", "+15551234567"),
        ("+1 555-123-4567", "5551234567"),
        ("+1 555 123 4567 ext. 12", "15551234567"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+44 20 7946 0958", "00442079460958"),
    ],
)
def test_a_contact_is_found_whatever_form_its_number_is_stored_in(
    b24: FakeBitrix24, stored: str, asked: str
) -> None:
    cid = b24.add("CONTACT", phones=(stored,), NAME="Ada", LAST_NAME="Lovelace")
    [found] = connector(b24).find_contacts(query(asked))
    assert (found.id, found.name, found.kind, found.phones) == (
        str(cid),
        "Ada Lovelace",
        "contact",
        (stored,),
    )
    assert found.url == f"{b24.http.url}/crm/contact/details/{cid}/"
    [search] = b24.calls("crm.duplicate.findbycomm")
    assert search["type"] == "PHONE" and len(search["values"]) <= 20


def test_a_national_number_with_its_trunk_prefix_is_found_on_a_site_of_that_country(
    b24: FakeBitrix24,
) -> None:
    with numbering("GB"):
        cid = b24.add("CONTACT", phones=("020 7946 0958",), NAME="Ada")
        assert [c.id for c in connector(b24).find_contacts(query("+44 20 7946 0958"))] == [str(cid)]


def test_an_unknown_number_is_one_request_and_nothing_found(b24: FakeBitrix24) -> None:
    b24.add("CONTACT", phones=("+15550000000",), NAME="Someone")
    assert connector(b24).find_contacts(query("+15551234567")) == []
    assert len(b24.http.calls()) == 1


def test_a_record_the_stale_duplicate_index_still_finds_is_dropped(b24: FakeBitrix24) -> None:
    b24.add("CONTACT", phones=("+15559999999",), indexed_as=("+15551234567",), NAME="Moved Away")
    keep = b24.add("CONTACT", phones=("+15551234567",), NAME="Still Here")
    assert [c.id for c in connector(b24).find_contacts(query("+15551234567"))] == [str(keep)]


def test_several_contacts_come_newest_first_with_owner_company_and_open_deals(b24: FakeBitrix24) -> None:
    b24.add_user(7, "Olga", "Owner", extension="201")
    co = b24.add("COMPANY", phones=(), TITLE="Acme Ltd")
    old = b24.add("CONTACT", phones=("+15551234567",), NAME="Old", ASSIGNED_BY_ID=7, COMPANY_ID=co)
    new = b24.add("CONTACT", phones=("+1 (555) 123-4567", "+15550001111"), NAME="New")
    deal_id = b24.add(
        "DEAL",
        TITLE="Big order",
        CONTACT_ID=old,
        CLOSED="N",
        OPPORTUNITY="1500.00",
        CURRENCY_ID="USD",
        STAGE_ID="NEW",
    )
    b24.add(
        "DEAL",
        TITLE="Lost one",
        CONTACT_ID=old,
        CLOSED="Y",
        OPPORTUNITY="10",
        CURRENCY_ID="USD",
        STAGE_ID="LOSE",
    )
    first, second = connector(b24).find_contacts(query("+15551234567"))
    assert (first.id, second.id) == (str(new), str(old))
    assert (second.owner, second.owner_extension, second.company) == ("Olga Owner", "201", "Acme Ltd")
    assert first.owner == "Admin Istrator" and first.company is None and first.deals == ()
    assert second.deals == (
        Deal("Big order", "1500.00 USD", "NEW", f"{b24.http.url}/crm/deal/details/{deal_id}/"),
    )
    methods = [r.path.rsplit("/", 1)[1] for r in b24.http.calls()]
    assert methods == [
        "crm.duplicate.findbycomm.json",
        "crm.contact.list.json",
        "user.get.json",
        "crm.company.list.json",
        "crm.deal.list.json",
    ]


def test_companies_then_leads_when_no_contact_has_the_number(b24: FakeBitrix24) -> None:
    lead = b24.add("LEAD", phones=("+15551234567",), TITLE="Web form", COMPANY_TITLE="Initech")
    conn = connector(b24)
    [found] = conn.find_contacts(query("+15551234567"))
    assert (found.id, found.kind, found.name, found.company) == (f"L_{lead}", "lead", "Web form", "Initech")
    assert found.url == f"{b24.http.url}/crm/lead/details/{lead}/"
    co = b24.add("COMPANY", phones=("+15551234567",), TITLE="Acme Ltd")
    [found] = conn.find_contacts(query("+15551234567"))
    assert (found.id, found.kind, found.name) == (f"CO_{co}", "company", "Acme Ltd")
    assert conn.contact_url(found.id) == f"{b24.http.url}/crm/company/details/{co}/"


def test_paging_is_followed_and_bounded(b24: FakeBitrix24) -> None:
    for i in range(20):
        b24.add("CONTACT", phones=("+15551234567",), NAME=f"Twin {i}")
    b24.page_size = 8
    assert len(connector(b24).find_contacts(query("+15551234567"))) == 20
    assert [c.get("start") for c in b24.calls("crm.contact.list")] == [0, 8, 16]
    b24.page_size = 5
    assert len(connector(b24).find_contacts(query("+15551234567"))) == 15  # 3 pages, no more
    assert [c.get("start") for c in b24.calls("crm.contact.list")][3:] == [0, 5, 10]


def test_names_from_the_crm_are_passed_through_as_text(b24: FakeBitrix24) -> None:
    b24.add("CONTACT", phones=("+15551234567",), NAME="<script>x</script>\r\nX-Evil: 1", LAST_NAME="O'Neil")
    [found] = connector(b24).find_contacts(query("+15551234567"))
    assert found.name == "<script>x</script>\r\nX-Evil: 1 O'Neil"


def test_a_portal_url_other_than_the_webhook_host_is_used_for_links(b24: FakeBitrix24) -> None:
    conn = connector(b24, portal_url="https://crm.example.com/")
    assert conn.contact_url("12") == "https://crm.example.com/crm/contact/details/12/"
    with pytest.raises(CrmRequestError):
        conn.contact_url("../../evil")


# call logging ----------------------------------------------------------------------------------


def test_an_answered_call_is_registered_finished_and_its_recording_attached(b24: FakeBitrix24) -> None:
    b24.add_user(7, "Olga", "Owner", extension="201")
    cid = b24.add("CONTACT", phones=("+15551234567",), NAME="Ada")
    rec = "https://pbx.example.com/recordings/1700000000.1.mp3"
    call_id = connector(b24).log_call(entry(contact_id=str(cid), recording_url=rec))
    [reg] = b24.calls("telephony.externalcall.register")
    assert reg == {
        "USER_ID": 7,
        "PHONE_NUMBER": "+15551234567",
        "TYPE": 2,
        "CALL_START_DATE": "2024-05-01T14:03:07+00:00",
        "CRM_CREATE": 0,
        "SHOW": 0,
        "ADD_TO_CHAT": 0,
        "EXTERNAL_CALL_ID": "asterisk:1714570000.42",
        "CRM_ENTITY_TYPE": "CONTACT",
        "CRM_ENTITY_ID": cid,
    }
    [row] = b24.stats
    assert row["CALL_ID"] == call_id and row["EXTERNAL_CALL_ID"] == "asterisk:1714570000.42"
    assert (row["PORTAL_USER_ID"], row["CALL_DURATION"], row["CALL_FAILED_CODE"]) == ("7", "42", "200")
    assert (row["CRM_ENTITY_TYPE"], row["CRM_ENTITY_ID"], row["CALL_RECORD_URL"]) == (
        "CONTACT",
        str(cid),
        rec,
    )
    assert row["CRM_ACTIVITY_ID"] is not None


def test_a_call_is_bound_to_the_company_or_lead_that_was_found(b24: FakeBitrix24) -> None:
    lead = b24.add("LEAD", phones=("+15559990000",), TITLE="Web form")
    connector(b24).log_call(entry(contact_id=f"L_{lead}"))
    [reg] = b24.calls("telephony.externalcall.register")
    assert (reg["CRM_ENTITY_TYPE"], reg["CRM_ENTITY_ID"]) == ("LEAD", lead)
    assert (b24.stats[0]["CRM_ENTITY_TYPE"], b24.stats[0]["CRM_ENTITY_ID"]) == ("LEAD", str(lead))


def test_a_missed_busy_call_without_agent_goes_to_the_webhook_user(b24: FakeBitrix24) -> None:
    connector(b24).log_call(
        entry(direction="outbound", agent=None, duration_s=0, disposition="missed", miss_reason="busy")
    )
    [row] = b24.stats
    assert (row["CALL_TYPE"], row["PORTAL_USER_ID"], row["CALL_FAILED_CODE"]) == ("1", "1", "486")
    assert (row["CALL_DURATION"], row["CALL_FAILED_REASON"]) == ("0", "busy")
    assert b24.calls("user.get") == []


def test_an_agent_without_a_bitrix_user_logs_for_the_default_user(b24: FakeBitrix24) -> None:
    b24.add_user(9, "Reception")
    connector(b24, default_user_id=9).log_call(
        entry(agent="299", disposition="missed", duration_s=0, miss_reason="no_answer")
    )
    [row] = b24.stats
    assert (row["PORTAL_USER_ID"], row["CALL_FAILED_CODE"], row["CALL_FAILED_REASON"]) == (
        "9",
        "304",
        "no answer",
    )


def test_logging_the_same_key_twice_leaves_one_entry(b24: FakeBitrix24) -> None:
    conn = connector(b24)
    first = conn.log_call(entry())
    assert conn.log_call(entry()) == first
    assert len(b24.stats) == 1 and len(b24.calls("telephony.externalcall.register")) == 1


@pytest.mark.parametrize("method", ["telephony.externalcall.finish", "telephony.externalcall.register"])
def test_a_lost_answer_after_the_commit_leaves_one_entry(b24: FakeBitrix24, method: str) -> None:
    b24.lose_answer(method, Reply(502, "<html>502 Bad Gateway</html>"))
    conn = connector(b24)
    call_id = conn.log_call(entry())
    assert conn.log_call(entry()) == call_id
    assert [r["CALL_ID"] for r in b24.stats] == [call_id] and b24.open_calls == {}


def test_an_answer_later_than_the_timeout_after_the_commit_leaves_one_entry(b24: FakeBitrix24) -> None:
    b24.lose_answer("telephony.externalcall.finish", Reply(200, {}, delay=1.0))
    conn = connector(b24, timeout=0.3)
    call_id = conn.log_call(entry())  # the retried finish is refused ("not found"): the search finds it
    assert conn.log_call(entry()) == call_id
    assert len(b24.stats) == 1


def test_a_failed_finish_that_was_not_committed_is_raised_and_retried_later(b24: FakeBitrix24) -> None:
    b24.http.fail_next(
        Reply(503, {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}),
        times=3,
        path=r"finish",
    )
    conn = connector(b24)
    with pytest.raises(CrmUnavailable):
        conn.log_call(entry())
    assert b24.stats == []
    call_id = conn.log_call(entry())  # the outbox's next try: the open registration is reused
    assert [r["CALL_ID"] for r in b24.stats] == [call_id] and b24.open_calls == {}
    assert {f["CALL_ID"] for f in b24.calls("telephony.externalcall.finish")} == {call_id}


def test_a_recording_the_portal_refuses_does_not_undo_the_logged_call(
    b24: FakeBitrix24, caplog: pytest.LogCaptureFixture
) -> None:
    b24.http.fail_next(
        Reply(400, {"error": "ERROR_CORE", "error_description": "Server returns HTTP error code 404"}),
        path="attachRecord",
    )
    with caplog.at_level(logging.WARNING):
        call_id = connector(b24).log_call(entry(recording_url="https://pbx.example.com/r/1.mp3"))
    assert [r["CALL_ID"] for r in b24.stats] == [call_id]
    assert "without its recording" in caplog.text and "HTTP error code 404" in caplog.text


# errors ----------------------------------------------------------------------------------------


def test_a_wrong_webhook_code_is_an_auth_error_that_says_what_to_check_and_hides_the_code(
    b24: FakeBitrix24, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = b24.webhook.replace(b24.code, "wr0ngc0de")
    conn = from_config(CrmConfig(name="b24", type="bitrix24", options={"webhook": wrong}))
    with caplog.at_level(logging.DEBUG, logger="pbxlink"), pytest.raises(CrmAuthError) as err:
        conn.find_contacts(query("+15551234567"))
    message = str(err.value)
    assert "401" in message and "Wrong authorization data" in message and "inbound webhook" in message
    assert "wr0ngc0de" not in message + caplog.text
    assert len(b24.http.calls()) == 1  # a bad key stays bad: no retry


def test_a_missing_permission_is_an_auth_error_naming_the_permissions() -> None:
    with FakeBitrix24(scopes=("crm", "user")) as fake, pytest.raises(CrmAuthError) as err:
        connector(fake).log_call(entry())
    assert "higher privileges" in str(err.value) and "telephony" in str(err.value)


def test_an_unknown_method_is_a_request_error(b24: FakeBitrix24) -> None:
    b24.http.fail_next(
        Reply(404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"})
    )
    with pytest.raises(CrmRequestError, match=r"404.*Method not found"):
        connector(b24).find_contacts(query("+15551234567"))


def test_a_short_retry_after_is_honoured_then_the_lookup_succeeds(b24: FakeBitrix24) -> None:
    b24.add("CONTACT", phones=("+15551234567",), NAME="Ada")
    b24.http.fail_next(Reply(429, {"error": "QUERY_LIMIT_EXCEEDED"}, headers={"Retry-After": "0.3"}))
    t0 = time.monotonic()
    assert [c.name for c in connector(b24).find_contacts(query("+15551234567"))] == ["Ada"]
    assert time.monotonic() - t0 >= 0.3


def test_a_long_retry_after_fails_at_once_with_retry_after_set(b24: FakeBitrix24) -> None:
    b24.http.fail_next(Reply(429, {"error": "QUERY_LIMIT_EXCEEDED"}, headers={"Retry-After": "3600"}))
    t0 = time.monotonic()
    with pytest.raises(CrmUnavailable) as err:
        connector(b24).find_contacts(query("+15551234567"))
    assert err.value.retry_after == 3600 and time.monotonic() - t0 < 2


def test_query_limit_exceeded_is_retried_then_succeeds(b24: FakeBitrix24) -> None:
    limit = Reply(503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"})
    b24.http.fail_next(limit, times=2)
    assert connector(b24).find_contacts(query("+15551234567")) == []
    assert len(b24.http.calls()) == 3


def test_a_server_error_that_persists_is_unavailable_after_the_retries(b24: FakeBitrix24) -> None:
    b24.http.fail_next(
        Reply(500, {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}), times=5
    )
    with pytest.raises(CrmUnavailable, match=r"500.*Internal server error"):
        connector(b24).find_contacts(query("+15551234567"))
    assert len(b24.http.calls()) == 3


def test_a_portal_that_never_answers_is_unavailable_within_the_timeout(b24: FakeBitrix24) -> None:
    b24.http.fail_next(Reply(200, {}, delay=3.0), times=3)
    t0 = time.monotonic()
    with pytest.raises(CrmUnavailable, match=r"no answer within 0\.3 s"):
        connector(b24, timeout=0.3).find_contacts(query("+15551234567"))
    assert time.monotonic() - t0 < 2.5  # 3 attempts of 0.3 s and short backoffs


# check and config ------------------------------------------------------------------------------


def test_check_names_what_is_wrong(b24: FakeBitrix24) -> None:
    ok = connector(b24).check()
    assert ok.ok and ok.what == "CRM b24 (bitrix24)" and "crm, telephony, user" in ok.detail
    b24.scopes.discard("telephony")
    missing = connector(b24).check()
    assert not missing.ok and "lacks the permission telephony" in missing.detail
    wrong = from_config(
        CrmConfig(name="b24", type="bitrix24", options={"webhook": b24.webhook.replace(b24.code, "x")})
    )
    bad = wrong.check()
    assert not bad.ok and "Wrong authorization data" in bad.detail and "inbound webhook" in bad.detail


def test_check_of_an_unreachable_portal_says_so() -> None:
    conn = from_config(
        CrmConfig(
            name="b24",
            type="bitrix24",
            options={"webhook": "http://127.0.0.1:9/rest/1/zz9plural/"},
            timeout=0.3,
        )
    )
    conn.http.backoff = 0.01
    result = conn.check()
    assert not result.ok and "cannot connect" in result.detail and "zz9plural" not in result.detail


@pytest.mark.parametrize(
    ("options", "key", "says"),
    [
        ({}, "webhook", "missing (set it in the file or in PBXLINK_CRM_B24_WEBHOOK)"),
        ({"webhook": "https://x.bitrix24.com/rest/q7hz0kd5/"}, "webhook", "expected the inbound webhook URL"),
        ({"webhook": "https://x.bitrix24.com/rest/1/q7hz0kd5/", "token": "t"}, "token", "unknown key"),
        (
            {"webhook": "https://x.bitrix24.com/rest/1/q7hz0kd5/", "default_user_id": "one"},
            "default_user_id",
            "numeric",
        ),
        (
            {"webhook": "https://x.bitrix24.com/rest/1/q7hz0kd5/", "create_lead": "yes"},
            "create_lead",
            "true or false",
        ),
    ],
)
def test_config_mistakes_name_the_crm_and_the_key(options: dict[str, object], key: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_config(CrmConfig(name="b24", type="bitrix24", options=options))
    assert f'"b24" (bitrix24): {key}: ' in str(err.value) and says in str(err.value)
    assert "q7hz0kd5" not in str(err.value)
