"""The recording index on real databases (SQLite, and PostgreSQL when installed): upsert, search, audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pbxlink.domain.phone import numbers
from pbxlink.storage import recordings
from pbxlink.storage.models import AuditEntry, Recording
from pbxlink.storage.recordings import RecordingFilter
from tests.unit.test_storage import db, pg_server  # noqa: F401  (fixtures: each test runs on both)

pytestmark = pytest.mark.usefixtures("db")

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def add(name: str, minutes: int = 0, **fields: object) -> Recording:
    return recordings.upsert(f"/rec/{name}", "/rec", started_at=T0 + timedelta(minutes=minutes), **fields)


def names(f: RecordingFilter, limit: int = 50, offset: int = 0) -> list[str]:
    rows, _ = recordings.search(f, limit, offset)
    return [r.path.removeprefix("/rec/") for r in rows]


def test_upsert_by_path_keeps_one_row_and_changes_only_the_fields_given() -> None:
    first = add("a.wav", size=10, sha256="aa", caller="(202) 555-0143", agent="201")
    again = recordings.upsert("/rec/a.wav", "/rec", size=20, pbx="main", call_id="c1")
    assert again.id == first.id
    assert Recording.select().count() == 1
    assert (again.size, again.sha256, again.agent, again.pbx, again.call_id) == (
        20,
        "aa",
        "201",
        "main",
        "c1",
    )
    assert (again.caller_e164, again.caller_tail) == ("+12025550143", numbers().tail("+12025550143"))
    assert again.started_at == T0  # kept; read back aware, in UTC
    assert again.status == "present"


def test_upsert_many_inserts_and_updates_without_losing_a_call_or_a_hold() -> None:
    held = add("held.wav", pbx="main", call_id="c1", agent="201", size=1)
    held.legal_hold, held.status, held.deleted_by = True, "deleted", "policy 90d"
    held.save()
    recordings.upsert_many(
        [
            {
                "path": "/rec/held.wav",
                "folder": "/rec",
                "started_at": T0,
                "size": 2,
                "status": "present",
                "agent": None,
            },
            *(
                {
                    "path": f"/rec/{i}.wav",
                    "folder": "/rec",
                    "started_at": T0,
                    "size": i,
                    "caller": "2025550143",
                }
                for i in range(250)
            ),
        ]
    )
    assert Recording.select().count() == 251
    again = recordings.by_path("/rec/held.wav")
    assert again is not None
    assert (again.size, again.status, again.pbx, again.call_id, again.agent) == (
        2,
        "present",
        "main",
        "c1",
        "201",
    )
    assert (again.legal_hold, again.deleted_by, again.indexed_at) == (True, None, held.indexed_at)
    new = recordings.by_path("/rec/249.wav")
    assert new is not None
    assert (new.size, new.status, new.caller_e164, new.legal_hold, new.source) == (
        249,
        "present",
        "+12025550143",
        False,
        "scan",
    )


def test_new_row_without_a_start_gets_now_and_long_values_are_cut() -> None:
    row = recordings.upsert("/rec/x.wav", "/rec", queue="q" * 300)
    assert abs(row.started_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert row.queue == "q" * 128


def test_get_by_path_and_for_call() -> None:
    a = add("a.wav", 1, pbx="main", call_id="c1")
    b = add("b.wav", 0, pbx="main", call_id="c1")
    add("c.wav", pbx="other", call_id="c1")
    assert recordings.get(a.id) == a
    assert recordings.get(999) is None
    assert recordings.by_path("/rec/b.wav") == b
    assert recordings.by_paths(["/rec/a.wav", "/rec/none.wav"]) == {"/rec/a.wav": a}
    assert [r.id for r in recordings.for_call("main", "c1")] == [b.id, a.id]  # in the call's order
    assert recordings.for_call("main", "nope") == []


def test_search_by_number_however_written_newest_first() -> None:
    add("in.wav", 0, caller="+1 202 555 0143", callee="201")
    add("out.wav", 5, caller="201", callee="2025550143")
    add("other.wav", 10, caller="+12025550199")
    add("local.wav", 15, caller="5550143")  # no area code: only its last digits are known
    for written in ("2025550143", "+1 (202) 555-0143", "001 202 555 0143"):
        assert names(RecordingFilter(number=written)) == ["out.wav", "in.wav"]
    assert names(RecordingFilter(number="555-0143")) == ["local.wav", "out.wav", "in.wav"]
    assert names(RecordingFilter(number="201")) == []  # an extension: search by agent instead
    rows, total = recordings.search(RecordingFilter(), 2, 1)
    assert ([r.path for r in rows], total) == (["/rec/other.wav", "/rec/out.wav"], 4)


def test_search_by_agent_agents_queue_disposition() -> None:
    add("a.wav", 0, agent="201", queue="sales", disposition="answered")
    add("b.wav", 1, agent="202", queue="support", disposition="answered")
    add("c.wav", 2, agent="203", queue="sales", disposition="missed")
    add("d.wav", 3)
    assert names(RecordingFilter(agent="202")) == ["b.wav"]
    assert names(RecordingFilter(agents=("201", "203"))) == ["c.wav", "a.wav"]
    assert names(RecordingFilter(agents=())) == []  # a user with no extension hears nothing
    assert names(RecordingFilter(queue="sales")) == ["c.wav", "a.wav"]
    assert names(RecordingFilter(queue="sales", disposition="answered")) == ["a.wav"]


def test_search_by_date_range_duration_and_status() -> None:
    add("a.wav", 0, duration=5.0)
    add("b.wav", 60, duration=65.0)
    add("c.wav", 120, duration=None)
    gone = add("d.wav", 90, duration=30.0)
    recordings.mark(gone.id, "missing")
    since, until = T0 + timedelta(minutes=60), T0 + timedelta(minutes=120)
    assert names(RecordingFilter(since=since, until=until)) == ["b.wav"]  # until is exclusive
    assert names(RecordingFilter(since=since.replace(tzinfo=None))) == ["c.wav", "b.wav"]
    assert names(RecordingFilter(min_duration=10)) == ["b.wav"]
    assert names(RecordingFilter(max_duration=65)) == ["b.wav", "a.wav"]
    assert names(RecordingFilter(min_duration=1, max_duration=10)) == ["a.wav"]
    assert names(RecordingFilter(status="missing")) == ["d.wav"]
    assert names(RecordingFilter(status=None)) == ["c.wav", "d.wav", "b.wav", "a.wav"]


def test_mark_and_iter_on_disk() -> None:
    rows = [add(f"{i}.wav", i) for i in range(5)]
    recordings.upsert("/elsewhere/x.wav", "/elsewhere", size=1)
    recordings.mark(rows[1].id, "missing", checked_at=T0)
    recordings.mark(rows[2].id, "changed", sha256="bb", callee="+12025550143")
    changed = recordings.get(rows[2].id)
    assert changed is not None
    assert (changed.status, changed.sha256, changed.callee_e164) == ("changed", "bb", "+12025550143")
    on_disk = list(recordings.iter_on_disk("/rec", batch=2))
    assert [r.id for r in on_disk] == [rows[i].id for i in (0, 2, 3, 4)]


def test_audit_writes_who_what_and_detail() -> None:
    recordings.audit("alice", "listen", "recording:7", {"range": "bytes=0-99"})
    recordings.audit("system", "delete", "recording:8")
    entries = list(AuditEntry.select().order_by(AuditEntry.id))
    assert [(e.user, e.action, e.target) for e in entries] == [
        ("alice", "listen", "recording:7"),
        ("system", "delete", "recording:8"),
    ]
    assert json.loads(entries[0].detail or "null") == {"range": "bytes=0-99"}
    assert entries[1].detail is None
    assert entries[0].at is not None
