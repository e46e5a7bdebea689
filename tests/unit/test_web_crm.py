"""The CRM admin page and the CRM change hook, through Flask's test client with the real directory."""

from __future__ import annotations

import pytest
from pbxlink.web import create_app
from pbxlink.web.crm import hook_token

from pbxlink.cache import MemoryCache
from pbxlink.config import Config, CrmConfig, WebConfig
from pbxlink.domain.crm import CallLogEntry, Contact, CrmAuthError
from pbxlink.domain.phone import PhoneNumbers, PhoneQuery
from pbxlink.domain.ports import CheckResult
from pbxlink.services.directory import CallerDirectory
from pbxlink.storage.users import create_user
from tests.unit.test_web_api import PASSWORD, config, csrf_token, login  # noqa: F401

TOKEN = "pat-na1-0123456789"


class FakeConnector:
    """Answers from a dict of numbers; `broken` makes every request fail as a revoked key does."""

    kind = "rest"

    def __init__(self, name: str, contacts: dict[str, Contact], broken: bool = False) -> None:
        self.name = name
        self.contacts = contacts
        self.broken = broken
        self.asked: list[str] = []

    def find_contacts(self, number: PhoneQuery) -> list[Contact]:
        self.asked.append(number.key)
        if self.broken:
            raise CrmAuthError(f"{self.name}: POST /search: 401 Unauthorized (check the API key/token)")
        found = self.contacts.get(number.key)
        return [found] if found else []

    def log_call(self, entry: CallLogEntry) -> str:
        raise NotImplementedError

    def contact_url(self, contact_id: str) -> str:
        return f"https://crm.example.com/c/{contact_id}"

    def check(self) -> CheckResult:
        return CheckResult(not self.broken, f"CRM {self.name}", "token revoked" if self.broken else "ok")


ACME = Contact(crm="main", id="42", name="<b>Ada</b> Lovelace", company="ACME", phones=("+15551234567",))


@pytest.fixture
def site(config):  # noqa: F811
    cfg = Config(
        path=None,
        database=config.database,
        web=WebConfig(secret_key="s" * 64),
        pbx=(),
        data_dir=config.data_dir,
        crm=(
            CrmConfig("main", "rest", {"token": TOKEN, "lookup_url": "https://u:pw@crm.example.com/x"}),
            CrmConfig("backup", "rest", {}),
        ),
    )
    connectors = [FakeConnector("main", {"+15551234567": ACME}), FakeConnector("backup", {}, broken=True)]
    directory = CallerDirectory(connectors, MemoryCache(), PhoneNumbers("US"))
    app = create_app(cfg, None, connectors=connectors, directory=directory)
    create_user("root", PASSWORD, role="admin")
    create_user("amy", PASSWORD, role="agent", extension="201")
    return app, connectors, directory


def admin(site):  # type: ignore[no-untyped-def]
    client = site[0].test_client()
    login(client, "root")
    return client


def test_page_lists_crms_without_their_secrets(site) -> None:
    page = admin(site).get("/admin/crm/").get_data(as_text=True)
    assert "main" in page and "backup" in page
    assert TOKEN not in page and ":pw@" not in page and "set (hidden)" in page
    with site[0].app_context():
        assert hook_token("main") in page  # the change hook URL to paste into the CRM


def test_only_admins(site) -> None:
    client = site[0].test_client()
    assert client.get("/admin/crm/").status_code == 302  # to the login page
    login(client, "amy")
    assert client.get("/admin/crm/").status_code == 403


def test_test_lookup_shows_raw_contacts_and_exact_errors(site) -> None:
    client = admin(site)
    token = csrf_token(client, "/admin/crm/")
    page = client.post("/admin/crm/test", data={"number": "(555) 123-4567", "csrf_token": token})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "+15551234567" in text and "&lt;b&gt;Ada&lt;/b&gt; Lovelace" in text  # raw, escaped
    assert "401 Unauthorized (check the API key/token)" in text
    page = client.post("/admin/crm/test", data={"number": "12", "csrf_token": token})
    assert "is not a phone number" in page.get_data(as_text=True)
    assert client.post("/admin/crm/test", data={"number": "5551234567"}).status_code == 400  # no CSRF


def test_check_runs_every_connectors_check(site) -> None:
    client = admin(site)
    text = client.post("/admin/crm/check", data={"csrf_token": csrf_token(client, "/admin/crm/")}).get_data(
        as_text=True
    )
    assert "token revoked" in text


def test_forgetting_cached_lookups(site) -> None:
    directory = site[2]
    directory.lookup("+15551234567")
    assert directory.cached("+15551234567") is not None
    client = admin(site)
    token = csrf_token(client, "/admin/crm/")
    resp = client.post("/admin/crm/cache/clear", data={"number": "5551234567", "csrf_token": token})
    assert resp.status_code == 302 and directory.cached("+15551234567") is None
    directory.lookup("+15551234567")
    client.post("/admin/crm/cache/clear", data={"number": "", "csrf_token": token}, follow_redirects=True)
    assert directory.cached("+15551234567") is None


def test_crm_change_hook_drops_the_changed_contacts(site) -> None:
    app, _, directory = site
    directory.lookup("+15551234567")
    client = app.test_client()
    with app.app_context():
        url = f"/hooks/crm/main/{hook_token('main')}"
    resp = client.post(url, json=[{"objectId": 42, "subscriptionType": "contact.propertyChange"}])
    assert resp.status_code == 200 and resp.get_json()["contacts"] == 1
    assert directory.cached("+15551234567") is None
    directory.lookup("+15551234567")
    resp = client.post(url, data={"event": "ONCRMCONTACTUPDATE", "data[FIELDS][ID]": "42"})  # Bitrix24 form
    assert resp.status_code == 200 and directory.cached("+15551234567") is None


def test_crm_change_hook_refuses_a_wrong_secret_or_crm(site) -> None:
    client = site[0].test_client()
    with site[0].app_context():
        token = hook_token("main")
    assert client.post("/hooks/crm/main/" + "0" * 32, json={"contact_ids": [42]}).status_code == 404
    assert client.post(f"/hooks/crm/other/{token}", json={}).status_code == 404
