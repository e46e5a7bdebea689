"""The HubSpot connector against a fake HubSpot over real HTTP: lookups, call logging, errors, config."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from pbxlink.config import ConfigError, CrmConfig
from pbxlink.crm import build_connector
from pbxlink.crm._callnote import marker
from pbxlink.crm.hubspot import BUSY, CONNECTED, HubSpot
from pbxlink.domain.crm import CrmAuthError, CrmRequestError, CrmUnavailable
from tests.crm.fake import Reply
from tests.crm.fake_hubspot import PORTAL_ID, SCOPES, TOKEN, FakeHubSpot, rate_limited
from tests.crm.samples import log_entry, numbering, query

NUMBER = "+12125550142"
SEARCH = "/crm/v3/objects/contacts/search"


@pytest.fixture(autouse=True)
def us_numbers() -> Iterator[None]:
    with numbering("US"):
        yield


@pytest.fixture
def hub() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        yield fake


def connect(hub: FakeHubSpot, timeout: float = 2.0, **options: Any) -> HubSpot:
    opts = {"token": TOKEN, "portal_id": PORTAL_ID, "api_url": hub.url, **options}
    connector = build_connector(CrmConfig(name="hubspot", type="hubspot", options=opts, timeout=timeout))
    assert isinstance(connector, HubSpot)
    return connector


entry = partial(
    log_entry,
    number=NUMBER,
    caller_name="Ann Example",
    recording_url="https://pbx.example.com/recordings/42.wav",
)


@pytest.mark.parametrize(
    ("stored", "asked", "national"),
    [
        ("(212) 555-0142", NUMBER, "2125550142"),
        ("+1 212-555-0142", NUMBER, "2125550142"),
        ("212.555.0142 ext. 7", NUMBER, "2125550142"),
        ("+12125550142", "2125550142", "2125550142"),
        ("0044 20 7946 0958", "+442079460958", "2079460958"),
        ("+44 20 7946 0958", "00442079460958", "2079460958"),
    ],
)
def test_finds_the_contact_whatever_format_the_number_was_stored_in(
    hub: FakeHubSpot, stored: str, asked: str, national: str
) -> None:
    cid = hub.add_contact(firstname="Ann", lastname="Example", phone=stored, company="Acme")
    [found] = connect(hub).find_contacts(query(asked))
    assert (found.crm, found.id, found.name, found.company, found.phones) == (
        "hubspot",
        cid,
        "Ann Example",
        "Acme",
        (stored,),
    )
    assert found.url == f"https://app.hubspot.com/contacts/{PORTAL_ID}/record/0-1/{cid}"
    [search] = hub.calls("POST", SEARCH)
    assert search.headers["Authorization"] == f"Bearer {TOKEN}"
    filters = [g["filters"][0] for g in search.json["filterGroups"]]
    assert {
        "propertyName": "hs_searchable_calculated_phone_number",
        "operator": "CONTAINS_TOKEN",
        "value": f"*{national}",
    } in filters
    assert {"propertyName": "phone", "operator": "EQ", "value": query(asked).e164} in filters
    assert "mobilephone" in search.json["properties"] and "hubspot_owner_id" in search.json["properties"]


def test_mobile_numbers_are_found_too_and_an_unknown_number_is_nobody(hub: FakeHubSpot) -> None:
    cid = hub.add_contact(firstname="Bob", mobilephone="+1 (212) 555 0199")
    connector = connect(hub)
    assert [c.id for c in connector.find_contacts(query("+12125550199"))] == [cid]
    assert connector.find_contacts(query("+12125550100")) == []


def test_a_search_hit_that_is_another_number_is_dropped(hub: FakeHubSpot) -> None:
    """HubSpot's searchable copy has no country code: +44 212 555 0142 looks like +1 212 555 0142."""
    hub.add_contact(firstname="Not", lastname="Ann", phone="+44 212 555 0142")
    assert connect(hub).find_contacts(query(NUMBER)) == []
    assert hub.calls("POST", SEARCH)[0].json["filterGroups"]  # the CRM did answer a broader search


