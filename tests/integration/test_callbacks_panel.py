"""The Callbacks page, its actions, the waiting count and /api/v1/callbacks through Flask's test client,
over a real SQLite database whose rows the callback store made (`schedule` and the attempt steps)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from pbxlink.web import create_app

from pbxlink.domain.calls import CallRecord
from pbxlink.storage import callbacks as store
from pbxlink.storage.calls import save_call
from pbxlink.storage.models import Callback
from pbxlink.storage.users import create_user
from tests.unit import test_web_api
from tests.unit.test_web_api import PASSWORD, bearer, csrf_token, login

config = test_web_api.config  # the fixture: a migrated SQLite database and its Config

EVIL = '<script>alert("name")</script>'
NUMBERS = {
    "ann": "+12025550101",  # pending, missed by 201 (ann) in queue support, named EVIL
    "bob": "+12025550102",  # pending, missed by 202 (bob)
    "web": "+12025550103",  # pending, asked for on the website, nobody's yet
    "gone": "+12025550104",  # cancelled
    "done": "+12025550105",  # done (201's), answered on the first attempt
    "lost": "+12025550106",  # failed after one unanswered attempt
    "busy": "+12025550107",  # in progress: an attempt under way
}
TZ = "America/New_York"  # the "server's" zone: never UTC, so a local time that is taken as UTC shows
SOON = f"{datetime.now() + timedelta(days=3):%Y-%m-%d}T10:00"  # a valid reschedule: within the year ahead


@pytest.fixture(autouse=True)
def _server_zone() -> Iterator[None]:
    """The server runs in New York: the page shows, and the reschedule form takes, New York times."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = TZ
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture
def app(config: Any) -> Flask:
    app = create_app(config)
    return app


def _attempt(cb: Callback, outcome: str | None, status: str | None, now: datetime) -> None:
    """Claim `cb` (due), place one attempt; record `outcome` and settle at `status` when given."""
    (claimed,) = store.claim_due(now, 60, 1)
    assert claimed.id == cb.id
    tag = f"tag-{cb.id}"
    assert store.start_attempt(claimed, tag, "scheduler", now=now, deadline=now + timedelta(minutes=2))
    if outcome is not None:
        finished = store.finish_attempt(tag, outcome, f"call-{cb.id}", now + timedelta(seconds=40))
        assert finished is not None and status is not None
        due = now + timedelta(hours=1) if status == "pending" else None
        assert store.settle(finished, status=status, now=now, due_at=due, reason=f"attempt 1 of 1: {outcome}")


@pytest.fixture
def rows(config: Any) -> dict[str, int]:
    """One callback in every state (see NUMBERS); the missed call of ann's is in the call log."""
    now = datetime.now(UTC)
    past, later = now - timedelta(minutes=5), now + timedelta(hours=2)
    missed = CallRecord("main", "1700000000.1", "inbound", now - timedelta(minutes=30), caller=NUMBERS["ann"])
    missed.queue, missed.agent, missed.ended_at = "support", "201", now - timedelta(minutes=29)
    missed.disposition, missed.miss_reason = "missed", "no_answer"
    save_call(missed)

    def new(key: str, due: datetime, **kw: Any) -> Callback:
        cb, created = store.schedule(
            "sales", "main", NUMBERS[key], source=kw.pop("source", "missed_call"), due_at=due, **kw
        )
        assert created
        return cb

    ids = {}
    for key, outcome, status, agent in (
        ("done", "answered", "done", "201"),
        ("lost", "no_answer", "failed", "202"),
        ("busy", None, None, "202"),
    ):
        cb = new(key, past, agent=agent)
        _attempt(cb, outcome, status, now)
        ids[key] = cb.id
    made = CallRecord(
        "main", "1700000100.7", "outbound", now, callee=NUMBERS["done"], origin=f"tag-{ids['done']}"
    )
    made.agent, made.agents, made.ended_at = "201", ["201"], now + timedelta(seconds=100)
    made.disposition, made.talk_seconds = "answered", 95.0
    save_call(made)  # the call the done callback's attempt made, found by its tag
    ids["ann"] = new(
        "ann", later, name=EVIL, agent="201", missed_call="main:1700000000.1", queue="support"
    ).id
    ids["bob"] = new("bob", later, agent="202", queue="support").id
    ids["web"] = new("web", later, source="web", name="Ada Lovelace").id
    ids["gone"] = new("gone", later, agent="201").id
    assert store.cancel(ids["gone"], "reached by e-mail", "sue")
    return ids


def signed_in(app: Flask, username: str, role: str = "agent", extension: str | None = None) -> Any:
    create_user(username, PASSWORD, role=role, extension=extension)
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


