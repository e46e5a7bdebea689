"""The panel and the JSON API through Flask's test client, over a real SQLite database."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from argon2 import PasswordHasher
from pbxlink.web import create_app

from pbxlink.config import Config, DatabaseConfig, WebConfig
from pbxlink.domain.calls import RECORD_FIELDS, CallEvent, CallRecord, CallStarted
from pbxlink.domain.ports import Handler
from pbxlink.storage import users
from pbxlink.storage.calls import save_call
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import Setting
from pbxlink.storage.users import create_token, create_user

PASSWORD = "long enough"


class FakeBus:
    """Delivers inline and records who listens."""

    def __init__(self) -> None:
        self.handlers: list[Handler] = []

    def publish(self, event: CallEvent) -> None:
        for handler in list(self.handlers):
            handler(event)

    def subscribe(self, name: str, handler: Handler) -> None:
        self.handlers.append(handler)

    def unsubscribe(self, handler: Handler) -> None:
        self.handlers.remove(handler)

    def close(self) -> None:
        self.handlers.clear()


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    url = f"sqlite:///{tmp_path}/pbxlink.db"
    database = connect(url)
    migrate(database)
    yield Config(
        path=None, database=DatabaseConfig(url), web=WebConfig(secret_key="s" * 64), pbx=(), data_dir=tmp_path
    )
    database.close()


@pytest.fixture
def app(config):
    return create_app(config)


@pytest.fixture
def client(app):
    return app.test_client()


def record(call_id: str, started: datetime, agents: tuple[str, ...] = (), **kw) -> CallRecord:
    answered = started + timedelta(seconds=5) if agents else None
    return CallRecord(
        pbx="main",
        call_id=call_id,
        direction="inbound",
        started_at=started,
        caller=kw.pop("caller", "+15550000000"),
        callee="100",
        agent=agents[0] if agents else None,
        agents=list(agents),
        answered_at=answered,
        ended_at=started + timedelta(seconds=60),
        disposition="answered" if agents else "missed",
        miss_reason=None if agents else "no_answer",
        hangup_by="customer",
        **kw,
    )


@pytest.fixture
def calls(config) -> dict[str, int]:
    """Four calls on three days: A by 201; B missed; C by 202 then transferred to 201; D by 203."""
    day = datetime(2026, 1, 10, tzinfo=UTC)
    return {
        "A": save_call(record("A", day.replace(hour=9), ("201",), caller="+15551230001")),
        "B": save_call(record("B", day.replace(day=11, hour=12), caller="+15551230002")),
        "C": save_call(record("C", day.replace(day=12, hour=8), ("202", "201"), caller="+15551230003")),
        "D": save_call(record("D", day.replace(day=12, hour=20), ("203",), caller="+15551230004")),
    }


def bearer(role: str = "supervisor", extension: str | None = None, name: str = "api") -> dict[str, str]:
    token = create_token(create_user(f"{name}-{role}", PASSWORD, role=role, extension=extension), "test")
    return {"Authorization": f"Bearer {token}"}


def csrf_token(client, url: str = "/login") -> str:
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def login(client, username: str, password: str = PASSWORD, url: str = "/login", **kw):
    return client.post(
        url, data={"username": username, "password": password, "csrf_token": csrf_token(client)}, **kw
    )


def ids(resp) -> set[str]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return {c["call_id"] for c in resp.get_json()["calls"]}


# --- the JSON API --------------------------------------------------------------------------------


def test_healthz_needs_no_login(client) -> None:
    resp = client.get("/healthz")
    assert (resp.status_code, resp.get_json()) == (200, {"status": "ok"})


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer ", "Basic dXNlcjpwYXNz"])
def test_api_without_a_valid_token_is_401_json(client, calls, header) -> None:
    resp = client.get("/api/v1/calls", headers={"Authorization": header} if header else {})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert set(resp.get_json()) == {"error"}


def test_api_with_a_token_lists_calls_with_every_record_field(client, calls) -> None:
    resp = client.get("/api/v1/calls", headers=bearer())
    body = resp.get_json()
    assert resp.status_code == 200
    assert (body["total"], body["page"], body["per_page"], body["next"]) == (4, 1, 50, None)
    assert {c["call_id"] for c in body["calls"]} == {"A", "B", "C", "D"}
    assert set(body["calls"][0]) == {*RECORD_FIELDS, "id"}


def test_one_call_by_id_and_404_json_for_an_unknown_one(client, calls) -> None:
    auth = bearer()
    call = client.get(f"/api/v1/calls/{calls['C']}", headers=auth).get_json()
    assert (call["id"], call["call_id"], call["agents"]) == (calls["C"], "C", ["202", "201"])
    missing = client.get("/api/v1/calls/999999", headers=auth)
    assert missing.status_code == 404
    assert "999999" in missing.get_json()["error"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"since": "2026-01-11"}, {"B", "C", "D"}),
        ({"until": "2026-01-11"}, {"A", "B"}),  # a bare date includes the whole day
        ({"since": "2026-01-12T10:00:00Z"}, {"D"}),
        ({"since": "2026-01-12T10:00:00+02:00"}, {"C", "D"}),  # 08:00 UTC
        ({"since": "2026-01-12T10:00:00"}, {"D"}),  # naive is UTC
        ({"since": "2026-01-11", "until": "2026-01-12T12:00Z"}, {"B", "C"}),
        ({"number": "+15551230002"}, {"B"}),
        ({"agent": "201"}, {"A", "C"}),  # C was transferred to 201
        ({"disposition": "missed"}, {"B"}),
        ({"disposition": "answered", "agent": "203"}, {"D"}),
    ],
)
def test_filters(client, calls, query, expected) -> None:
    assert ids(client.get("/api/v1/calls", query_string=query, headers=bearer())) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("since", "yesterday"),
        ("until", "2026-13-01"),
        ("disposition", "maybe"),
        ("page", "0"),
        ("page", "two"),
        ("per_page", "201"),
        ("per_page", "-1"),
    ],
)
def test_a_bad_filter_value_is_400_naming_the_parameter(client, calls, name, value) -> None:
    resp = client.get("/api/v1/calls", query_string={name: value}, headers=bearer())
    assert resp.status_code == 400
    assert resp.get_json()["error"].startswith(f"invalid {name}:")


def test_pagination_walks_every_call_once_following_next(client, calls) -> None:
    auth = bearer()
    seen: list[str] = []
    url: str | None = "/api/v1/calls?per_page=3&disposition=answered"
    pages = 0
    while url:
        body = client.get(url, headers=auth).get_json()
        assert body["total"] == 3 and body["per_page"] == 3
        seen += [c["call_id"] for c in body["calls"]]
        url = body["next"]
        pages += 1
    assert (pages, sorted(seen)) == (1, ["A", "C", "D"])

    first = client.get("/api/v1/calls?per_page=3", headers=auth).get_json()
    query = parse_qs(urlsplit(first["next"]).query)
    assert (query["page"], query["per_page"]) == (["2"], ["3"])
    second = client.get(first["next"], headers=auth).get_json()
    assert (second["page"], second["next"], len(second["calls"])) == (2, None, 1)
    assert {c["call_id"] for c in first["calls"] + second["calls"]} == {"A", "B", "C", "D"}


def test_an_agent_sees_only_the_calls_they_talked_on(client, calls) -> None:
    auth = bearer("agent", "201")
    assert ids(client.get("/api/v1/calls", headers=auth)) == {"A", "C"}
    assert ids(client.get("/api/v1/calls?agent=201", headers=auth)) == {"A", "C"}
    assert client.get("/api/v1/calls?agent=203", headers=auth).status_code == 403
    assert client.get(f"/api/v1/calls/{calls['C']}", headers=auth).status_code == 200
    assert client.get(f"/api/v1/calls/{calls['D']}", headers=auth).status_code == 404
    assert client.get(f"/api/v1/calls/{calls['B']}", headers=auth).status_code == 404

    no_extension = bearer("agent", None, name="new")
    assert client.get("/api/v1/calls", headers=no_extension).get_json()["total"] == 0


def test_an_agent_on_two_extensions_sees_the_calls_of_both(client, calls) -> None:
    auth = bearer("agent", "202,203", name="two")
    assert ids(client.get("/api/v1/calls", headers=auth)) == {"C", "D"}
    assert ids(client.get("/api/v1/calls?agent=203", headers=auth)) == {"D"}
    assert client.get("/api/v1/calls?agent=201", headers=auth).status_code == 403


def test_the_api_accepts_the_panels_login_session(client, calls) -> None:
    create_user("sam", PASSWORD, role="supervisor")
    login(client, "sam")
    assert ids(client.get("/api/v1/calls")) == {"A", "B", "C", "D"}
    # a wrong token is refused even with a good session
    assert client.get("/api/v1/calls", headers={"Authorization": "Bearer nope"}).status_code == 401


# --- logging in ---------------------------------------------------------------------------------


def test_login_post_without_csrf_token_is_rejected(client) -> None:
    create_user("ann", PASSWORD)
    resp = client.post("/login", data={"username": "ann", "password": PASSWORD})
    assert resp.status_code == 400
    assert client.get("/").status_code == 302  # still logged out


def test_login_sets_a_httponly_samesite_session_and_shows_the_page(client) -> None:
    create_user("ann", PASSWORD)
    resp = login(client, "ann")
    assert (resp.status_code, resp.headers["Location"]) == (302, "/")
    cookie = next(v for v in resp.headers.getlist("Set-Cookie") if v.startswith("pbxlink_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/")
    assert page.status_code == 200 and "Today's calls" in page.get_data(as_text=True)

    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert client.get("/").status_code == 302


def test_wrong_password_and_unknown_user_get_the_same_generic_message(client) -> None:
    create_user("ann", PASSWORD)
    for username, password in (("ann", "not the password"), ("nobody", PASSWORD)):
        resp = login(client, username, password)
        text = resp.get_data(as_text=True)
        assert resp.status_code == 200 and "Wrong username or password." in text
        assert password not in text


def test_logins_are_rate_limited_per_address(client, app) -> None:
    create_user("ann", PASSWORD)
    for _ in range(10):
        assert login(client, "ann", "guess guess").status_code == 200
    blocked = login(client, "ann")  # even the right password waits now
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= 300

    other = app.test_client()
    resp = login(other, "ann", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert resp.status_code == 302


def test_logins_are_rate_limited_per_user_across_addresses(client, app) -> None:
    create_user("ann", PASSWORD)
    create_user("bob", PASSWORD)
    for i in range(50):  # a guesser spread over many addresses
        resp = login(client, "Ann", "guess guess", environ_base={"REMOTE_ADDR": f"198.51.100.{i}"})
        assert resp.status_code == 200
    blocked = login(app.test_client(), "ann", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert blocked.status_code == 429 and "for this user" in blocked.get_data(as_text=True)
    assert 0 < int(blocked.headers["Retry-After"]) <= 900
    assert login(app.test_client(), "bob", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 302


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/api/v1/calls?per_page=5", "/api/v1/calls?per_page=5"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_redirects_only_to_local_paths(client, target, location) -> None:
    create_user("ann", PASSWORD)
    resp = login(client, "ann", url=f"/login?next={target}")
    assert resp.headers["Location"] == location


def test_a_logged_out_visit_is_sent_to_login_and_back(client) -> None:
    resp = client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/login?next=/"
    assert client.get("/calls/stream").status_code == 401


def test_changing_the_password_ends_existing_sessions(client) -> None:
    user = create_user("ann", PASSWORD)
    login(client, "ann")
    assert client.get("/").status_code == 200
    users.set_password(user, "a brand new one")
    assert client.get("/").status_code == 302


# --- the page, headers and the secret key ---------------------------------------------------------


def test_security_headers_on_every_kind_of_response(client, calls) -> None:
    for resp in (
        client.get("/login"),
        client.get("/healthz"),
        client.get("/api/v1/calls"),
        client.get("/nope"),
    ):
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "same-origin"
        assert resp.headers["X-Frame-Options"] == "DENY"


def test_pages_carry_no_inline_script(client) -> None:
    create_user("ann", PASSWORD)
    login(client, "ann")
    for page in (client.get("/").get_data(as_text=True), client.get("/login").get_data(as_text=True)):
        assert "<script>" not in page and " on" + "click=" not in page
    assert client.get("/static/live.js").status_code == 200


def test_the_page_lists_todays_calls_newest_first_and_agents_only_their_own(client, config) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    save_call(record("old", now - timedelta(days=2), ("201",)))
    save_call(record("early", now - timedelta(seconds=90), ("201",), caller_name="Early Bird"))
    save_call(record("late", now - timedelta(seconds=30), ("202",)))
    create_user("sue", PASSWORD, role="supervisor")
    create_user("al", PASSWORD, role="agent", extension="201")

    login(client, "sue")
    page = client.get("/").get_data(as_text=True)
    assert re.findall(r'data-call-id="([^"]+)"', page) == ["late", "early"]
    assert "Early Bird" in page and "answered" in page
    assert "Live updates are off" in page and "data-stream" not in page
    assert client.get("/calls/stream").status_code == 503

    other = client.application.test_client()
    login(other, "al")
    assert re.findall(r'data-call-id="([^"]+)"', other.get("/").get_data(as_text=True)) == ["early"]


def test_a_generated_secret_key_is_stored_once_and_never_shown(config) -> None:
    keyless = Config(path=None, database=config.database, web=WebConfig(), pbx=(), data_dir=config.data_dir)
    first = create_app(keyless)
    second = create_app(keyless)
    stored = Setting.get_by_id("web_secret_key").value
    assert len(stored) == 64 and first.secret_key == second.secret_key == stored
    assert stored not in first.test_client().get("/login").get_data(as_text=True)


# --- the event stream ---------------------------------------------------------------------------


def _text(chunk: str | bytes) -> str:
    return chunk.decode() if isinstance(chunk, bytes) else chunk


def test_the_stream_sends_visible_events_with_the_row_id_heartbeats_and_unsubscribes(config) -> None:
    bus = FakeBus()
    app = create_app(config, bus=bus)
    app.config["SSE_HEARTBEAT_SECONDS"] = 0.05
    create_user("al", PASSWORD, role="agent", extension="201")
    client = app.test_client()
    login(client, "al")
    assert "data-stream=" in client.get("/").get_data(as_text=True)

    now = datetime.now(UTC)
    mine = record("mine", now, ("201",))
    row_id = save_call(mine)
    resp = client.get("/calls/stream", buffered=False)
    assert resp.mimetype == "text/event-stream"
    chunks = iter(resp.response)
    assert _text(next(chunks)).startswith("retry: 3000")
    assert len(bus.handlers) == 1

    bus.publish(CallStarted(at=now, call=record("theirs", now, ("203",))))  # not for agent 201
    bus.publish(CallStarted(at=now, call=mine))
    frame = _text(next(chunks))
    assert frame.startswith("data: ") and frame.endswith("\n\n")
    payload = json.loads(frame.removeprefix("data: "))
    assert payload == {**CallStarted(at=now, call=mine).to_dict(), "id": row_id}
    assert _text(next(chunks)) == ": keepalive\n\n"

    resp.close()
    assert bus.handlers == []
