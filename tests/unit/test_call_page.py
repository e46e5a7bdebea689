"""A call's page through Flask's test client over a real SQLite database: the timeline of an answered,
a transferred and a missed call, recordings only for those who may hear them, the CRM deliveries with
links from the directory's cache (the CRM itself never asked), callbacks, the campaign contact, 404s."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from pbxlink.web import create_app
from pbxlink.web.call_page import timeline

from pbxlink.cache import MemoryCache
from pbxlink.domain.calls import Transfer
from pbxlink.domain.crm import CallLogEntry, Contact
from pbxlink.domain.phone import PhoneNumbers, PhoneQuery
from pbxlink.domain.ports import CheckResult
from pbxlink.services.directory import CallerDirectory
from pbxlink.storage import callbacks, outbox
from pbxlink.storage import recordings as rec_store
from pbxlink.storage.calls import get_call, save_call
from pbxlink.storage.models import CallbackAttempt, Campaign, CampaignAttempt, CampaignContact
from pbxlink.storage.users import create_user
from tests.unit.test_call_history import app, as_user, call, wired  # noqa: F401  (the app fixture)
from tests.unit.test_web_api import config  # noqa: F401  (the config fixture)

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
CUSTOMER = "+15551230001"


def answered(call_id: str = "ans", agents: tuple[str, ...] = ("201",), **changes) -> int:
    """Rang in queue support for 10 s, answered at +12 s, ended at +60 s by the customer."""
    values = {
        "queue": "support",
        "wait_seconds": 10.0,
        "answered_at": T0 + timedelta(seconds=12),
        "talk_seconds": 48.0,
    }
    return save_call(call(call_id, T0, agents, CUSTOMER, **(values | changes)))


def steps(call_id: int) -> list[tuple[str | None, str, str]]:
    """The timeline as (UTC time or None, words, kind)."""
    record = get_call(call_id)
    assert record is not None
    return [(s.at.strftime("%H:%M:%S") if s.at else None, s.what, s.kind) for s in timeline(record)]


def text(resp) -> str:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True))).split())


def test_the_timeline_of_an_answered_call(config) -> None:  # noqa: F811
    assert steps(answered()) == [
        ("09:00:00", f"Inbound call from {CUSTOMER} started", "start"),
        ("09:00:02", "Entered queue support", "queue"),  # the answer less the wait
        ("09:00:12", "Answered by 201 after 10 s waiting", "answer"),
        ("09:01:00", "Ended: the customer hung up", "end"),
    ]


def test_the_timeline_of_a_transferred_call_lists_its_transfers_between_answer_and_end(config) -> None:  # noqa: F811
    moves = [Transfer("201", "202", "blind"), Transfer("202", "300", "attended")]
    found = steps(answered("tr", ("201", "202", "300"), transfers=moves, hangup_by="agent"))
    assert [s[1] for s in found[2:]] == [
        "Answered by 201 after 10 s waiting",
        "Blind transfer from 201 to 202",
        "Attended transfer from 202 to 300",
        "Ended: the agent hung up",
    ]
    assert [s[0] for s in found[3:5]] == [None, None]  # the record keeps their order, not their times


def test_the_timeline_of_a_missed_call_and_of_one_whose_end_was_not_seen(config) -> None:  # noqa: F811
    missed = save_call(
        call("miss", T0, (), CUSTOMER, queue="sales", wait_seconds=45.0, miss_reason="abandoned")
    )
    assert steps(missed) == [
        ("09:00:00", f"Inbound call from {CUSTOMER} started", "start"),
        ("09:00:15", "Entered queue sales", "queue"),  # the end (+60 s) less 45 s of waiting
        ("09:01:00", "Missed (abandoned): the customer hung up", "end"),
    ]
    lost = answered("lost", end_seen=False)
    assert steps(lost)[-1][1] == "Ended: the end was not seen (pbxlink lost the PBX link meanwhile)"


def test_the_page_shows_timeline_agents_and_transfers(app, config) -> None:  # noqa: F811
    moves = [Transfer("201", "202", "blind")]
    page = text(as_user(app, "sue").get(f"/calls/{answered('tr', ('201', '202'), transfers=moves)}"))
    assert "Entered queue support" in page and "Blind transfer from 201 to 202" in page
    assert "Agents 201 → 202" in page
    assert "Transfers blind: 201 → 202" in page
    assert "This call was not recorded." in page


def add_recording(call_id: str, agent: str, status: str = "present") -> int:
    row = rec_store.upsert(
        f"/var/spool/rec/{call_id}-{agent}.wav",
        "/var/spool/rec",
        pbx="main",
        call_id=call_id,
        started_at=T0,
        agent=agent,
        status=status,
        duration=48.0,
    )
    return int(row.id)


def test_a_recording_shows_with_its_player_only_to_whom_may_hear_it(app, config) -> None:  # noqa: F811
    create_user("bob", "long enough", role="agent", extension="202")
    call_id = answered("rec", ("201", "202"), recording="/var/spool/rec/rec-201.wav")
    rec_id = add_recording("rec", "201")
    player = f'src="/recordings/{rec_id}/audio"'
    assert player in as_user(app, "sue").get(f"/calls/{call_id}").get_data(as_text=True)
    assert player in as_user(app, "ann").get(f"/calls/{call_id}").get_data(as_text=True)  # ann is 201
    bob = as_user(app, "bob").get(f"/calls/{call_id}")  # 202 talked after the transfer: sees the call
    assert player not in bob.get_data(as_text=True)
    assert "not yours to hear" in text(bob)
    assert as_user(app, "bob").get(f"/recordings/{rec_id}").status_code == 404  # the same rule as there


def test_a_deleted_recording_is_named_but_not_played(app, config) -> None:  # noqa: F811
    call_id = answered("gone", recording="/var/spool/rec/gone-201.wav")
    rec_id = add_recording("gone", "201", status="deleted")
    page = as_user(app, "sue").get(f"/calls/{call_id}").get_data(as_text=True)
    assert f"Recording #{rec_id}" in page and "This recording is deleted" in page
    assert "<audio" not in page


class Crm:
    """A CRM connector that knows one contact and records every lookup it is asked."""

    kind = "rest"

    def __init__(self, name: str, url: str) -> None:
        self.name, self.url, self.asked = name, url, []

    def find_contacts(self, number: PhoneQuery) -> list[Contact]:
        self.asked.append(number.raw)
        return [Contact(crm=self.name, id="c-9", name="Ada Lovelace", url=self.url)]

    def log_call(self, entry: CallLogEntry) -> str:
        raise AssertionError("the page must not log calls")

    def contact_url(self, contact_id: str) -> str:
        return self.url

    def check(self) -> CheckResult:
        raise AssertionError("the page must not check the CRM")


def test_crm_deliveries_with_the_contact_link_from_the_cache_and_no_crm_request(config) -> None:  # noqa: F811
    hub, bad = Crm("hub", "https://crm.example/contacts/c-9"), Crm("odd", "javascript:alert(1)")
    directory = CallerDirectory([hub, bad], MemoryCache(), PhoneNumbers())
    panel = wired(create_app(config, directory=directory))
    create_user("sue", "long enough", role="supervisor")
    call_id = answered("crm")
    for target in ("hub", "zoho"):
        outbox.enqueue("crm_log", target, "main:crm", {"call": "crm"})
    outbox.enqueue("crm_log", "hub", "main:other", {})
    first = outbox.claim_due(datetime.now(UTC), 10, 30.0, target="hub")[0]
    outbox.done(first.id, "engagement-77")
    zoho = outbox.claim_due(datetime.now(UTC), 10, 30.0, target="zoho")[0]
    outbox.fail(zoho.id, "401 from Zoho: the token was revoked")

    sue = as_user(panel, "sue")
    page = text(sue.get(f"/calls/{call_id}"))
    assert "hub : done logged as engagement-77" in page
    assert "zoho : failed 1 attempt" in page
    assert "the customer in hub" not in page  # nothing cached yet, and the page asks no CRM
    assert hub.asked == []

    directory.lookup(CUSTOMER)  # what a screen-pop does while the call rings
    html = sue.get(f"/calls/{call_id}").get_data(as_text=True)
    assert '<a href="https://crm.example/contacts/c-9" rel="noopener noreferrer" target="_blank">' in html
    assert "javascript:" not in html
    assert len(hub.asked) == 1  # the lookup's, not the page's


def test_the_callback_a_miss_scheduled_and_the_callback_a_call_was_an_attempt_of(app, config) -> None:  # noqa: F811
    missed = save_call(call("m1", T0, (), CUSTOMER, queue="support"))
    cb, _ = callbacks.schedule(
        "default", "main", CUSTOMER, source="missed_call", due_at=T0, missed_call="main:m1"
    )
    CallbackAttempt.create(callback=cb, tag="cb-tag-1", by="scheduler")
    attempt = save_call(
        call("o1", T0 + timedelta(hours=1), ("201",), "100", direction="outbound", origin="cb-tag-1")
    )
    sue = as_user(app, "sue")
    page = sue.get(f"/calls/{missed}").get_data(as_text=True)
    assert f'Its miss scheduled\n          <a href="/callbacks/{cb.id}">callback #{cb.id}</a>' in page
    page = sue.get(f"/calls/{attempt}").get_data(as_text=True)
    assert f'It was an attempt of\n          <a href="/callbacks/{cb.id}">callback #{cb.id}</a>' in page


def test_the_campaign_contact_of_a_call_pbxlink_placed_for_a_campaign(app, config) -> None:  # noqa: F811
    campaign = Campaign.create(name="Spring renewals", pbx="main", mode="agent_first", timezone="UTC")
    contact = CampaignContact.create(
        campaign=campaign, number=CUSTOMER, number_key="5551230001", name="Ada Lovelace", timezones="UTC"
    )
    CampaignAttempt.create(
        campaign=campaign, contact=contact, tag="cmp-1", deadline=T0 + timedelta(minutes=2)
    )
    call_id = save_call(
        call("c1", T0, ("201",), "100", direction="outbound", callee=CUSTOMER, origin="cmp-1")
    )
    html = as_user(app, "sue").get(f"/calls/{call_id}").get_data(as_text=True)
    assert f'<a href="/campaigns/{campaign.id}">Spring renewals</a>' in html
    assert "Ada Lovelace" in html
    assert "Spring renewals" in as_user(app, "ann").get(f"/calls/{call_id}").get_data(as_text=True)
    assert f'href="/campaigns/{campaign.id}"' not in as_user(app, "ann").get(f"/calls/{call_id}").get_data(
        as_text=True
    )  # agents do not have the campaigns pages: the name, not a link


def test_404_for_a_missing_call_and_for_another_agents_call_never_403(app, config) -> None:  # noqa: F811
    theirs = answered("theirs", ("203",))
    ann = as_user(app, "ann")
    hidden, missing = ann.get(f"/calls/{theirs}"), ann.get("/calls/999999")
    assert hidden.status_code == missing.status_code == 404
    assert CUSTOMER not in hidden.get_data(as_text=True)
    assert as_user(app, "sue").get(f"/calls/{theirs}").status_code == 200
    anonymous = app.test_client().get(f"/calls/{theirs}")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")


@pytest.mark.parametrize("path", ["/calls/stream", "/calls/history"])
def test_the_call_page_route_leaves_the_other_calls_routes_alone(app, path) -> None:  # noqa: F811
    assert app.url_map.bind("localhost").match(path)[0] != "call_page.show"