@pytest.fixture
def sue(app: Flask) -> Any:
    return signed_in(app, "sue", "supervisor")


@pytest.fixture
def ann(app: Flask) -> Any:
    return signed_in(app, "ann", extension="201")


def html_of(client: Any, url: str = "/callbacks") -> str:
    resp = client.get(url)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return str(resp.get_data(as_text=True))


def tab_counts(html: str) -> dict[str, int]:
    found = re.findall(r'class="tab-(\w+)"[^>]*>[^<]*<span class="tab-count">(\d+)</span>', html)
    return {key: int(n) for key, n in found}


def row_of(html: str, cb_id: int) -> str:
    match = re.search(rf'<tr id="cb-{cb_id}".*?</tr>', html, re.S)
    return match.group(0) if match else ""


def post(client: Any, cb_id: int, action: str, **form: str) -> Any:
    data = {"csrf_token": csrf_token(client, "/callbacks"), "next": "/callbacks?status=pending", **form}
    return client.post(f"/callbacks/{cb_id}/{action}", data=data)


def flashes(client: Any) -> list[str]:
    return re.findall(r'<p class="flash[^"]*" role="status">(.*?)</p>', html_of(client), re.S)


def test_a_supervisor_sees_every_state_with_its_count(sue: Any, rows: dict[str, int]) -> None:
    html = html_of(sue)
    assert tab_counts(html) == {"pending": 3, "in_progress": 1, "done": 1, "failed": 1, "cancelled": 1}
    assert 'aria-current="page">Pending' in html
    listed = set(re.findall(r'<tr id="cb-(\d+)"', html))
    assert listed == {str(rows[k]) for k in ("ann", "bob", "web")}
    ann_row = row_of(html, rows["ann"])
    # The missed call: its time (New York), queue and agent, linked to the callback's page.
    missed_local = (datetime.now(UTC) - timedelta(minutes=30)).astimezone().strftime("%Y-%m-%d %H:%M")
    assert f'href="/callbacks/{rows["ann"]}#missed">missed {missed_local}</a>' in ann_row
    assert "queue support · agent 201" in ann_row
    assert "website request" in row_of(html, rows["web"]) and "Ada Lovelace" in row_of(html, rows["web"])
    assert "Call now" in ann_row and 'type="datetime-local"' in ann_row and "Cancel callback" in ann_row

    for status, key, words in (
        ("in_progress", "busy", ">1</a>"),
        ("done", "done", "attempt 1 of 1: answered"),
        ("failed", "lost", "no answer"),
        ("cancelled", "gone", "reached by e-mail (cancelled by sue)"),
    ):
        page = html_of(sue, f"/callbacks?status={status}")
        assert set(re.findall(r'<tr id="cb-(\d+)"', page)) == {str(rows[key])}, status
        assert words in row_of(page, rows[key]), status
        if status != "in_progress":  # closed: no action offered
            assert "<form" not in row_of(page, rows[key])
    assert sue.get("/callbacks?status=lost").status_code == 400


def test_the_detail_page_shows_the_missed_call_and_each_attempt(sue: Any, rows: dict[str, int]) -> None:
    html = html_of(sue, f"/callbacks/{rows['ann']}")
    assert "support" in html and "no answer" in html and "/api/v1/calls/1" in html
    done = html_of(sue, f"/callbacks/{rows['done']}")
    assert re.search(r'class="badge out-answered">answered</span>', done)
    assert "scheduler" in done and "201 · talked 1:35" in done and "/api/v1/calls/2" in done
    assert "None: this is a website request." in html_of(sue, f"/callbacks/{rows['web']}")
    assert sue.get("/callbacks/9999").status_code == 404


def test_a_customer_name_is_shown_as_text(sue: Any, ann: Any, rows: dict[str, int]) -> None:
    for client, url in ((sue, "/callbacks"), (ann, "/callbacks"), (sue, f"/callbacks/{rows['ann']}")):
        html = html_of(client, url)
        assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in html
        assert "<script" not in html and "style=" not in html  # no markup from the name, nothing inline (CSP)
    assert '<option value="201">' in html_of(sue)  # the assign field offers the known extensions


