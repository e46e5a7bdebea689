"""The calls history page and its CSV export through Flask's test client, over a real SQLite call log:
each filter, what each role finds, paging, the export (every field, formulas neutralised, the same
filter, streamed, audited), and the date filter taken in the server's own time zone."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pbxlink.web import call_history, call_page, create_app, openapi

from pbxlink.domain.calls import RECORD_FIELDS, CallRecord, Transfer
from pbxlink.storage.calls import save_call
from pbxlink.storage.models import AuditEntry, Call
from pbxlink.storage.users import create_user
from tests.unit.test_web_api import config, login, record  # noqa: F401  (the config fixture)

FORMULA = "=cmd|' /C calc'!A0"
DAY = datetime(2026, 1, 10, tzinfo=UTC)


def call(
    call_id: str, started: datetime, agents: tuple[str, ...] = (), caller: str = "+15550000000", **changes
) -> CallRecord:
    """An inbound call to 100 that `agents` answered (else missed, no answer), with `changes` made."""
    return replace(record(call_id, started, agents, caller=caller), **changes)


def wired(app: Flask) -> Flask:
    """The app with this part's blueprints, as the lead wires them in create_app (once only)."""
    for bp in (call_history.bp, call_page.bp, openapi.bp, openapi.api_bp):
        if bp.name not in app.blueprints:
            app.register_blueprint(bp)
    return app


@pytest.fixture
def app(config) -> Flask:  # noqa: F811
    for name, role, ext in (("sue", "supervisor", None), ("ann", "agent", "201"), ("zed", "agent", None)):
        create_user(name, "long enough", role=role, extension=ext)
    return wired(create_app(config))


def as_user(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


@pytest.fixture
def calls(config) -> dict[str, int]:  # noqa: F811
    """Five calls: A answered by 201 in support; B missed (abandoned) in sales; C 202 then 201, on pbx
    "branch"; D outbound by 203; E internal, its caller name a spreadsheet formula."""
    blind = [Transfer("202", "201", "blind")]
    return {
        "A": save_call(call("A", DAY.replace(hour=9), ("201",), "+15551230001", queue="support")),
        "B": save_call(
            call(
                "B", DAY.replace(day=11, hour=12), (), "+15551230002", queue="sales", miss_reason="abandoned"
            )
        ),
        "C": save_call(call("C", DAY.replace(day=12, hour=8), ("202", "201"), pbx="branch", transfers=blind)),
        "D": save_call(call("D", DAY.replace(day=12, hour=20), ("203",), "100", direction="outbound")),
        "E": save_call(
            call("E", DAY.replace(day=13, hour=7), ("201",), "200", direction="internal", caller_name=FORMULA)
        ),
    }


def listed(resp) -> list[str]:
    """The call ids (PBX call ids) the history lists, in its order."""
    assert resp.status_code == 200, resp.get_data(as_text=True)
    rows = re.findall(r'href="/calls/(\d+)"', resp.get_data(as_text=True))
    by_id = {c.id: c.call_id for c in Call.select()}
    return [by_id[int(i)] for i in rows]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["E", "D", "C", "B", "A"]),  # newest first
        ({"since": "2026-01-12"}, ["E", "D", "C"]),
        ({"until": "2026-01-11"}, ["B", "A"]),  # the whole "to" day
        ({"since": "2026-01-11", "until": "2026-01-12"}, ["D", "C", "B"]),
        ({"number": "(555) 123-0002"}, ["B"]),  # however written
        ({"agent": "201"}, ["E", "C", "A"]),  # C was transferred to 201
        ({"queue": "sales"}, ["B"]),
        ({"direction": "outbound"}, ["D"]),
        ({"disposition": "missed"}, ["B"]),
        ({"miss_reason": "abandoned"}, ["B"]),
        ({"pbx": "branch"}, ["C"]),
        ({"agent": "201", "pbx": "main", "since": "2026-01-13"}, ["E"]),
    ],
)
def test_each_filter_finds_its_calls(app, calls, query, expected) -> None:
    assert listed(as_user(app, "sue").get("/calls/history", query_string=query)) == expected


def test_an_agent_finds_only_the_calls_they_talked_on(app, calls) -> None:
    ann = as_user(app, "ann")
    assert listed(ann.get("/calls/history")) == ["E", "C", "A"]
    assert listed(ann.get("/calls/history", query_string={"agent": "203"})) == []  # not theirs: none
    assert listed(ann.get("/calls/history", query_string={"pbx": "branch"})) == ["C"]
    page = as_user(app, "zed").get("/calls/history")
    assert listed(page) == []
    assert "no extension" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"since": "2026-01-12", "until": "2026-01-11"}, "before the “from” day"),
        ({"since": "12/01/2026"}, "“from” day must be a date"),
        ({"direction": "sideways"}, "Direction must be one of"),
        ({"miss_reason": "bored"}, "Miss reason must be one of"),
    ],
)
def test_a_bad_filter_is_400_saying_why(app, calls, query, message) -> None:
    resp = as_user(app, "sue").get("/calls/history", query_string=query)
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)
    assert as_user(app, "sue").get("/calls/history.csv", query_string=query).status_code == 400


