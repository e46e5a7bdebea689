"""The Deliveries page and /api/v1/deliveries through Flask's test client, over a real SQLite outbox."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from pbxlink.web import create_app
from pbxlink.web import outbox as outbox_web

from pbxlink.storage import outbox
from pbxlink.storage.models import OutboxItem
from pbxlink.storage.users import create_user
from tests.unit import test_web_api
from tests.unit.test_web_api import PASSWORD, bearer, csrf_token, login

config = test_web_api.config  # the fixture: a migrated SQLite database and its Config

EVIL = "hubspot: POST /crm/v3/objects/calls: 401 Unauthorized: <script>alert('x')</script>"


class FakeWorker:
    def __init__(self) -> None:
        self.notified = 0

    def notify(self) -> None:
        self.notified += 1


@pytest.fixture
def app(config: Any) -> Flask:
    app = create_app(config)
    if "outbox" not in app.blueprints:  # until app.py registers them
        app.register_blueprint(outbox_web.bp)
        app.register_blueprint(outbox_web.api_bp)
    app.extensions["pbxlink.outbox_worker"] = FakeWorker()
    return app


@pytest.fixture
def items(config: Any) -> dict[str, int]:
    """One failed CRM log (its error holds markup), one retrying webhook, one done, one not yet tried."""
    for kind, target, key in (
        ("crm_log", "hubspot", "main:1.1"),
        ("webhook", "bridge", "main:1.1:ended:ab12"),
        ("crm_log", "hubspot", "main:2.2"),
        ("crm_log", "pipedrive", "main:3.3"),
    ):
        outbox.enqueue(kind, target, key, {"call_id": key})
    ids = {row.key: row.id for row in outbox.claim_due(outbox.utcnow(), 3, 60)}
    outbox.fail(ids["main:1.1"], EVIL)
    outbox.retry_later(
        ids["main:1.1:ended:ab12"], "webhook bridge: the receiver answered 503", outbox.utcnow()
    )
    outbox.done(ids["main:2.2"], "crm-id-9")
    return ids


@pytest.fixture
def admin(app: Flask) -> Any:
    create_user("root", PASSWORD, role="admin")
    client = app.test_client()
    assert login(client, "root").status_code == 302
    return client


def page_of(client: Any) -> str:
    resp = client.get("/admin/deliveries/")
    assert resp.status_code == 200
    return str(resp.get_data(as_text=True))


def test_the_admin_sees_failures_with_their_error_escaped(admin: Any, items: dict[str, int]) -> None:
    html = page_of(admin)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<script" not in html  # neither the error's markup nor any inline script (strict CSP)
    assert (
        "main:1.1" in html
        and "main:1.1:ended:ab12" in html
        and "webhook bridge: the receiver answered 503" in html
    )
    assert "main:2.2" not in html  # done: counted, not listed
    counts = re.findall(
        r'<td data-label="Target">(\w+)</td>\s*<td[^>]*>(\d+)</td>\s*<td[^>]*>(\d+)</td>'
        r"\s*<td[^>]*>(\d+)</td>",
        html,
    )
    assert counts == [("hubspot", "0", "1", "1"), ("pipedrive", "1", "0", "0"), ("bridge", "1", "0", "0")]


def test_retry_makes_a_failed_delivery_pending_and_wakes_the_worker(
    app: Flask, admin: Any, items: dict[str, int]
) -> None:
    token = csrf_token(admin, "/admin/deliveries/")
    resp = admin.post(f"/admin/deliveries/{items['main:1.1']}/retry", data={"csrf_token": token, "page": "1"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/deliveries/")
    row = outbox.get(items["main:1.1"])
    assert (row.status, row.attempts) == ("pending", 0) and row.next_at <= outbox.utcnow()
    assert app.extensions["pbxlink.outbox_worker"].notified == 1
    assert "CRM call log to hubspot for main:1.1 is queued to be tried again now." in page_of(admin)

    again = admin.post(f"/admin/deliveries/{items['main:2.2']}/retry", data={"csrf_token": token})
    assert again.status_code == 302 and outbox.get(items["main:2.2"]).status == "done"
    assert "is done already or no longer exists" in page_of(admin)


def test_retry_every_failed_delivery_of_a_target_or_all(admin: Any, items: dict[str, int]) -> None:
    outbox.fail(items["main:1.1:ended:ab12"], "webhook bridge: the receiver answered 410 Gone")
    token = csrf_token(admin, "/admin/deliveries/")
    resp = admin.post(
        "/admin/deliveries/retry-failed", data={"csrf_token": token, "kind": "webhook", "target": "bridge"}
    )
    assert resp.status_code == 302
    assert outbox.get(items["main:1.1:ended:ab12"]).status == "pending"
    assert outbox.get(items["main:1.1"]).status == "failed"
    assert "1 failed deliveries to bridge are queued" in page_of(admin)
    admin.post("/admin/deliveries/retry-failed", data={"csrf_token": token})
    assert OutboxItem.select().where(OutboxItem.status == "failed").count() == 0


def test_a_post_without_the_csrf_token_is_refused(admin: Any, items: dict[str, int]) -> None:
    assert admin.post(f"/admin/deliveries/{items['main:1.1']}/retry").status_code == 400
    assert admin.post("/admin/deliveries/retry-failed", data={"csrf_token": "forged"}).status_code == 400
    assert outbox.get(items["main:1.1"]).status == "failed"


def test_agents_get_403_and_strangers_the_login_page(app: Flask, items: dict[str, int]) -> None:
    create_user("agent1", PASSWORD, role="agent", extension="201")
    agent = app.test_client()
    login(agent, "agent1")
    assert agent.get("/admin/deliveries/").status_code == 403
    token = csrf_token(agent, "/")
    assert (
        agent.post(f"/admin/deliveries/{items['main:1.1']}/retry", data={"csrf_token": token}).status_code
        == 403
    )
    assert outbox.get(items["main:1.1"]).status == "failed"
    stranger = app.test_client().get("/admin/deliveries/")
    assert stranger.status_code == 302 and "/login" in stranger.headers["Location"]


def test_the_api_lists_deliveries_for_admin_tokens(app: Flask, items: dict[str, int]) -> None:
    client = app.test_client()
    failed = client.get("/api/v1/deliveries?status=failed", headers=bearer("admin"))
    assert failed.status_code == 200
    body = failed.get_json()
    assert [(d["target"], d["key"], d["status"], d["last_error"]) for d in body["deliveries"]] == [
        ("hubspot", "main:1.1", "failed", EVIL)
    ]
    assert (body["total"], body["pending"]) == (1, 2)
    assert {(t["target"], t["failed"], t["done_today"]) for t in body["targets"]} == {
        ("hubspot", 1, 1),
        ("pipedrive", 0, 0),
        ("bridge", 0, 0),
    }
    both = client.get("/api/v1/deliveries", headers=bearer("admin", name="api2")).get_json()
    assert {d["key"] for d in both["deliveries"]} == {"main:1.1", "main:1.1:ended:ab12"}
    assert client.get("/api/v1/deliveries", headers=bearer("supervisor")).status_code == 403
    assert client.get("/api/v1/deliveries").status_code == 401
    bad = client.get("/api/v1/deliveries?status=stuck", headers=bearer("admin", name="api3"))
    assert bad.status_code == 400 and bad.get_json()["error"].startswith("invalid status")
