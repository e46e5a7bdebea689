"""The Odoo connector against a fake Odoo over real HTTP: lookups, notes, idempotency, errors, config."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pbxlink.config import ConfigError, CrmConfig, load_config
from pbxlink.crm import build_connector
from pbxlink.crm.odoo import MAX_PAGES, PAGE, OdooConnector
from pbxlink.domain.crm import CrmAuthError, CrmRequestError, CrmUnavailable
from tests.crm.fake import Reply
from tests.crm.fake_odoo import FakeOdoo
from tests.crm.samples import NUMBER, log_entry, numbering, query

KEY = "odoo-key-0123456789"


@pytest.fixture(autouse=True)
def us_numbers() -> Iterator[None]:
    with numbering("US"):
        yield


@pytest.fixture
def odoo() -> Iterator[FakeOdoo]:
    with FakeOdoo(key=KEY) as fake:
        yield fake


def connect(fake: FakeOdoo, timeout: float = 3.0, **options: Any) -> OdooConnector:
    opts = {"url": fake.url, "db": "acme", "username": "pbx@acme.example", "api_key": KEY, **options}
    conn = build_connector(CrmConfig(name="odoo", type="odoo", options=opts, timeout=timeout))
    assert isinstance(conn, OdooConnector)
    conn.rpc.http.backoff = 0.01  # keep the 5xx retries quick; Retry-After waits stay real
    return conn


entry = partial(
    log_entry, caller_name="Ann <script>", recording_url="https://pbx.example.com/rec/42.wav?a=1&b=2"
)


def searches(fake: FakeOdoo, model: str = "res.partner") -> list[tuple[str, str, list[Any], dict[str, Any]]]:
    return [c for c in fake.executed if c[0] == model and c[1] == "search_read"]


# -- lookups --------------------------------------------------------------------------------------


def test_finds_partners_whatever_format_odoo_stored_the_number_in(odoo: FakeOdoo) -> None:
    a = odoo.add_partner("Ann Phone", phone="(555) 123-4567")
    b = odoo.add_partner("Bob Mobile", mobile="+1 555-123-4567")
    c = odoo.add_partner("Cy Ext", phone="555.123.4567 ext. 12")
    odoo.add_partner("Other", phone="(555) 123-4568")
    uk = odoo.add_partner("Uk Ltd", phone="0044 20 7946 0958", is_company=True)
    conn = connect(odoo)

    found = conn.find_contacts(query(NUMBER))
    assert sorted(x.id for x in found) == sorted(str(i) for i in (a, b, c))
    assert {x.name: x.phones for x in found}["Bob Mobile"] == ("+1 555-123-4567",)
    # The PBX may give the national form: the same partners come back.
    assert {x.id for x in conn.find_contacts(query("5551234567"))} == {x.id for x in found}
    assert [x.id for x in conn.find_contacts(query("+44 20 7946 0958"))] == [str(uk)]

    # The request as Odoo receives it: one =ilike digit pattern over phone and mobile, bounded.
    _, _, (domain,), kwargs = searches(odoo)[0]
    assert domain == [
        "|",
        ["phone", "=ilike", "%5%5%1%2%3%4%5%6%7%"],
        ["mobile", "=ilike", "%5%5%1%2%3%4%5%6%7%"],
    ]
    assert kwargs["limit"] == PAGE and kwargs["offset"] == 0
    assert {"name", "parent_id", "user_id", "phone", "mobile"} <= set(kwargs["fields"])
    auth = odoo.calls("POST", "/jsonrpc")[0].json["params"]
    assert (auth["service"], auth["method"], auth["args"]) == (
        "common",
        "authenticate",
        ["acme", odoo.login, KEY, {}],
    )


def test_unknown_number_finds_nobody(odoo: FakeOdoo) -> None:
    odoo.add_partner("Ann", phone="(555) 123-4567")
    assert connect(odoo).find_contacts(query("+1 212 555 0100")) == []


def test_owner_company_open_deals_and_links(odoo: FakeOdoo) -> None:
    company = odoo.add_partner("Acme Corp", is_company=True, phone="+1 (555) 123-4567")
    person = odoo.add_partner("Ann Buyer", parent_id=company, user_id=9, mobile="555 123 4567")
    open_deal = odoo.add_lead(person, "50 desk phones", 12500, stage=2)
    odoo.add_lead(person, "Won last year", 900, stage=4)
    odoo.add_lead(person, "Lost one", 300, active=False)
    odoo.add_lead(person, "Just a lead", 100, type="lead")
    conn = connect(odoo, web_url="https://acme.odoo.com")

    ann, acme = conn.find_contacts(query(NUMBER))  # the person before the company
    assert (ann.name, ann.company, ann.owner, ann.kind) == ("Ann Buyer", "Acme Corp", "Sam Seller", "contact")
    assert ann.url == f"https://acme.odoo.com/web#id={person}&model=res.partner&view_type=form"
    assert conn.contact_url(str(person)) == ann.url
    (deal,) = ann.deals
    assert (deal.title, deal.amount, deal.stage) == ("50 desk phones", "12,500.00 USD", "Proposition")
    assert deal.url == f"https://acme.odoo.com/web#id={open_deal}&model=crm.lead&view_type=form"
    assert (acme.kind, acme.company, acme.deals) == ("company", None, ())
    # All the partners' deals come in one request.
    assert len(searches(odoo, "crm.lead")) == 1


def test_works_without_crm_app_or_mobile_field() -> None:
    with FakeOdoo(key=KEY, crm=False) as odoo:
        del odoo.partner_fields["mobile"]  # newer Odoo versions have phone only
        pid = odoo.add_partner("Ann", phone="(555) 123-4567")
        conn = connect(odoo)
        for _ in range(2):
            (ann,) = conn.find_contacts(query(NUMBER))
            assert (ann.id, ann.deals) == (str(pid), ())
        _, _, (domain,), kwargs = searches(odoo)[0]
        assert domain == [["phone", "=ilike", "%5%5%1%2%3%4%5%6%7%"]] and "mobile" not in kwargs["fields"]
        # The missing CRM app is found out once, not asked again on every pop.
        assert [c[1] for c in odoo.executed if c[0] == "crm.lead"] == []
        asked = [c for c in odoo.calls("POST", "/jsonrpc") if "crm.lead" in c.body.decode()]
        assert len(asked) == 1


def test_deals_skipped_when_the_user_may_not_read_them(odoo: FakeOdoo) -> None:
    pid = odoo.add_partner("Ann", phone="(555) 123-4567")
    odoo.add_lead(pid, "Secret", 1)
    odoo.denied_models.add("crm.lead")
    (ann,) = connect(odoo).find_contacts(query(NUMBER))
    assert (ann.id, ann.deals) == (str(pid), ())


def test_pages_through_lookalikes_but_no_further_than_max_pages(odoo: FakeOdoo) -> None:
    real = odoo.add_partner("Real", phone="555-123-4567")  # oldest: the last page
    for i in range(PAGE + 5):
        odoo.add_partner(f"German {i}", phone="+49 1555 1234567")  # same digits in order, another number
    conn = connect(odoo)
    assert [c.id for c in conn.find_contacts(query(NUMBER))] == [str(real)]
    assert [s[3]["offset"] for s in searches(odoo)] == [0, PAGE]

    for i in range(PAGE * MAX_PAGES):
        odoo.add_partner(f"More {i}", mobile="+49 1555 1234567")
    odoo.executed.clear()
    assert conn.find_contacts(query(NUMBER)) == []
    assert len(searches(odoo)) == MAX_PAGES


def test_names_are_passed_through_as_text(odoo: FakeOdoo) -> None:
    odoo.add_partner("Evil\r\nX-Injected: yes <b>", phone="(555) 123-4567")
    (c,) = connect(odoo).find_contacts(query(NUMBER))
    assert c.name == "Evil\r\nX-Injected: yes <b>"


# -- call log ---------------------------------------------------------------------------------------


def test_log_call_posts_a_note_on_the_partner(odoo: FakeOdoo) -> None:
    pid = odoo.add_partner("Ann", phone="(555) 123-4567")
    conn = connect(odoo)
    message_id = conn.log_call(entry(contact_id=str(pid)))

    (note,) = odoo.notes(pid)
    assert message_id == str(note["id"])
    assert (note["model"], note["message_type"], note["subtype"]) == (
        "res.partner",
        "comment",
        "mail.mt_note",
    )
    body = note["body"]
    for text in (
        "<b>Inbound call</b>",
        NUMBER,
        "Agent: 201",
        "Talk time: 2 min 05 s",
        "2024-05-01 14:03:07 UTC",
    ):
        assert text in body
    assert "Ann &lt;script&gt;" in body and "<script>" not in body
    assert '<a href="https://pbx.example.com/rec/42.wav?a=1&amp;b=2">' in body
    assert "asterisk:1714570000.42 (pbxlink-" in body


def test_missed_call_says_why(odoo: FakeOdoo) -> None:
    pid = odoo.add_partner("Ann", phone="(555) 123-4567")
    connect(odoo).log_call(
        entry(contact_id=str(pid), disposition="missed", miss_reason="no agent", duration_s=0)
    )
    body = odoo.notes(pid)[0]["body"]
    assert "<b>Missed call</b>" in body and "Result: missed (no agent)" in body and "Talk time" not in body


def test_logging_the_same_call_twice_leaves_one_note(odoo: FakeOdoo) -> None:
    pid = odoo.add_partner("Ann", phone="(555) 123-4567")
    conn = connect(odoo)
    first = conn.log_call(entry(contact_id=str(pid)))
    assert conn.log_call(entry(contact_id=str(pid))) == first
    assert len(odoo.notes(pid)) == 1
    conn.log_call(entry(contact_id=str(pid), key="main:other"))
    assert len(odoo.notes(pid)) == 2


@pytest.mark.parametrize(
    "lost",
    [Reply(502, "Bad Gateway"), Reply(200, {"jsonrpc": "2.0", "id": 0, "result": 1}, delay=1.5)],
    ids=["502-after-commit", "answer-after-timeout"],
)
def test_lost_answer_after_commit_still_one_note(odoo: FakeOdoo, lost: Reply) -> None:
    pid = odoo.add_partner("Ann", phone="(555) 123-4567")
    conn = connect(odoo, timeout=0.3)
    odoo.lose_next_write = lost
    with pytest.raises(CrmUnavailable):
        conn.log_call(entry(contact_id=str(pid)))
    (note,) = odoo.notes(pid)  # Odoo committed; the post was not repeated blindly
    assert conn.log_call(entry(contact_id=str(pid))) == str(note["id"])
    assert len(odoo.notes(pid)) == 1


def test_odoo_16_gets_html_without_body_is_html(odoo: FakeOdoo) -> None:
    odoo.version = 16
    pid = odoo.add_partner("Ann", phone="(555) 123-4567")
    conn = connect(odoo)
    conn.log_call(entry(contact_id=str(pid)))
    conn.log_call(entry(contact_id=str(pid), key="main:2"))
    assert all(n["body"].startswith("<p><b>") for n in odoo.notes(pid))
    posts = [c[3] for c in odoo.executed if c[1] == "message_post"]
    assert ["body_is_html" in p for p in posts] == [
        True,
        False,
        False,
    ]  # refused once, then never asked again


def test_a_call_without_a_partner_is_not_logged(odoo: FakeOdoo) -> None:
    odoo.add_partner("Ann", phone="(555) 123-4567")
    assert connect(odoo).log_call(entry(number="+12125550100")) == ""
    assert odoo.models["mail.message"] == {} and odoo.executed == []


# -- errors -----------------------------------------------------------------------------------------


def test_wrong_key_is_an_auth_error_that_names_what_to_check(odoo: FakeOdoo) -> None:
    conn = connect(odoo, api_key="wrong-key-987654321")
    with pytest.raises(CrmAuthError) as info:
        conn.find_contacts(query(NUMBER))
    assert "db, username and api_key" in str(info.value) and "wrong-key-987654321" not in str(info.value)


def test_logs_in_again_once_when_odoo_stops_accepting_the_uid(odoo: FakeOdoo) -> None:
    odoo.add_partner("Ann", phone="(555) 123-4567")
    conn = connect(odoo)
    assert conn.find_contacts(query(NUMBER))
    odoo.uid = 8  # the user was re-created: the cached uid is refused, a fresh login works
    assert conn.find_contacts(query(NUMBER))
    odoo.key = "rotated-key-555555555"  # revoked: the fresh login fails too
    with pytest.raises(CrmAuthError) as info:
        conn.find_contacts(query(NUMBER))
    assert KEY not in str(info.value)


def test_wrong_database_is_a_request_error(odoo: FakeOdoo) -> None:
    with pytest.raises(CrmRequestError, match=r"database 'acme2'.*does not exist"):
        connect(odoo, db="acme2").find_contacts(query(NUMBER))


def test_404_is_a_request_error(odoo: FakeOdoo) -> None:
    with pytest.raises(CrmRequestError, match="404"):
        connect(odoo, url=odoo.url + "/not-odoo").find_contacts(query(NUMBER))


def test_short_retry_after_is_honoured_then_the_lookup_succeeds(odoo: FakeOdoo) -> None:
    odoo.add_partner("Ann", phone="(555) 123-4567")
    conn = connect(odoo)
    odoo.fail_next(Reply(429, "Too Many Requests", headers={"Retry-After": "1"}))
    started = time.monotonic()
    assert [c.name for c in conn.find_contacts(query(NUMBER))] == ["Ann"]
    assert time.monotonic() - started >= 0.95


def test_long_retry_after_fails_at_once_with_retry_after(odoo: FakeOdoo) -> None:
    conn = connect(odoo)
    odoo.fail_next(Reply(429, "Too Many Requests", headers={"Retry-After": "120"}))
    started = time.monotonic()
    with pytest.raises(CrmUnavailable) as info:
        conn.find_contacts(query(NUMBER))
    assert info.value.retry_after == 120 and time.monotonic() - started < 2
    assert len(odoo.calls()) == 1


def test_5xx_is_retried_then_unavailable(odoo: FakeOdoo) -> None:
    conn = connect(odoo)
    odoo.fail_next(Reply(503, "Service Unavailable"), times=3)
    with pytest.raises(CrmUnavailable, match="503"):
        conn.find_contacts(query(NUMBER))
    assert len(odoo.calls()) == 3


def test_a_silent_odoo_is_unavailable_within_the_timeout(odoo: FakeOdoo) -> None:
    conn = connect(odoo, timeout=0.3)
    odoo.fail_next(Reply(200, "", delay=3), times=3)
    started = time.monotonic()
    with pytest.raises(CrmUnavailable, match=r"no answer within 0\.3 s"):
        conn.find_contacts(query(NUMBER))
    assert time.monotonic() - started < 2.5  # three attempts of 0.3 s and short backoffs, never the 3 s delay


# -- check and config -------------------------------------------------------------------------------


def test_check_ok_and_failing(odoo: FakeOdoo) -> None:
    ok = connect(odoo).check()
    assert ok.ok and ok.what == "CRM odoo (odoo)" and "open deals from the CRM app" in ok.detail

    bad = connect(odoo, api_key="nope-nope-nope").check()
    assert not bad.ok and "api_key" in bad.detail and "nope-nope-nope" not in bad.detail

    odoo.denied_models.add("res.partner")
    denied = connect(odoo).check()
    assert not denied.ok and "res.partner" in denied.detail and "access right" in denied.detail

    gone = connect(odoo, url="http://127.0.0.1:9").check()
    assert not gone.ok and "cannot connect" in gone.detail


def test_config_mistakes_name_the_crm_and_the_key(odoo: FakeOdoo) -> None:
    base = {"url": odoo.url, "db": "acme", "username": "u", "api_key": KEY}
    cases = [
        ({k: v for k, v in base.items() if k != "db"}, "db: missing"),
        ({**base, "dbname": "acme"}, "dbname: unknown key"),
        ({**base, "url": "odoo.example.com"}, "url: expected an http(s):// URL"),
        ({k: v for k, v in base.items() if k != "api_key"}, "PBXLINK_CRM_MY_ODOO_API_KEY"),
    ]
    for options, expected in cases:
        with pytest.raises(ConfigError) as info:
            build_connector(CrmConfig(name="my odoo", type="odoo", options=options))
        assert '[[crm]] "my odoo" (odoo)' in str(info.value) and expected in str(info.value)


def test_api_key_from_the_environment(odoo: FakeOdoo, tmp_path: Path) -> None:
    path = tmp_path / "pbxlink.toml"
    path.write_text(
        '[[pbx]]\nname = "main"\nhost = "127.0.0.1"\nusername = "u"\nsecret = "s"\n'
        f'[[crm]]\nname = "odoo"\ntype = "odoo"\nurl = "{odoo.url}"\ndb = "acme"\nusername = "{odoo.login}"\n'
    )
    cfg = load_config(path, environ={"PBXLINK_CRM_ODOO_API_KEY": KEY})
    assert build_connector(cfg.crm[0]).check().ok