def test_an_agent_sees_and_steers_only_their_own(ann: Any, rows: dict[str, int]) -> None:
    html = html_of(ann)
    assert tab_counts(html) == {"pending": 1, "in_progress": 0, "done": 1, "failed": 0, "cancelled": 1}
    assert set(re.findall(r'<tr id="cb-(\d+)"', html)) == {str(rows["ann"])}
    own = row_of(html, rows["ann"])
    assert "Call now" in own and "Reschedule" not in own and "Cancel callback" not in own
    assert ann.get(f"/callbacks/{rows['bob']}").status_code == 404  # another agent's: as if absent
    assert ann.get(f"/callbacks/{rows['ann']}").status_code == 200

    before = store.get(rows["bob"])
    for action, form in (("call-now", {}), ("cancel", {"reason": "mine now"}), ("assign", {"agent": "201"})):
        assert post(ann, rows["bob"], action, **form).status_code == 403
    for action, form in (("reschedule", {"due_at": SOON}), ("cancel", {"reason": "x"})):
        assert post(ann, rows["ann"], action, **form).status_code == 403  # own, but supervisors' actions
    after = store.get(rows["bob"])
    assert (after.status, after.due_at, after.agent) == (before.status, before.due_at, before.agent)

    assert post(ann, rows["ann"], "call-now").status_code == 302
    cb = store.get(rows["ann"])
    assert cb.status == "pending" and cb.due_at <= datetime.now(UTC) and store.requested_by(cb) == "ann"


def test_each_action_changes_the_row_and_says_so(sue: Any, rows: dict[str, int]) -> None:
    wall = (datetime.now(ZoneInfo(TZ)) + timedelta(days=40)).replace(
        hour=10, minute=30, second=0, microsecond=0
    )
    resp = post(sue, rows["bob"], "reschedule", due_at=wall.strftime("%Y-%m-%dT%H:%M"))
    assert resp.status_code == 302 and resp.headers["Location"] == "/callbacks?status=pending"
    assert store.get(rows["bob"]).due_at == wall.astimezone(UTC)  # 10:30 in New York, not in UTC
    shown = f"{wall:%Y-%m-%d} 10:30 {wall.tzname()}"
    assert flashes(sue) == [f"Callback #{rows['bob']} to {NUMBERS['bob']} is due {shown}."]

    assert post(sue, rows["bob"], "assign", agent="203").status_code == 302
    assert store.get(rows["bob"]).agent == "203"
    assert flashes(sue) == [f"Callback #{rows['bob']} to {NUMBERS['bob']} is assigned to 203."]
    assert post(sue, rows["bob"], "assign", agent="").status_code == 302
    assert store.get(rows["bob"]).agent is None

    assert post(sue, rows["web"], "call-now").status_code == 302
    assert store.get(rows["web"]).due_at <= datetime.now(UTC)
    assert flashes(sue) == [
        f"Callback #{rows['web']} to {NUMBERS['web']} is due now: pbxlink places it within moments."
    ]

    assert post(sue, rows["web"], "cancel", reason="  asked  us\nnot to call ").status_code == 302
    cb = store.get(rows["web"])
    assert (cb.status, cb.reason) == ("cancelled", "asked us not to call (cancelled by sue)")
    assert flashes(sue) == [f"Callback #{rows['web']} to {NUMBERS['web']} is cancelled."]

    # The attempt under way may be reassigned, not rescheduled: the page says to wait for it.
    assert post(sue, rows["busy"], "reschedule", due_at=wall.strftime("%Y-%m-%dT%H:%M")).status_code == 302
    assert flashes(sue) == [
        f"Callback #{rows['busy']} is being called right now: try “reschedule” again once the attempt ends."
    ]


@pytest.mark.parametrize(
    ("action", "form"),
    [
        ("call-now", {}),
        ("reschedule", {"due_at": SOON}),
        ("assign", {"agent": "203"}),
        ("cancel", {"reason": "again"}),
    ],
)
def test_a_closed_callback_refuses_every_action(
    sue: Any, rows: dict[str, int], action: str, form: dict[str, str]
) -> None:
    for key, state in (("gone", "cancelled"), ("done", "done"), ("lost", "failed")):
        before = store.to_dict(store.get(rows[key]))
        assert post(sue, rows[key], action, **form).status_code == 302
        assert store.to_dict(store.get(rows[key])) == before
        expected = f"Callback #{rows[key]} to {NUMBERS[key]} is {state} already: it can no longer be changed."
        assert flashes(sue) == [expected]
    assert post(sue, 9999, action, **form).status_code == 302
    assert flashes(sue) == ["Callback #9999 does not exist."]