def test_several_matches_best_first_with_owners_company_and_open_deals(hub: FakeHubSpot) -> None:
    hub.add_owner("77", "owner@acme.example", "Olga", "Owner")
    hub.add_owner("78", "second@acme.example")
    older = hub.add_contact(firstname="Old", phone="(212) 555-0142", hubspot_owner_id="78")
    newer = hub.add_contact(firstname="New", mobilephone=NUMBER, company="Acme", hubspot_owner_id="77")
    deal = hub.add_deal(newer, "Renewal 2024", "1500", deal_currency_code="EUR", dealstage="contractsent")
    hub.add_deal(newer, "Lost one", "10", closed=True)
    hub.add_deal(older, "Someone else's", "20")
    first, second = connect(hub).find_contacts(query(NUMBER))
    assert (first.id, first.owner, first.company) == (newer, "Olga Owner", "Acme")
    assert (second.id, second.owner, second.deals) == (older, "second@acme.example", ())
    [open_deal] = first.deals
    assert (open_deal.title, open_deal.amount, open_deal.stage) == (
        "Renewal 2024",
        "1500 EUR",
        "contractsent",
    )
    assert open_deal.url == f"https://app.hubspot.com/contacts/{PORTAL_ID}/record/0-3/{deal}"
    assert len(hub.calls("POST", "/deals/search")) == 1  # one extra request per lookup, for the best match


def test_owners_are_asked_once_and_an_unknown_owner_leaves_the_lookup_intact(hub: FakeHubSpot) -> None:
    hub.add_contact(firstname="Ann", phone=NUMBER, hubspot_owner_id="999")
    connector = connect(hub)
    for _ in range(2):
        [found] = connector.find_contacts(query(NUMBER))
        assert (found.name, found.owner) == ("Ann", None)
    assert len(hub.calls("GET", "/crm/v3/owners/999")) == 1


def test_deals_hubspot_will_not_show_leave_the_contact(hub: FakeHubSpot) -> None:
    hub.add_contact(firstname="Ann", phone=NUMBER)
    denied = {"status": "error", "message": "This app hasn't been granted all required scopes"}
    missing_scope = Reply(403, {**denied, "category": "MISSING_SCOPES"})
    hub.fail_next(missing_scope, path="/deals/search")
    [found] = connect(hub).find_contacts(query(NUMBER))
    assert (found.name, found.deals) == ("Ann", ())


def test_paging_follows_after_but_only_so_far(hub: FakeHubSpot) -> None:
    real = hub.add_contact(firstname="Real", phone=NUMBER)
    for i in range(120):  # look-alikes HubSpot returns first (modified later) that are other numbers
        hub.add_contact(firstname=f"Decoy{i}", phone="+44 212 555 0142")
    assert [c.id for c in connect(hub).find_contacts(query(NUMBER))] == [real]
    assert [r.json.get("after") for r in hub.calls("POST", SEARCH)] == [None, "100"]
    for i in range(200):
        hub.add_contact(firstname=f"More{i}", phone="+44 212 555 0142")
    assert connect(hub).find_contacts(query(NUMBER)) == []  # the real one is on page 4: not read
    assert len(hub.calls("POST", SEARCH)) == 2 + 3


def test_names_pass_through_as_text_and_repeated_numbers_count_once(hub: FakeHubSpot) -> None:
    cid = hub.add_contact(
        firstname="Eve\r\nX-Injected: 1", lastname="<script>", phone=NUMBER, mobilephone=NUMBER
    )
    [found] = connect(hub).find_contacts(query(NUMBER))
    assert (found.id, found.name, found.phones) == (cid, "Eve\r\nX-Injected: 1 <script>", (NUMBER,))


def test_contact_url_uses_the_portal_and_the_configured_app_address(hub: FakeHubSpot) -> None:
    assert connect(hub).contact_url("501") == f"https://app.hubspot.com/contacts/{PORTAL_ID}/record/0-1/501"
    eu = connect(hub, app_url="https://app-eu1.hubspot.com/")
    assert eu.contact_url("501") == f"https://app-eu1.hubspot.com/contacts/{PORTAL_ID}/record/0-1/501"


def test_log_call_creates_a_call_engagement_on_the_contact(hub: FakeHubSpot) -> None:
    cid = hub.add_contact(firstname="Ann", phone=NUMBER)
    call_id = connect(hub).log_call(entry(contact_id=cid, caller_name="Ann <b>Example</b>\r\nX: y"))
    stored = hub.engagements[call_id]
    props = dict(stored["properties"])
    body = props.pop("hs_call_body")
    assert {
        k: v for k, v in props.items() if k not in ("hs_object_id", "hs_createdate", "hs_lastmodifieddate")
    } == {
        "hs_timestamp": "2024-05-01T14:03:07.000Z",
        "hs_call_title": f"Inbound call: Ann <b>Example</b> X: y ({NUMBER})",
        "hs_call_direction": "INBOUND",
        "hs_call_status": "COMPLETED",
        "hs_call_disposition": CONNECTED,
        "hs_call_duration": "125000",
        "hs_call_from_number": NUMBER,
        "hs_call_to_number": "201",
        "hs_call_recording_url": "https://pbx.example.com/recordings/42.wav",
        "hs_call_external_id": "asterisk:1714570000.42",
    }
    assert "Ann &lt;b&gt;Example&lt;/b&gt;" in body and "<b>Example</b>" not in body
    assert '<a href="https://pbx.example.com/recordings/42.wav">' in body and marker(entry().key) in body
    assert stored["associations"] == [
        {"to": {"id": cid}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]}
    ]


