"""The campaigns pages, their imports, the do-not-call list and their JSON API through Flask's test client,
over a real SQLite database; imports run in the real import thread."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pbxlink.web import create_app

from pbxlink.config import Config, PbxConfig
from pbxlink.domain.campaign import CampaignSettings
from pbxlink.services.contact_import import rejects_folder
from pbxlink.storage import campaigns as store
from pbxlink.storage import dnc
from pbxlink.storage.models import AuditEntry, Campaign, CampaignAttempt, CampaignContact, CampaignImport
from pbxlink.storage.users import create_user
from tests.unit import test_web_api
from tests.unit.test_web_api import PASSWORD, bearer, csrf_token, login

base_config = test_web_api.config  # the fixture: a migrated SQLite database and its Config

PBX = PbxConfig(name="main", type="asterisk", host="127.0.0.1", port=5038, username="pbxlink", secret="x")
FORMULA = "=cmd|' /C calc'!A0"
GOOD_FORM = {
    "name": "Renewals",
    "pbx": "main",
    "mode": "broadcast",
    "caller_id": "+12125550100",
    "message": "renewal-reminder",
    "queue": "",
    "timezone": "America/New_York",
    "days": ["mon", "tue", "wed", "thu", "fri"],
    "hours_start": "09:00",
    "hours_end": "18:00",
    "window_start": "09:00",
    "window_end": "20:00",
    "max_concurrent": "5",
    "per_minute": "10",
    "ring_timeout": "30",
    **{f"retry-{o}-after": "30" for o in ("busy", "no_answer", "failed", "machine")},
    **{f"retry-{o}-max": "2" for o in ("busy", "no_answer", "failed", "machine")},
}


@pytest.fixture
def config(base_config: Config) -> Config:
    return dataclasses.replace(base_config, pbx=(PBX,))


@pytest.fixture
def app(config: Config) -> Flask:
    app = create_app(config)
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    create_user("sue", PASSWORD, role="supervisor")
    client = app.test_client()
    login(client, "sue")
    return client


def campaign(name: str = "Reminders", status: str = "draft") -> Campaign:
    s = CampaignSettings.checked(
        name=name, pbx="main", mode="broadcast", timezone="America/New_York", message="reminder"
    )
    c = store.create(s, "sue")
    if status != "draft":
        Campaign.update(status=status).where(Campaign.id == c.id).execute()
    return store.get(c.id)


def token(client: FlaskClient, url: str) -> str:
    return csrf_token(client, url)


def post(client: FlaskClient, url: str, data: dict[str, Any], page: str, **kw: Any) -> Any:
    return client.post(url, data={**data, "csrf_token": token(client, page)}, **kw)


def flashes(resp: Any) -> list[str]:
    return re.findall(r'<p class="flash[^"]*" role="status">([^<]*)</p>', resp.get_data(as_text=True))


def upload(client: FlaskClient, c: Campaign, content: bytes, encoding: str = "utf-8", name: str = "list.csv"):
    page = f"/campaigns/{c.id}"
    data = {"file": (io.BytesIO(content), name), "encoding": encoding}
    return post(client, f"/campaigns/{c.id}/imports", data, page, content_type="multipart/form-data")


def wait_done(client: FlaskClient, c: Campaign, import_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        d = client.get(f"/api/v1/campaigns/{c.id}/imports/{import_id}").get_json()
        if d["status"] != "running":
            return d  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"import {import_id} still running after 30 s")


# --- who may ---------------------------------------------------------------------------------


def test_agents_get_403_and_no_one_gets_in_without_logging_in(app: Flask) -> None:
    c = campaign()
    create_user("ann", PASSWORD, extension="201")
    anonymous = app.test_client()
    assert anonymous.get("/campaigns").status_code == 302
    assert anonymous.get("/api/v1/campaigns").get_json() == {"error": "missing bearer token"}
    agent = app.test_client()
    login(agent, "ann")
    for url in (
        "/campaigns",
        f"/campaigns/{c.id}",
        "/campaigns/new",
        f"/campaigns/{c.id}/export.csv",
        "/dnc",
    ):
        assert agent.get(url).status_code == 403, url
    assert agent.get("/api/v1/campaigns").status_code == 403
    resp = agent.post(f"/api/v1/campaigns/{c.id}/start", headers={"X-CSRFToken": csrf_token(agent, "/calls")})
    assert resp.status_code == 403 and "error" in resp.get_json()
    assert store.get(c.id).status == "draft"
    assert agent.get("/api/v1/dnc", headers=bearer("agent")).status_code == 403
    assert app.test_client().get("/api/v1/campaigns", headers=bearer("admin")).status_code == 200


def test_forms_without_the_csrf_token_are_refused(client: FlaskClient) -> None:
    c = campaign()
    assert client.post("/campaigns/new", data=GOOD_FORM).status_code == 400
    assert client.post(f"/campaigns/{c.id}/start").status_code == 400
    assert client.post("/dnc/add", data={"number": "+12025550143"}).status_code == 400
    # The API: a session's POST needs the token in a header; a bearer token needs none.
    refused = client.post(f"/api/v1/campaigns/{c.id}/start")
    assert refused.status_code == 400 and "X-CSRFToken" in refused.get_json()["error"]
    assert store.get(c.id).status == "draft" and dnc.count() == 0
    ok = client.post(f"/api/v1/campaigns/{c.id}/start", headers={"X-CSRFToken": token(client, "/campaigns")})
    assert ok.status_code == 200 and ok.get_json()["campaign"]["status"] == "running"


# --- the form --------------------------------------------------------------------------------


def test_a_campaign_is_created_from_the_form_with_every_setting(client: FlaskClient) -> None:
    page = client.get("/campaigns/new").get_data(as_text=True)
    for field in (
        "name",
        "caller_id",
        "message",
        "queue",
        "timezone",
        "hours_start",
        "window_end",
        "per_minute",
    ):
        assert f'<label for="f-{field}"' in page, field  # every input has its label
    assert "<option selected>main</option>" in page
    form = {**GOOD_FORM, "amd": "on", "queue": "sales", "days": ["mon", "wed", "sat"], "retry-busy-max": "4"}
    resp = post(client, "/campaigns/new", form, "/campaigns/new")
    c = store.by_name("Renewals")
    assert resp.status_code == 302 and resp.headers["Location"] == f"/campaigns/{c.id}"
    s = store.settings_of(c)
    assert (s.mode, s.message, s.queue, s.amd, s.days, s.hours) == (
        "broadcast", "renewal-reminder", "sales", True, "mon,wed,sat", "09:00-18:00"
    )  # fmt: skip
    assert (s.retries["busy"].after_minutes, s.retries["busy"].max_attempts) == (30.0, 4)
    assert c.status == "draft" and c.created_by == "sue"
    edit = client.get(f"/campaigns/{c.id}/edit").get_data(as_text=True)
    assert 'name="days" value="wed" checked' in edit and 'name="days" value="tue">' in edit


@pytest.mark.parametrize(
    ("change", "message", "field"),
    [
        ({"per_minute": "0"}, "per_minute: must be between 0.1 and 6000 calls a minute", "f-per_minute"),
        ({"per_minute": "fast"}, "per_minute: must be a number", "f-per_minute"),
        ({"message": ""}, "message: must be set: the recording a broadcast plays", "f-message"),
        (
            {"mode": "agent_first"},
            "queue: must be set: the queue whose free agent is connected first",
            "f-queue",
        ),
        ({"timezone": "Mars/Olympus"}, 'timezone: must be a time zone like "Europe/Berlin"', "f-timezone"),
        ({"window_end": "08:00"}, "window_end: must be later than window_start", "f-window_end"),
        ({"pbx": "other"}, "pbx: must be one of the configured PBXes (main)", "f-pbx"),
        ({"retry-busy-max": "99"}, "retries.busy: must be 1 to 20 attempts in all", None),
        ({"days": []}, "days: must be at least one weekday", None),
    ],
)
def test_the_form_says_what_is_wrong_beside_it_and_keeps_what_was_typed(
    client: FlaskClient, change: dict[str, Any], message: str, field: str | None
) -> None:
    resp = post(client, "/campaigns/new", {**GOOD_FORM, **change}, "/campaigns/new")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    shown = re.search(r'<p class="error" id="form-error" role="alert">([^<]*)</p>', page)
    assert shown is not None and shown.group(1).replace("&#34;", '"') == message
    if field is not None:
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true" aria-describedby="form-error"', page), page
    assert 'value="+12125550100"' in page  # what was typed stays
    assert Campaign.select().count() == 0


def test_a_running_campaign_can_be_edited_but_its_name_stays_unique(client: FlaskClient) -> None:
    c = campaign("Running", status="running")
    campaign("Taken")
    url = f"/campaigns/{c.id}/edit"
    assert "the next dial uses what you save here" in client.get(url).get_data(as_text=True)
    taken = post(client, url, {**GOOD_FORM, "name": "Taken"}, url)
    assert taken.status_code == 400 and "a campaign named &#34;Taken&#34; exists already" in taken.get_data(
        True
    )
    resp = post(client, url, {**GOOD_FORM, "name": "Running", "per_minute": "30"}, url, follow_redirects=True)
    assert flashes(resp) == ["Campaign Running: settings saved (it is running: the next dial uses them)."]
    assert store.get(c.id).per_minute == 30.0 and store.get(c.id).status == "running"


# --- start, pause, resume, stop ----------------------------------------------------------------


def test_the_commands_move_a_campaign_and_only_the_ones_that_apply_are_shown(client: FlaskClient) -> None:
    c = campaign()
    page = f"/campaigns/{c.id}"

    def buttons() -> list[str]:
        return re.findall(r'class="cp-command cp-(\w+)"', client.get(page).get_data(as_text=True))

    assert buttons() == ["start", "stop"]
    resp = post(client, f"{page}/start", {}, page, follow_redirects=True)
    assert flashes(resp) == ["Campaign Reminders: running."] and store.get(c.id).status == "running"
    assert buttons() == ["pause", "stop"]
    resp = post(client, f"{page}/resume", {}, page, follow_redirects=True)
    assert flashes(resp) == ["Campaign Reminders is running, not paused: nothing to resume."]
    post(client, f"{page}/pause", {}, page)
    assert store.get(c.id).status == "paused" and buttons() == ["resume", "stop"]
    resp = post(client, f"{page}/start", {}, page, follow_redirects=True)
    assert flashes(resp) == ["Campaign Reminders is paused: resume it."]
    resp = post(client, f"{page}/stop", {}, page, follow_redirects=True)  # not confirmed
    assert "tick the box to confirm" in flashes(resp)[0] and store.get(c.id).status == "paused"
    post(client, f"{page}/stop", {"confirm": "yes"}, page)
    assert store.get(c.id).status == "stopped" and buttons() == []


def test_the_api_commands_answer_409_with_the_reason_when_they_do_not_apply(client: FlaskClient) -> None:
    c = campaign()
    api = bearer("admin")
    assert client.post(f"/api/v1/campaigns/{c.id}/pause", headers=api).status_code == 409
    started = client.post(f"/api/v1/campaigns/{c.id}/start", headers=api)
    assert started.status_code == 200 and started.get_json()["result"] == "campaign Reminders: running"
    again = client.post(f"/api/v1/campaigns/{c.id}/resume", headers=api)
    assert again.status_code == 409
    assert again.get_json() == {"error": "campaign Reminders is running, not paused: nothing to resume"}
    assert client.post(f"/api/v1/campaigns/{c.id}/stop", headers=api).get_json()["campaign"]["commands"] == []
    assert client.post(f"/api/v1/campaigns/{c.id}/start", headers=api).status_code == 409
    assert client.post(f"/api/v1/campaigns/{c.id}/restart", headers=api).status_code == 404
    assert client.post("/api/v1/campaigns/999/start", headers=api).get_json() == {"error": "no campaign #999"}
    one = client.get(f"/api/v1/campaigns/{c.id}", headers=api).get_json()
    assert one["status"] == "stopped" and one["progress"]["contacts"] == 0
    assert [x["name"] for x in client.get("/api/v1/campaigns", headers=api).get_json()["campaigns"]] == [
        "Reminders"
    ]


# --- imports ---------------------------------------------------------------------------------

LIST = (
    "Phone;Name;Due date\n"
    "+1 212 555 0101;Ann;2026-12-01\n"
    "not a number;Bob;2026-12-02\n"
    "212-555-0101;Ann again;2026-12-03\n"
    "+1 212 555 0102;Carl;2026-12-04\n"
    f"+1 212 555 0103;{FORMULA};2026-12-05\n"
).encode("windows-1252")


def test_upload_then_mapping_then_the_import_runs_to_done_with_its_counts(
    client: FlaskClient, config: Config
) -> None:
    c = campaign()
    dnc.add("+12125550102", "asked", "sue")
    resp = upload(client, c, LIST, encoding="windows-1252", name="../../etc/my list.csv")
    up = resp.headers["Location"]
    assert re.fullmatch(rf"/campaigns/{c.id}/imports/[0-9a-f]{{32}}", up)
    saved = list((config.data_dir / "uploads").iterdir())
    assert [p.name for p in saved] == [f"{up.rsplit('/', 1)[1]}.csv"]  # our name, not the browser's
    page = client.get(up).get_data(as_text=True)
    assert "Import my list.csv into Reminders" in page
    assert re.search(r'id="col-0" name="col-0">.*?<option value="number" selected>', page, re.S)
    assert re.search(r'id="col-2" name="col-2">.*?<option value="custom" selected>', page, re.S)
    assert '<td data-label="Name">=cmd|&#39; /C calc&#39;!A0</td>' in page  # the preview, as text
    assert page.count("<tr") == 6  # the header and 5 lines
    # Two columns mapped to the number: said on the page, nothing runs.
    bad = post(client, up, {"col-0": "number", "col-1": "number", "col-2": "custom"}, up)
    assert bad.status_code == 400 and "both map to number" in bad.get_data(as_text=True)
    resp = post(client, up, {"col-0": "number", "col-1": "name", "col-2": "custom"}, up)
    imp = CampaignImport.get(CampaignImport.campaign == c.id)
    assert resp.headers["Location"] == f"/campaigns/{c.id}#import-{imp.id}"
    d = wait_done(client, c, imp.id)
    assert (d["status"], d["fraction"], d["rows"], d["accepted"]) == ("done", 1.0, 5, 2)
    assert (d["rejected"], d["duplicates"], d["dnc"]) == (1, 1, 1)
    assert d["rejects_url"] == f"/campaigns/{c.id}/imports/{imp.id}/rejected.csv"
    assert client.get(up).status_code == 404  # the upload was used: no second import from it
    detail = client.get(f"/campaigns/{c.id}").get_data(as_text=True)
    assert 'data-field="accepted">2<' in detail and "Rejected rows and why (CSV)" in detail
    first = CampaignContact.select().order_by(CampaignContact.id).first()
    assert (first.number, first.fields) == ("+12125550101", '{"DUE_DATE": "2026-12-01"}')

    rejects = client.get(d["rejects_url"])
    assert rejects.status_code == 200
    assert rejects.headers["Content-Disposition"] == (
        f"attachment; filename=campaign-{c.id}-import-{imp.id}-rejected.csv"
    )
    rows = list(csv.reader(io.StringIO(rejects.get_data(as_text=True).lstrip("\ufeff"))))
    reasons = {row[0]: row[-1] for row in rows[1:]}
    # (a cell starting with + that is not a plain number is neutralised like a formula)
    assert set(reasons) == {"not a number", "212-555-0101", "'+1 212 555 0102"}
    assert reasons["'+1 212 555 0102"] == "on the do-not-call list"


def test_a_file_read_in_the_wrong_encoding_shows_which_lines_cannot_be_read(client: FlaskClient) -> None:
    c = campaign()
    up = upload(client, c, LIST, encoding="utf-8").headers["Location"]  # it is windows-1252
    page = client.get(up).get_data(as_text=True)
    assert page.count('class="cp-bad"') == 0  # no accent in the first lines: all readable
    accented = "phone,name\n+12125550101,Zoë\n".encode("windows-1252")
    up = upload(client, c, accented, encoding="utf-8").headers["Location"]
    page = client.get(up).get_data(as_text=True)
    assert page.count('class="cp-bad"') == 1
    assert "not valid UTF-8 (byte 0xEB); re-import choosing the file&#39;s encoding" in page
    missing = client.get(f"/api/v1/campaigns/{c.id}/imports/99")
    assert missing.status_code == 404 and missing.get_json() == {
        "error": f"campaign #{c.id} has no import #99"
    }


def test_the_rejected_rows_are_served_only_from_the_imports_own_file(
    client: FlaskClient, config: Config
) -> None:
    c, other = campaign(), campaign("Other")
    folder = rejects_folder(config.data_dir)
    folder.mkdir(parents=True)
    own = folder / "mine.csv"
    own.write_text("number,line,reason\n")
    secret = config.data_dir / "pbxlink.db"
    imp = CampaignImport.create(campaign=c.id, filename="x.csv", status="done", rejects_path=str(own))
    url = f"/campaigns/{c.id}/imports/{imp.id}/rejected.csv"
    assert client.get(url).get_data(as_text=True) == "number,line,reason\n"
    assert AuditEntry.get(AuditEntry.action == "download").target == f"campaign-import:{imp.id}"
    assert client.get(f"/campaigns/{other.id}/imports/{imp.id}/rejected.csv").status_code == 404
    for path in (str(secret), str(folder / ".." / "pbxlink.db"), "/etc/passwd", str(folder)):
        CampaignImport.update(rejects_path=path).where(CampaignImport.id == imp.id).execute()
        assert client.get(url).status_code == 404, path
        assert client.get(f"/api/v1/campaigns/{c.id}/imports/{imp.id}").get_json()["rejects_url"] is None
    assert client.get(f"/campaigns/{c.id}/imports/{imp.id}/rejected.csv?path=/etc/passwd").status_code == 404
    for token_ in ("..%2F..%2Fpbxlink.db", "..", "0" * 32, "../../etc/passwd", "A" * 32):
        assert client.get(f"/campaigns/{c.id}/imports/{token_}").status_code == 404, token_


def test_empty_oversized_and_foreign_uploads_are_refused_clearly(
    app: Flask, client: FlaskClient, config: Config
) -> None:
    c = campaign()
    resp = upload(client, c, b"", name="empty.csv")
    assert resp.status_code == 302
    assert flashes(client.get(resp.headers["Location"])) == [
        "empty.csv is empty: there is nothing to import."
    ]
    app.config["PBXLINK_MAX_UPLOAD"] = 2000
    resp = upload(client, c, b"phone\n" + b"+12125550101\n" * 400, name="big.csv")
    assert resp.status_code == 302 and resp.headers["Location"] == f"/campaigns/{c.id}#imports"
    shown = flashes(client.get(resp.headers["Location"]))
    assert shown == ["The file is over 2 KB: split it into smaller files, import each."]
    assert list((config.data_dir / "uploads").iterdir()) == []
    # A spreadsheet workbook: said on the campaign page, the upload removed.
    resp = upload(client, c, b"PK\x03\x04rest", name="list.xlsx")
    shown = flashes(client.get(client.get(resp.headers["Location"]).headers["Location"]))
    assert shown[0].startswith("list.xlsx cannot be imported: this is a spreadsheet workbook")
    # Another session never reaches someone's upload, even knowing its name.
    mine = upload(client, c, LIST, encoding="windows-1252").headers["Location"]
    create_user("max", PASSWORD, role="admin")
    other = app.test_client()
    login(other, "max")
    assert other.get(mine).status_code == 404 and client.get(mine).status_code == 200


def test_the_export_streams_every_attempt_with_formulas_neutralised(client: FlaskClient) -> None:
    c = campaign()
    k = CampaignContact.create(
        campaign=c.id, number="+12125550101", number_key="+12125550101", name=FORMULA,
        timezones="America/New_York", fields='{"NOTE": "@SUM(A1)"}', row=2, status="done", attempts=1,
        last_outcome="answered",
    )  # fmt: skip
    CampaignAttempt.create(
        campaign=c.id, contact=k.id, tag="t1", deadline=k.updated_at, outcome="answered", talk_seconds=42.0
    )
    resp = client.get(f"/campaigns/{c.id}/export.csv")
    assert resp.headers["Content-Disposition"] == f'attachment; filename="campaign-{c.id}.csv"'
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0][:4] == ["contact_id", "number", "name", "status"] and rows[0][-1] == "NOTE"
    assert rows[1][1:3] == ["+12125550101", "'" + FORMULA]  # shown as text, never run
    assert rows[1][-1] == "'@SUM(A1)" and rows[1][10] == "answered" and rows[1][13] == "42.0"
    assert [(a.user, a.action, a.target) for a in AuditEntry.select()] == [
        ("sue", "export", f"campaign:{c.id}")
    ]


# --- the do-not-call list ------------------------------------------------------------------------


def test_the_do_not_call_list_adds_searches_removes_and_imports(client: FlaskClient) -> None:
    resp = post(client, "/dnc/add", {"number": "(212) 555-0199", "reason": "asked twice"}, "/dnc")
    assert flashes(client.get(resp.headers["Location"]))[0].startswith(
        "+12125550199 is on the do-not-call list"
    )
    again = post(client, "/dnc/add", {"number": "+1 212 555 0199"}, "/dnc", follow_redirects=True)
    assert flashes(again)[0].startswith("+12125550199 was on the do-not-call list already")
    bad = post(client, "/dnc/add", {"number": "12"}, "/dnc", follow_redirects=True)
    assert flashes(bad) == ["Not added: &#39;12&#39; is not a phone number (it needs at least 7 digits)."]
    listing = b"number,reason\n+1 212 555 0101,moved\n212-555-0199,dup\nnope,x\n"
    data = {"file": (io.BytesIO(listing), "dnc.csv"), "encoding": "utf-8"}
    resp = post(
        client, "/dnc/import", data, "/dnc", content_type="multipart/form-data", follow_redirects=True
    )
    assert flashes(resp)[:1] == ["1 number added to the do-not-call list; 1 was on it already."]
    assert "1 lines were skipped: line 4: &#39;nope&#39; is not a phone number" in flashes(resp)[1]
    assert dnc.count() == 2
    found = client.get("/dnc?search=0101").get_data(as_text=True)
    assert "+12125550101" in found and "+12125550199" not in found
    api = client.get("/api/v1/dnc?search=asked").get_json()
    assert [e["number"] for e in api["entries"]] == ["+12125550199"] and api["total"] == 1
    entry = dnc.page("0199", 1)[0][0]
    resp = post(client, f"/dnc/{entry.id}/remove", {}, "/dnc", follow_redirects=True)
    assert flashes(resp) == ["+12125550199 is off the do-not-call list: campaigns may call it again."]
    assert not dnc.blocked("+12125550199") and dnc.count() == 1
    assert AuditEntry.get(AuditEntry.action == "dnc_remove").target == "dnc:+12125550199"
    assert post(client, f"/dnc/{entry.id}/remove", {}, "/dnc").status_code == 404


def test_the_index_and_the_api_show_the_live_numbers(client: FlaskClient) -> None:
    c = campaign(status="running")
    for n, outcome in enumerate(("answered", "busy", None), start=1):
        k = CampaignContact.create(
            campaign=c.id, number=f"+1212555010{n}", number_key=f"+1212555010{n}", timezones="UTC",
            status="dialing" if outcome is None else "done",
        )  # fmt: skip
        CampaignAttempt.create(
            campaign=c.id, contact=k.id, tag=f"t{n}", deadline=k.updated_at, outcome=outcome
        )
    CampaignContact.create(campaign=c.id, number="+12125550109", number_key="+12125550109", timezones="UTC")
    page = client.get("/campaigns").get_data(as_text=True)
    assert 'data-campaigns-url="/api/v1/campaigns"' in page and f'data-campaign="{c.id}"' in page
    assert '<progress class="cp-bar" max="100" value="50"' in page and 'data-field="remaining">2<' in page
    assert 'data-field="answer_rate">50.0%<' in page
    p = client.get(f"/api/v1/campaigns/{c.id}").get_json()["progress"]
    assert (p["dialled"], p["answered"], p["busy"], p["in_progress"], p["remaining"]) == (3, 1, 1, 1, 2)
    assert client.get(f"/campaigns/{c.id}?status=dialing").get_data(as_text=True).count('id="contact-') == 1
    assert client.get(f"/campaigns/{c.id}?status=nonsense").status_code == 400


def test_no_path_of_ours_reaches_a_page(client: FlaskClient, config: Config) -> None:
    """The data folder is never named to the browser (the upload's name is ours, random)."""
    c = campaign()
    resp = upload(client, c, LIST, encoding="windows-1252")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert str(config.data_dir) not in page and str(Path(config.data_dir).name) not in page


def test_a_long_do_not_call_list_is_paged_and_the_search_kept(client: FlaskClient) -> None:
    dnc.add_many([(*dnc.normalize(f"+1 212 555 {1000 + i}"), "moved") for i in range(55)], "test")
    page = client.get("/dnc?search=moved").get_data(as_text=True)
    assert "page 1 of 2 (55 found)" in page and 'href="/dnc?page=2&amp;search=moved"' in page
    second = client.get("/dnc?search=moved&page=2").get_data(as_text=True)
    assert "page 2 of 2 (55 found)" in second and 'href="/dnc?page=1&amp;search=moved"' in second
