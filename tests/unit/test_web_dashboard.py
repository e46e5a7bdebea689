"""The dashboard through Flask's test client over a real SQLite database: who may see it, the targets
form (validation, CSRF, audit), the snapshot JSON and its SSE stream fed by a bus."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pbxlink.web import create_app

from pbxlink.config import Config
from pbxlink.domain.calls import CallAnswered, CallEnded, CallRecord, CallRinging, CallStarted
from pbxlink.storage import kpi_targets
from pbxlink.storage.calls import save_call
from pbxlink.storage.models import AuditEntry
from pbxlink.storage.users import create_user
from tests.unit import test_web_api
from tests.unit.test_web_api import FakeBus, csrf_token, login

config = test_web_api.config  # the fixture: a migrated SQLite database and its Config
GOOD = {"service_level": "90", "service_seconds": "15", "abandon_rate": "3", "min_wait": "4"}


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def app(config: Config, bus: FakeBus, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("TZ", "UTC")  # the site's zone: the server's
    app = create_app(config, bus)
    app.config.update(DASHBOARD_PUSH_SECONDS=0.05, SSE_HEARTBEAT_SECONDS=0.2)
    create_user("ann", test_web_api.PASSWORD, role="agent", extension="201")
    create_user("sue", test_web_api.PASSWORD, role="supervisor", extension="300")
    create_user("ada", test_web_api.PASSWORD, role="admin")
    create_user("bob", test_web_api.PASSWORD, role="agent", extension="202,203")
    return app


def client_as(app: Flask, username: str | None) -> FlaskClient:
    client = app.test_client()
    if username:
        login(client, username)
    return client


def queue_call(n: int, wait: float, answered: bool = True, queue: str = "support") -> CallRecord:
    started = datetime.now(UTC).replace(hour=0, minute=0, second=0) + timedelta(minutes=n)
    rec = CallRecord("main", f"q{n}", "inbound", started, caller=f"+1555000{n:04d}", queue=queue)
    rec.ended_at, rec.wait_seconds = started + timedelta(seconds=60), wait
    rec.disposition = "answered" if answered else "missed"
    if answered:
        rec.answered_at, rec.agent, rec.agents, rec.talk_seconds = started, "201", ["201"], 40.0
    else:
        rec.miss_reason = "abandoned"
    return rec


def test_supervisors_and_admins_see_it_agents_get_403_strangers_log_in(app: Flask) -> None:
    anonymous = client_as(app, None)
    assert anonymous.get("/dashboard").status_code == 302
    assert anonymous.get("/dashboard/snapshot").get_json() == {"error": "login required"}
    assert anonymous.get("/dashboard/stream").status_code == 401
    agent = client_as(app, "ann")
    assert agent.get("/dashboard").status_code == 403
    assert agent.get("/dashboard/snapshot").status_code == 403
    assert agent.get("/dashboard/stream").status_code == 403
    supervisor = client_as(app, "sue").get("/dashboard")
    assert supervisor.status_code == 200
    page = supervisor.get_data(as_text=True)
    assert 'id="dashboard"' in page and "Save targets" not in page  # the targets form is the admin's
    assert "vendor/uplot/uPlot.iife.min.js" in page and "<script>" not in page and "style=" not in page
    assert "Save targets" in client_as(app, "ada").get("/dashboard").get_data(as_text=True)


def test_an_admin_changes_the_targets_and_the_audit_log_keeps_before_and_after(app: Flask) -> None:
    admin = client_as(app, "ada")
    resp = admin.post("/dashboard/targets", data={**GOOD, "csrf_token": csrf_token(admin, "/dashboard")})
    assert resp.status_code == 200 and "Targets saved." in resp.get_data(as_text=True)
    assert kpi_targets.load() == kpi_targets.Targets(90, 15, 3, 4)
    (entry,) = AuditEntry.select().where(AuditEntry.action == "kpi_targets")
    detail = json.loads(entry.detail)
    assert entry.user == "ada" and entry.target == "setting:kpi_targets"
    assert detail["before"] == {
        "service_level": 80.0,
        "service_seconds": 20.0,
        "abandon_rate": 5.0,
        "min_wait": 5.0,
    }
    assert detail["after"] == {
        "service_level": 90.0,
        "service_seconds": 15.0,
        "abandon_rate": 3.0,
        "min_wait": 4.0,
    }
    again = admin.post("/dashboard/targets", data={**GOOD, "csrf_token": csrf_token(admin, "/dashboard")})
    assert "nothing changed" in again.get_data(as_text=True)
    assert AuditEntry.select().where(AuditEntry.action == "kpi_targets").count() == 1


def test_bad_targets_are_refused_field_by_field_and_nothing_is_saved(app: Flask) -> None:
    admin = client_as(app, "ada")
    bad = {**GOOD, "service_level": "180", "service_seconds": "soon", "abandon_rate": "nan"}
    resp = admin.post("/dashboard/targets", data={**bad, "csrf_token": csrf_token(admin, "/dashboard")})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "Service level target: must be between 1 and 100 %, not 180." in page
    assert "Service level threshold: enter a number, like 20." in page
    assert "Abandon rate target: must be between 0.1 and 100 %, not nan." in page
    assert 'id="t-service_level" name="service_level" value="180"' in page  # what was typed stays
    assert 'aria-invalid="true" aria-describedby="t-service_level-error"' in page
    assert kpi_targets.load() == kpi_targets.Targets()
    assert admin.post("/dashboard/targets", data=GOOD).status_code == 400  # no CSRF token
    supervisor = client_as(app, "sue")
    token = csrf_token(supervisor, "/dashboard")
    assert supervisor.post("/dashboard/targets", data={**GOOD, "csrf_token": token}).status_code == 403
    assert AuditEntry.select().count() == 0


def test_the_snapshot_has_today_per_queue_against_the_targets(app: Flask) -> None:
    for n, (wait, answered) in enumerate(
        [(5.0, True), (20.0, True), (40.0, True), (30.0, False), (2.0, False)]
    ):
        save_call(queue_call(n, wait, answered))
    snap = client_as(app, "sue").get("/dashboard/snapshot").get_json()
    (support,) = snap["queues"]
    assert support["queue"] == "support" and snap["total"]["offered"] == 5
    assert (support["offered"], support["answered"], support["abandoned"], support["short_abandons"]) == (
        5,
        3,
        2,
        1,
    )
    assert support["service_level"] == 0.5 and support["service_level_met"] is False  # 2 of 4
    assert support["abandon_rate"] == 0.25 and support["abandon_rate_met"] is False
    assert support["asa"] == pytest.approx(65 / 3) and support["aht"] == 40.0
    assert snap["timezone"] == "UTC" and len(snap["by_hour"]["t"]) == 24 and len(snap["by_day"]["t"]) == 30
    assert snap["by_hour"]["offered"][0] == 5 and snap["by_day"]["offered"][-1] == 5
    assert snap["by_day"]["abandoned"][-1] == 1  # short abandons are not drawn as abandons
    assert [a["username"] for a in snap["agents"]] == ["ann", "bob", "sue"]  # users with extensions
    assert {a["username"]: a["extensions"] for a in snap["agents"]}["bob"] == ["202", "203"]


def frames(resp: Any) -> Any:
    """The data frames of an SSE response, parsed, as they come (heartbeats skipped)."""
    for chunk in resp.response:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.startswith("data: "):
            yield json.loads(text[len("data: ") :])


def test_the_stream_pushes_a_snapshot_when_calls_move(app: Flask, bus: FakeBus) -> None:
    resp = client_as(app, "sue").get("/dashboard/stream")
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    stream = frames(resp)
    first = next(stream)
    assert first["in_progress"] == [] and first["total"]["offered"] == 0
    assert {a["username"]: a["state"] for a in first["agents"]} == {
        "ann": "idle",
        "bob": "idle",
        "sue": "idle",
    }

    rec = CallRecord("main", "live-1", "inbound", datetime.now(UTC), caller="+15550001111", queue="support")
    now = datetime.now(UTC)
    bus.publish(CallStarted(at=now, call=rec.copy()))
    bus.publish(CallRinging(at=now, call=rec.copy(), agent="203"))
    ringing = next(stream)
    assert [(c["call_id"], c["state"], c["agents"]) for c in ringing["in_progress"]] == [
        ("live-1", "ringing", ["203"])
    ]
    assert {a["username"]: a["state"] for a in ringing["agents"]}["bob"] == "ringing"

    rec.answered_at, rec.agent, rec.agents = now, "203", ["203"]
    bus.publish(CallAnswered(at=now, call=rec.copy(), agent="203"))
    talking = next(stream)
    bob = {a["username"]: a for a in talking["agents"]}["bob"]
    assert (bob["state"], bob["call"]["caller"]) == ("talking", "+15550001111")

    rec.ended_at, rec.disposition, rec.wait_seconds, rec.talk_seconds = now, "answered", 3.0, 1.0
    save_call(rec)  # the call log's write, which the stream's settling push picks up
    bus.publish(CallEnded(at=now, call=rec.copy()))
    ended = next(stream)
    if ended["total"]["offered"] == 0:
        ended = next(stream)
    assert ended["in_progress"] == [] and ended["total"]["offered"] == 1
    assert ended["queues"][0]["service_level_met"] is True
    resp.close()
    assert bus.handlers  # the dashboard's one subscription stays for the app's life


def test_without_a_bus_the_page_says_live_updates_are_off(config: Config) -> None:
    app = create_app(config)
    create_user("sue", test_web_api.PASSWORD, role="supervisor")
    client = client_as(app, "sue")
    assert "Live updates are off" in client.get("/dashboard").get_data(as_text=True)
    assert client.get("/dashboard/stream").status_code == 503
    assert client.get("/dashboard/snapshot").status_code == 200