@pytest.mark.parametrize(
    ("action", "form", "message"),
    [
        (
            "reschedule",
            {"due_at": "tomorrow"},
            "“tomorrow” is not a date and time; give one as YYYY-MM-DD HH:MM.",
        ),
        ("reschedule", {"due_at": ""}, "“nothing” is not a date and time; give one as YYYY-MM-DD HH:MM."),
        ("reschedule", {"due_at": "2030-02-30T10:00"}, "2030-02-30T10:00 is not a date that exists."),
        (
            "reschedule",
            {"due_at": "2020-01-15T10:30"},
            "2020-01-15 10:30 has passed; use “Call now” to call at once.",
        ),
        ("reschedule", {"due_at": "2099-01-15T10:30"}, "2099-01-15 10:30 is more than a year ahead."),
        ("assign", {"agent": "201; DROP"}, "an agent is an extension such as 201."),
        ("cancel", {"reason": "  \n "}, "say why (the reason is kept with it)."),
    ],
)
def test_a_bad_value_is_refused_with_a_clear_message(
    sue: Any, rows: dict[str, int], action: str, form: dict[str, str], message: str
) -> None:
    before = store.to_dict(store.get(rows["bob"]))
    assert post(sue, rows["bob"], action, **form).status_code == 302
    assert store.to_dict(store.get(rows["bob"])) == before
    (shown,) = flashes(sue)
    verb = {"reschedule": "rescheduled", "assign": "assigned", "cancel": "cancelled"}[action]
    assert shown == f"Callback #{rows['bob']} was not {verb}: {message}".replace('"', "&#34;")


def test_a_form_without_its_csrf_token_is_refused(sue: Any, rows: dict[str, int]) -> None:
    resp = sue.post(f"/callbacks/{rows['bob']}/cancel", data={"reason": "forged"})
    assert resp.status_code == 400 and "reload the page" in resp.get_data(as_text=True)
    assert store.get(rows["bob"]).status == "pending"


def test_it_goes_back_to_the_page_it_came_from_and_nowhere_else(sue: Any, rows: dict[str, int]) -> None:
    token = csrf_token(sue, "/callbacks")
    for target, lands in (
        (f"/callbacks/{rows['bob']}", f"/callbacks/{rows['bob']}"),
        ("/callbacks?status=failed&page=2", "/callbacks?status=failed&page=2"),
        ("//evil.example/callbacks", "/callbacks"),
        ("/admin/deliveries/", "/callbacks"),
    ):
        resp = sue.post(f"/callbacks/{rows['bob']}/call-now", data={"csrf_token": token, "next": target})
        assert resp.headers["Location"] == lands


def test_the_waiting_count_is_the_logged_in_agents(
    app: Flask, ann: Any, sue: Any, rows: dict[str, int]
) -> None:
    assert ann.get("/callbacks/waiting").get_json() == {
        "waiting": 1
    }  # pending 201's; not the done or cancelled
    both = signed_in(app, "bob", extension="202,201")
    assert both.get("/callbacks/waiting").get_json() == {"waiting": 3}  # +202's pending and in progress
    assert sue.get("/callbacks/waiting").get_json() == {"waiting": 0}  # no extension of her own
    resp = app.test_client().get("/callbacks/waiting")
    assert resp.status_code == 401 and resp.get_json() == {"error": "login required"}


def test_the_json_api_lists_by_status_for_whom_may_see(app: Flask, rows: dict[str, int]) -> None:
    client = app.test_client()
    resp = client.get("/api/v1/callbacks?status=pending&per_page=2", headers=bearer("supervisor"))
    body = resp.get_json()
    assert resp.status_code == 200 and body["total"] == 3 and len(body["callbacks"]) == 2
    assert body["counts"] == {"pending": 3, "in_progress": 1, "done": 1, "failed": 1, "cancelled": 1}
    assert body["next"].endswith("/api/v1/callbacks?status=pending&per_page=2&page=2")
    second = client.get(
        "/api/v1/callbacks?status=pending&per_page=2&page=2", headers=bearer("supervisor", name="b")
    )
    listed = [c["id"] for c in body["callbacks"] + second.get_json()["callbacks"]]
    assert listed == [rows["web"], rows["bob"], rows["ann"]]  # newest first
    named = {
        c["number"]: c
        for c in client.get("/api/v1/callbacks", headers=bearer("admin")).get_json()["callbacks"]
    }
    assert named[NUMBERS["ann"]]["name"] == EVIL and named[NUMBERS["ann"]]["due_at"].endswith("Z")

    mine = client.get("/api/v1/callbacks", headers=bearer("agent", "201")).get_json()
    assert {c["number"] for c in mine["callbacks"]} == {NUMBERS[k] for k in ("ann", "done", "gone")}
    assert mine["counts"]["pending"] == 1

    assert client.get("/api/v1/callbacks?status=nope", headers=bearer("admin", name="c")).status_code == 400
    assert client.get("/api/v1/callbacks").status_code == 401
    assert client.post("/api/v1/callbacks", headers=bearer("admin", name="d")).status_code == 405