def test_pages_of_fifty_keep_the_filter_in_their_links(app, config) -> None:  # noqa: F811
    for n in range(120):
        save_call(call(f"P{n:03d}", DAY + timedelta(minutes=n), ("201",), queue="support"))
    save_call(call("other", DAY, ("201",), queue="sales"))
    sue = as_user(app, "sue")
    first = sue.get("/calls/history", query_string={"queue": "support"})
    assert listed(first)[:2] == ["P119", "P118"] and len(listed(first)) == 50
    body = first.get_data(as_text=True)
    assert "page 1 of 3 (120 in all)" in body
    assert re.search(r'href="/calls/history\?page=2&amp;queue=support"', body), body
    last = sue.get("/calls/history", query_string={"queue": "support", "page": 3})
    assert listed(last)[-1] == "P000" and len(listed(last)) == 20
    assert sue.get("/calls/history", query_string={"page": 0}).status_code == 400


def rows_of(resp) -> list[dict[str, str]]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def test_the_export_has_every_field_neutralises_formulas_and_is_an_attachment(app, calls) -> None:
    resp = as_user(app, "sue").get("/calls/history.csv")
    assert resp.is_streamed
    assert resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="calls.csv"'
    header = next(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert header == ["id", *RECORD_FIELDS]
    rows = {r["call_id"]: r for r in rows_of(resp)}
    assert list(rows) == ["E", "D", "C", "B", "A"]
    assert rows["E"]["caller_name"] == "'" + FORMULA  # a spreadsheet shows it as text
    assert rows["A"]["caller"] == "+15551230001"  # a plain number stays usable
    assert rows["C"]["agents"] == '["202","201"]'
    assert rows["C"]["transfers"] == '[{"from":"202","to":"201","kind":"blind"}]'
    assert (rows["B"]["miss_reason"], rows["B"]["ended_at"]) == ("abandoned", "2026-01-11T12:01:00.000Z")
    [entry] = AuditEntry.select().where(AuditEntry.action == "export")
    assert (entry.user, entry.target) == ("sue", "calls")


def test_the_export_takes_the_same_filter_and_the_agents_scope(app, calls) -> None:
    sue = as_user(app, "sue")
    assert [r["call_id"] for r in rows_of(sue.get("/calls/history.csv?queue=sales"))] == ["B"]
    assert [r["call_id"] for r in rows_of(sue.get("/calls/history.csv?pbx=main&agent=201"))] == ["E", "A"]
    ann = as_user(app, "ann")
    assert [r["call_id"] for r in rows_of(ann.get("/calls/history.csv"))] == ["E", "C", "A"]
    assert rows_of(ann.get("/calls/history.csv?agent=203")) == []
    page = sue.get("/calls/history?queue=sales&since=2026-01-01").get_data(as_text=True)
    assert 'href="/calls/history.csv?since=2026-01-01&amp;queue=sales"' in page


def test_the_export_streams_more_than_one_batch(app, config) -> None:  # noqa: F811
    for n in range(1203):  # iter_calls fetches 500 at a time, the writer flushes every 200
        save_call(call(f"X{n:04d}", DAY + timedelta(seconds=n), ("201",)))
    ids = [r["call_id"] for r in rows_of(as_user(app, "sue").get("/calls/history.csv"))]
    assert len(ids) == len(set(ids)) == 1203
    assert (ids[0], ids[-1]) == ("X1202", "X0000")


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Sets the server's time zone (TZ) for one test and puts the old one back after it."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("tz", "day", "expected"),
    [
        ("UTC", "2026-01-10", ["A"]),
        ("UTC", "2026-01-11", ["B", "L"]),
        ("America/New_York", "2026-01-10", ["L", "A"]),  # 03:30 UTC on the 11th is 22:30 on the 10th there
        ("America/New_York", "2026-01-11", ["B"]),
        ("Asia/Tokyo", "2026-01-11", ["B", "L"]),  # 03:30 UTC is 12:30 there, B's 12:00 UTC 21:00
        ("Asia/Tokyo", "2026-01-10", ["A"]),
    ],
)
def test_the_day_filter_is_the_servers_local_day(app, calls, zone, tz, day, expected) -> None:
    save_call(call("L", datetime(2026, 1, 11, 3, 30, tzinfo=UTC), ("201",)))
    zone(tz)
    query = {"since": day, "until": day, "pbx": "main", "direction": "inbound"}
    sue = as_user(app, "sue")
    assert listed(sue.get("/calls/history", query_string=query)) == expected
    assert [r["call_id"] for r in rows_of(sue.get("/calls/history.csv", query_string=query))] == expected


def test_the_history_needs_a_login(app, calls) -> None:
    for url in ("/calls/history", "/calls/history.csv"):
        resp = app.test_client().get(url)
        assert resp.status_code == 302
        assert resp.headers["Location"].startswith("/login?next=")