def test_a_missed_outbound_call_to_a_busy_line(hub: FakeHubSpot) -> None:
    missed = entry(
        direction="outbound",
        disposition="missed",
        miss_reason="busy",
        duration_s=0.0,
        recording_url=None,
        caller_name=None,
    )
    stored = hub.engagements[connect(hub).log_call(missed)]
    props = stored["properties"]
    assert (props["hs_call_direction"], props["hs_call_status"], props["hs_call_disposition"]) == (
        "OUTBOUND",
        "BUSY",
        BUSY,
    )
    assert (props["hs_call_from_number"], props["hs_call_to_number"]) == ("201", NUMBER)
    assert props["hs_call_title"] == f"Outbound call, not answered: {NUMBER}"
    assert "hs_call_recording_url" not in props and stored["associations"] == []  # no contact: none


def test_logging_the_same_call_twice_leaves_one_entry(hub: FakeHubSpot) -> None:
    connector = connect(hub)
    first = connector.log_call(entry())
    assert connector.log_call(entry()) == first
    assert list(hub.engagements) == [first]
    assert len(hub.calls("POST", "/crm/v3/objects/calls$")) == 1
    [search, _] = hub.calls("POST", "/calls/search")
    assert search.json["filterGroups"] == [
        {"filters": [{"propertyName": "hs_call_external_id", "operator": "EQ", "value": entry().key}]}
    ]


@pytest.mark.parametrize("lost", [Reply(502, "<html>502 Bad Gateway</html>"), Reply(201, {}, delay=1.5)])
def test_a_call_hubspot_stored_but_whose_answer_was_lost_is_not_logged_twice(
    hub: FakeHubSpot, lost: Reply
) -> None:
    connector = connect(hub, timeout=0.5)
    hub.lose_next_create = lost
    with pytest.raises(CrmUnavailable):
        connector.log_call(entry())
    assert len(hub.calls("POST", "/crm/v3/objects/calls$")) == 1  # a create is never retried blindly
    [stored] = list(hub.engagements)
    assert connector.log_call(entry()) == stored
    assert list(hub.engagements) == [stored]


def test_a_retry_before_hubspot_search_shows_the_lost_call_is_put_off(hub: FakeHubSpot) -> None:
    hub.index_lag = 30.0
    hub.lose_next_create = Reply(502, "<html>502 Bad Gateway</html>")
    connector = connect(hub)
    with pytest.raises(CrmUnavailable):
        connector.log_call(entry())
    with pytest.raises(CrmUnavailable) as exc:
        connector.log_call(entry())  # HubSpot stored it, but its search does not show it yet
    assert exc.value.retry_after is not None and 50 < exc.value.retry_after <= 60
    assert "trying again later" in str(exc.value)
    assert len(hub.calls("POST", "/crm/v3/objects/calls$")) == 1
    hub.index_lag = 0.0
    [stored] = list(hub.engagements)
    assert connector.log_call(entry()) == stored


def test_a_wrong_token_is_an_auth_error_that_names_no_secret(hub: FakeHubSpot) -> None:
    connector = connect(hub, token="pat-na1-wrong-token-0000")
    with pytest.raises(CrmAuthError) as exc:
        connector.find_contacts(query(NUMBER))
    message = str(exc.value)
    assert (
        "401" in message
        and "Authentication credentials not found" in message
        and "check the API key" in message
    )
    assert "pat-na1-wrong-token-0000" not in message and TOKEN not in message
    assert len(hub.calls()) == 1  # a bad key stays bad: not retried


def test_a_wrong_api_address_is_a_request_error_at_once(hub: FakeHubSpot) -> None:
    with pytest.raises(CrmRequestError) as exc:
        connect(hub, api_url=hub.url + "/v9").find_contacts(query(NUMBER))
    assert "404" in str(exc.value) and "/v9/crm/v3/objects/contacts/search" in str(exc.value)
    assert len(hub.calls()) == 1


