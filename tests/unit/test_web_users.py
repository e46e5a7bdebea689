"""The users page (admins) and my account (everyone) through Flask's test client, over a real SQLite
database: who may see them, CSRF, the audit log, secrets shown once, tokens that stop at once, and
sessions that end (log out everywhere, a changed password) while the one that asked stays."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pbxlink.web import create_app

from pbxlink.config import Config
from pbxlink.storage.models import AuditEntry, User
from pbxlink.storage.users import create_user
from tests.unit import test_web_api
from tests.unit.test_web_api import PASSWORD, csrf_token, login

config = test_web_api.config  # the fixture: a migrated SQLite database and its Config


def users_app(config: Config) -> Flask:
    """The panel (the users and account pages are part of it)."""
    return create_app(config)


@pytest.fixture
def app(config: Config) -> Flask:
    create_user("root", PASSWORD, role="admin")
    create_user("ann", PASSWORD, extension="201")
    return users_app(config)


def client_of(app: Flask, username: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    assert login(client, username, password).status_code == 302
    return client


def post(client: FlaskClient, url: str, page: str, **data: str):
    return client.post(url, data={"csrf_token": csrf_token(client, page), **data})


def shown(page: str) -> str | None:
    match = re.search(r'<code id="shown-secret" class="secret">([^<]+)</code>', page)
    return match.group(1) if match else None


def uid(name: str) -> int:
    return int(User.get(User.username == name).id)


def test_only_admins_reach_the_users_pages(app: Flask) -> None:
    create_user("sue", PASSWORD, role="supervisor")
    for name in ("ann", "sue"):
        client = client_of(app, name)
        assert client.get("/users").status_code == 403
        assert client.get(f"/users/{uid('ann')}").status_code == 403
        token = csrf_token(client, "/account")
        assert (
            client.post("/users", data={"csrf_token": token, "username": "x", "role": "admin"}).status_code
            == 403
        )
        assert (
            client.post(f"/users/{uid(name)}", data={"csrf_token": token, "role": "admin"}).status_code == 403
        )
        assert client.get("/account").status_code == 200
    assert (
        User.get(User.username == "sue").role == "supervisor"
        and User.get_or_none(User.username == "x") is None
    )
    anonymous = app.test_client()
    assert anonymous.get("/users").headers["Location"].startswith("/login?next=/users")
    assert anonymous.get("/account").headers["Location"].startswith("/login")
    assert client_of(app, "root").get("/users").status_code == 200


def test_forms_without_the_csrf_token_are_refused(app: Flask) -> None:
    root, ann = client_of(app, "root"), client_of(app, "ann")
    assert root.post("/users", data={"username": "eve", "role": "admin"}).status_code == 400
    assert root.post(f"/users/{uid('ann')}/logout").status_code == 400
    assert ann.post("/account/logout-everywhere").status_code == 400
    assert ann.post("/account/tokens", data={"name": "x"}).status_code == 400
    assert User.get_or_none(User.username == "eve") is None
    assert User.get(User.username == "ann").session_version == 0
    assert AuditEntry.select().count() == 0


def test_an_added_user_gets_a_password_shown_once_and_the_audit_log_never_holds_it(app: Flask) -> None:
    root = client_of(app, "root")
    resp = post(root, "/users", "/users", username="bea", role="supervisor", extension="202,203")
    assert resp.status_code == 302
    page = root.get("/users")
    assert page.headers["Cache-Control"] == "no-store"
    password = shown(page.get_data(as_text=True))
    assert password and len(password) >= 16
    assert shown(root.get("/users").get_data(as_text=True)) is None  # a reload: gone
    bea = client_of(app, "bea", password)
    assert bea.get("/account").status_code == 200
    # A typed password must be typed twice alike.
    resp = post(
        root, "/users", "/users", username="cy", password_choice="typed", password="a" * 9, again="b" * 9
    )
    assert resp.status_code == 400 and "The two passwords differ" in resp.get_data(as_text=True)
    resp = post(root, "/users", "/users", username="bad name", role="agent")
    assert resp.status_code == 400 and "username must be" in resp.get_data(as_text=True)
    # Role change, reset; the audit log has before/after and never a password.
    post(root, f"/users/{uid('bea')}", "/users", role="agent", extension="202")
    post(root, f"/users/{uid('bea')}/password", "/users")
    new = shown(root.get(f"/users/{uid('bea')}").get_data(as_text=True))
    assert new and new != password
    assert bea.get("/account").status_code == 302  # the reset ended bea's session
    entries = [(a.user, a.action, a.target, json.loads(a.detail or "null")) for a in AuditEntry.select()]
    assert entries == [
        ("root", "user.add", "user:bea", {"after": {"role": "supervisor", "extension": "202,203"}}),
        (
            "root",
            "user.update",
            "user:bea",
            {
                "role": {"before": "supervisor", "after": "agent"},
                "extension": {"before": "202,203", "after": "202"},
            },
        ),
        ("root", "user.password", "user:bea", None),
    ]
    assert not any(secret in (a.detail or "") for a in AuditEntry.select() for secret in (password, new))


def test_admins_cannot_disable_themselves_nor_leave_no_active_admin(app: Flask) -> None:
    root = client_of(app, "root")
    resp = post(root, f"/users/{uid('root')}/active", "/users", active="0")
    assert resp.status_code == 400 and "You cannot disable yourself" in resp.get_data(as_text=True)
    resp = post(root, f"/users/{uid('root')}", "/users", role="agent")
    assert resp.status_code == 400 and "root is the last active admin" in resp.get_data(as_text=True)
    assert User.get(User.username == "root").role == "admin"
    ann = client_of(app, "ann")
    assert post(root, f"/users/{uid('ann')}/active", "/users", active="0").status_code == 302
    assert ann.get("/account").status_code == 302  # a disabled user's session ends at once
    refused = login(app.test_client(), "ann")
    assert refused.status_code == 200 and "Wrong username or password." in refused.get_data(as_text=True)
    post(root, f"/users/{uid('ann')}/active", "/users", active="1")
    assert login(app.test_client(), "ann").status_code == 302


def test_a_revoked_token_stops_working_on_the_api_at_once(app: Flask) -> None:
    ann = client_of(app, "ann")
    assert post(ann, "/account/tokens", "/account", name="nightly").status_code == 302
    token = shown(ann.get("/account").get_data(as_text=True))
    assert token and shown(ann.get("/account").get_data(as_text=True)) is None
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/calls", headers=headers).status_code == 200
    page = ann.get("/account").get_data(as_text=True)
    assert "nightly" in page and token not in page
    token_id = re.search(r'id="token-(\d+)"', page).group(1)
    # Another user cannot revoke it; its owner can, and it stops at once.
    bob = create_user("bob", PASSWORD)
    assert (
        bob
        and post(client_of(app, "bob"), f"/account/tokens/{token_id}/revoke", "/account").status_code == 302
    )
    assert api.get("/api/v1/calls", headers=headers).status_code == 200
    post(ann, f"/account/tokens/{token_id}/revoke", "/account")
    assert api.get("/api/v1/calls", headers=headers).status_code == 401
    actions = [(a.user, a.action) for a in AuditEntry.select().order_by(AuditEntry.id)]
    assert actions == [("ann", "token.add"), ("ann", "token.revoke")]


def test_log_out_everywhere_ends_every_session_of_the_user(app: Flask) -> None:
    laptop, phone = client_of(app, "ann"), client_of(app, "ann")
    root = client_of(app, "root")
    post(root, f"/users/{uid('ann')}/logout", "/users")
    assert laptop.get("/account").status_code == 302 and phone.get("/account").status_code == 302
    assert root.get("/users").status_code == 200
    # Her own button ends this session too.
    laptop, phone = client_of(app, "ann"), client_of(app, "ann")
    resp = post(laptop, "/account/logout-everywhere", "/account")
    assert resp.headers["Location"] == "/login"
    assert laptop.get("/account").status_code == 302 and phone.get("/account").status_code == 302
    assert User.get(User.username == "ann").session_version == 2


def test_changing_my_password_keeps_this_session_and_ends_the_others(app: Flask) -> None:
    laptop, phone = client_of(app, "ann"), client_of(app, "ann")
    resp = post(
        laptop, "/account/password", "/account", current="wrong one", new="new secret", again="new secret"
    )
    assert resp.status_code == 400 and "current password is wrong" in resp.get_data(as_text=True)
    resp = post(
        laptop, "/account/password", "/account", current=PASSWORD, new="new secret", again="other one"
    )
    assert resp.status_code == 400 and "two new passwords differ" in resp.get_data(as_text=True)
    resp = post(laptop, "/account/password", "/account", current=PASSWORD, new="short", again="short")
    assert resp.status_code == 400 and "at least 8 characters" in resp.get_data(as_text=True)
    resp = post(
        laptop, "/account/password", "/account", current=PASSWORD, new="new secret", again="new secret"
    )
    assert resp.status_code == 302
    assert laptop.get("/account").status_code == 200
    assert phone.get("/account").status_code == 302
    assert login(app.test_client(), "ann", "new secret").status_code == 302