def test_a_short_retry_after_is_honoured_then_the_lookup_succeeds(hub: FakeHubSpot) -> None:
    hub.add_contact(firstname="Ann", phone=NUMBER)
    hub.fail_next(rate_limited("0.3"), path=SEARCH)
    started = time.monotonic()
    assert [c.name for c in connect(hub).find_contacts(query(NUMBER))] == ["Ann"]
    assert time.monotonic() - started >= 0.3
    assert len(hub.calls("POST", SEARCH)) == 2


def test_a_long_retry_after_gives_up_at_once_and_says_when(hub: FakeHubSpot) -> None:
    hub.fail_next(rate_limited("3600"))
    started = time.monotonic()
    with pytest.raises(CrmUnavailable) as exc:
        connect(hub).find_contacts(query(NUMBER))
    assert exc.value.retry_after == 3600 and time.monotonic() - started < 1.0
    assert "429" in str(exc.value) and "secondly limit" in str(exc.value)


def test_server_errors_are_retried_then_reported_unavailable(hub: FakeHubSpot) -> None:
    hub.add_contact(firstname="Ann", phone=NUMBER)
    hub.fail_next(Reply(502, "<html>Bad Gateway</html>"))
    assert [c.name for c in connect(hub).find_contacts(query(NUMBER))] == ["Ann"]
    hub.fail_next(Reply(503, {"status": "error", "message": "Service unavailable"}), times=3)
    with pytest.raises(CrmUnavailable) as exc:
        connect(hub).find_contacts(query(NUMBER))
    assert "503" in str(exc.value) and len(hub.calls("POST", SEARCH)) == 2 + 3


def test_a_hubspot_that_never_answers_is_unavailable_within_the_timeouts(hub: FakeHubSpot) -> None:
    hub.fail_next(Reply(200, {}, delay=3.0), times=3)
    started = time.monotonic()
    with pytest.raises(CrmUnavailable) as exc:
        connect(hub, timeout=0.3).find_contacts(query(NUMBER))
    assert "no answer within 0.3 s" in str(exc.value)
    assert time.monotonic() - started < 3 * 0.3 + 1.5 + 2.0  # three attempts, backoff, a loaded machine


def test_check_accepts_a_token_with_every_scope(hub: FakeHubSpot) -> None:
    result = connect(hub).check()
    assert (result.ok, result.what) == (True, "CRM hubspot (hubspot)")
    assert str(PORTAL_ID) in result.detail
    [asked] = hub.calls("POST", "/oauth/v2/private-apps/get/access-token-info")
    assert asked.json == {"tokenKey": TOKEN}


def test_check_names_the_missing_scopes_and_a_wrong_portal() -> None:
    with FakeHubSpot(scopes=SCOPES[:2]) as hub:
        result = connect(hub).check()
        assert not result.ok
        assert "crm.objects.deals.read, crm.objects.owners.read" in result.detail
    with FakeHubSpot(portal_id=999) as hub:
        result = connect(hub).check()
        assert not result.ok and f"portal 999, not {PORTAL_ID}: set portal_id = 999" in result.detail


def test_check_reports_a_bad_token_and_an_unreachable_hubspot(hub: FakeHubSpot) -> None:
    result = connect(hub, token="pat-na1-bad").check()
    assert not result.ok and "401" in result.detail and "pat-na1-bad" not in result.detail
    down = connect(hub, api_url="http://127.0.0.1:9", timeout=0.3).check()
    assert not down.ok and "unreachable" in down.detail and "cannot connect" in down.detail


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"portal_id": PORTAL_ID}, "token: missing (set it in the file or in PBXLINK_CRM_HUBSPOT_TOKEN)"),
        ({"token": TOKEN}, "portal_id: missing"),
        ({"token": TOKEN, "portal_id": "acme"}, "portal_id: expected the portal's number"),
        (
            {"token": TOKEN, "portal_id": PORTAL_ID, "api_url": "api.hubapi.com"},
            "api_url: expected an http(s)",
        ),
        ({"token": TOKEN, "portal_id": PORTAL_ID, "portal": 1}, "portal: unknown key"),
    ],
)
def test_config_mistakes_name_the_crm_and_the_key(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build_connector(CrmConfig(name="hubspot", type="hubspot", options=options))
    assert str(exc.value).startswith('[[crm]] "hubspot" (hubspot): ') and says in str(exc.value)
    assert TOKEN not in str(exc.value)
