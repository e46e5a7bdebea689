"""The recordings pages through Flask's test client, over real files in temporary folders and rows the
recording store wrote: search filters, agent scoping on every request (Range included), Range streaming,
downloads, one audit row per listen or download, and no id, URL or tampered row reading outside."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from pbxlink.web import create_app

from pbxlink.config import Config, DatabaseConfig, RecordingsConfig, WebConfig
from pbxlink.domain.calls import CallRecord
from pbxlink.storage import recordings as store
from pbxlink.storage import users
from pbxlink.storage.calls import save_call
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import AuditEntry, Recording
from pbxlink.storage.users import create_user
from tests.integration.test_recording_links_web import wav_bytes
from tests.unit.test_web_api import PASSWORD, login

SECRET = b"root:x:0:0:OUTSIDE-THE-RECORDING-FOLDERS"
DAY = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@dataclass
class Site:
    spool: Path
    outside: Path
    wav: bytes
    app: Flask


def make_app(config: Config) -> Flask:
    """The panel as `pbxlink run` builds it."""
    return create_app(config)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    tmp = tmp_path.resolve()
    spool, outside = tmp / "spool", tmp / "outside"
    spool.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    url = f"sqlite:///{tmp}/pbxlink.db"
    database = connect(url)
    migrate(database)
    config = Config(
        path=None,
        database=DatabaseConfig(url),
        web=WebConfig(secret_key="s" * 64),
        pbx=(),
        data_dir=tmp,
        recordings=RecordingsConfig(folders=(spool,)),
    )
    for name, role, ext in (
        ("sue", "supervisor", None),
        ("ann", "agent", "201"),
        ("bob", "agent", "202,203"),
    ):
        create_user(name, PASSWORD, role=role, extension=ext)
    yield Site(spool, outside, wav_bytes(2.0), make_app(config))
    database.close()


def add(site: Site, name: str, **fields: Any) -> Recording:
    """A recording file in the spool folder and its row, as the indexer writes them."""
    path = site.spool / name
    path.write_bytes(site.wav)
    values: dict[str, Any] = {
        "started_at": DAY,
        "pbx": "main",
        "call_id": name.removesuffix(".wav"),
        "caller": "+12025550101",
        "callee": "100",
        "agent": "201",
        "queue": "support",
        "disposition": "answered",
        "duration": 2.0,
        "size": len(site.wav),
        "format": "wav",
        "status": "present",
    } | fields
    return store.upsert(str(path), str(site.spool), **values)


def client_of(site: Site, user: str) -> FlaskClient:
    client = site.app.test_client()
    assert login(client, user).status_code == 302
    return client


def found(resp: Any) -> list[int]:
    """The recording ids a search page lists, in its order."""
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return [int(i) for i in re.findall(r'href="/recordings/(\d+)"', resp.get_data(as_text=True))]


def audits() -> list[AuditEntry]:
    return list(AuditEntry.select().order_by(AuditEntry.id))


def test_search_filters_newest_first(site: Site) -> None:
    a = add(site, "a.wav", started_at=DAY - timedelta(days=2), duration=30.0)
    b = add(site, "b.wav", started_at=DAY, caller="+12025550199", agent="202", queue="sales", duration=300.0)
    c = add(site, "c.wav", started_at=DAY + timedelta(days=1), disposition="missed", duration=5.0)
    d = add(site, "d.wav", started_at=DAY + timedelta(days=3), status="deleted")
    sue = client_of(site, "sue")
    assert found(sue.get("/recordings")) == [c.id, b.id, a.id]  # deleted ones only when asked for
    assert found(sue.get("/recordings?status=deleted")) == [d.id]
    assert found(sue.get("/recordings?status=all")) == [d.id, c.id, b.id, a.id]
    assert found(sue.get("/recordings?number=(202) 555-0199")) == [b.id]  # however the number is written
    assert found(sue.get("/recordings?number=5550101")) == [c.id, a.id]
    assert found(sue.get("/recordings?agent=202")) == [b.id]
    assert found(sue.get("/recordings?queue=support")) == [c.id, a.id]
    assert found(sue.get("/recordings?disposition=missed")) == [c.id]
    assert found(sue.get("/recordings?min_duration=10&max_duration=100")) == [a.id]
    day = DAY.astimezone().date()
    assert found(sue.get(f"/recordings?since={day}&until={day + timedelta(days=1)}")) == [c.id, b.id]
    assert found(sue.get(f"/recordings?since={day}&agent=201")) == [c.id]
    bad = sue.get(f"/recordings?since={day}&until={day - timedelta(days=1)}")
    assert bad.status_code == 400 and "before the “from” day" in bad.get_data(as_text=True)
    assert sue.get("/recordings?min_duration=lots").status_code == 400
    assert sue.get("/recordings?disposition=<b>").status_code == 400


def test_search_pages_keep_the_filters(site: Site) -> None:
    rows = [add(site, f"p{i}.wav", started_at=DAY + timedelta(minutes=i)) for i in range(55)]
    sue = client_of(site, "sue")
    first = sue.get("/recordings?queue=support")
    assert found(first) == [r.id for r in reversed(rows)][:50]
    page = first.get_data(as_text=True)
    assert "page 1 of 2 (55 in all)" in page and 'href="/recordings?queue=support&amp;page=2"' in page
    assert found(sue.get("/recordings?queue=support&page=2")) == [r.id for r in reversed(rows)][50:]


def test_an_agent_finds_and_hears_only_their_own_calls(site: Site) -> None:
    mine = add(site, "mine.wav", agent="201")
    theirs = add(site, "theirs.wav", agent="202")
    ann = client_of(site, "ann")
    assert found(ann.get("/recordings")) == [mine.id]
    assert found(ann.get("/recordings?agent=202")) == []
    assert found(ann.get("/recordings?status=all")) == [mine.id]
    assert found(client_of(site, "bob").get("/recordings")) == [theirs.id]  # bob answers on 202 and 203
    for path in (f"/recordings/{theirs.id}", f"/recordings/{theirs.id}/audio"):
        assert ann.get(path).status_code == 404
        assert ann.get(path, headers={"Range": "bytes=100-199"}).status_code == 404
    assert ann.get(f"/recordings/{theirs.id}/audio?download=1").status_code == 404
    call = ann.get("/recordings?call=main:theirs").get_data(as_text=True)
    assert f"/recordings/{theirs.id}/audio" not in call and "No recording of this call is yours" in call
    assert ann.get(f"/recordings/{mine.id}/audio", headers={"Range": "bytes=0-9"}).data == site.wav[:10]
    assert [a.target for a in audits()] == []  # refused requests leave no listen behind
    assert site.app.test_client().get(f"/recordings/{mine.id}/audio").status_code == 302  # to the login


def test_a_playback_streams_by_range_and_is_audited_once(site: Site) -> None:
    rec = add(site, "1700000001.1.wav")
    sue, size = client_of(site, "sue"), len(site.wav)
    before = datetime.now(UTC) - timedelta(seconds=1)
    first = sue.get(f"/recordings/{rec.id}/audio", headers={"Range": "bytes=0-"})
    assert first.status_code == 206 and first.data == site.wav
    assert first.headers["Content-Range"] == f"bytes 0-{size - 1}/{size}" and first.mimetype == "audio/wav"
    assert first.headers["Cache-Control"] == "private, no-store"
    middle = sue.get(f"/recordings/{rec.id}/audio", headers={"Range": f"bytes={size // 2}-{size // 2 + 999}"})
    assert middle.status_code == 206 and middle.data == site.wav[size // 2 : size // 2 + 1000]
    assert middle.headers["Content-Range"] == f"bytes {size // 2}-{size // 2 + 999}/{size}"
    tail = sue.get(f"/recordings/{rec.id}/audio", headers={"Range": f"bytes={size - 10}-"})
    assert tail.status_code == 206 and tail.data == site.wav[-10:]
    assert sue.get(f"/recordings/{rec.id}/audio", headers={"Range": f"bytes={size}-"}).status_code == 416
    [listen] = audits()  # the seeks are the same listen
    assert (listen.user, listen.action, listen.target) == ("sue", "listen", f"recording:{rec.id}")
    assert json.loads(listen.detail) == {"range": "bytes=0-", "address": "127.0.0.1"}
    assert before <= listen.at <= datetime.now(UTC) + timedelta(seconds=1)
    assert sue.get(f"/recordings/{rec.id}/audio", headers={"Range": "bytes=0-"}).status_code == 206
    assert len(audits()) == 1  # the player reopening its stream at once: the same listen
    AuditEntry.update(at=listen.at - timedelta(minutes=1)).execute()  # a minute later …
    whole = sue.get(f"/recordings/{rec.id}/audio")  # … a player without Range: a second listen
    assert whole.status_code == 200 and whole.data == site.wav
    assert whole.headers["Content-Disposition"] == "inline; filename=1700000001.1.wav"
    assert [(a.action, json.loads(a.detail)["range"]) for a in audits()] == [
        ("listen", "bytes=0-"),
        ("listen", None),
    ]


def test_a_download_is_an_attachment_and_audited(site: Site) -> None:
    rec = add(site, "1700000002.1.wav", agent="201")
    resp = client_of(site, "ann").get(f"/recordings/{rec.id}/audio?download=1")
    assert resp.status_code == 200 and resp.data == site.wav
    assert resp.headers["Content-Disposition"] == "attachment; filename=1700000002.1.wav"
    [entry] = audits()
    assert (entry.user, entry.action, entry.target) == ("ann", "download", f"recording:{rec.id}")
    page = client_of(site, "sue").get(f"/recordings/{rec.id}").get_data(as_text=True)
    assert "<td>ann</td><td>download</td><td>127.0.0.1</td>" in page  # the supervisor sees who did


def test_the_recording_page_has_a_player_and_no_inline_code(site: Site) -> None:
    rec = add(site, "1700000003.1.wav", legal_hold=True)
    page = client_of(site, "sue").get(f"/recordings/{rec.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'<audio controls preload="none" src="/recordings/{rec.id}/audio">' in html
    assert f'href="/recordings/{rec.id}/audio?download=1" download>Download</a>' in html
    assert "no retention policy deletes it" in html and 'href="/recordings?call=main:1700000003.1"' in html
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert audits() == []  # a page view is not a listen (preload="none")


def test_the_call_shows_its_recordings_and_the_calls_list_links_there(site: Site) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    save_call(
        CallRecord(
            pbx="main", call_id="1700000004.1", direction="inbound", started_at=now, caller="+12025550101",
            callee="100", agent="201", agents=["201"], answered_at=now, ended_at=now + timedelta(seconds=40),
            disposition="answered", talk_seconds=40.0, recording=str(site.spool / "1700000004.1.wav"),
        )
    )  # fmt: skip
    rec = add(site, "1700000004.1.wav", started_at=now)
    sue = client_of(site, "sue")
    calls = sue.get("/").get_data(as_text=True)
    assert 'href="/recordings?call=main%3A1700000004.1">● rec</a>' in calls
    html = sue.get("/recordings?call=main%3A1700000004.1").get_data(as_text=True)
    assert f'<audio controls preload="none" src="/recordings/{rec.id}/audio">' in html
    assert "No recording" in sue.get("/recordings?call=main:nope").get_data(as_text=True)


def test_deleted_is_410_and_missing_is_404_with_a_page_saying_so(site: Site) -> None:
    deleted = add(site, "gone.wav", status="deleted", deleted_at=DAY, deleted_by="policy 90 days")
    missing = add(site, "lost.wav", status="missing")
    vanished = add(site, "vanished.wav")
    (site.spool / "vanished.wav").unlink()  # not yet noticed by a scan
    sue = client_of(site, "sue")
    for path in (f"/recordings/{deleted.id}", f"/recordings/{deleted.id}/audio"):
        resp = sue.get(path, headers={"Range": "bytes=0-"})
        assert resp.status_code == 410 and "was deleted" in resp.get_data(as_text=True)
        assert "policy 90 days" in resp.get_data(as_text=True) and site.wav[:44] not in resp.data
    for path in (f"/recordings/{missing.id}/audio", f"/recordings/{vanished.id}/audio"):
        resp = sue.get(path)
        assert resp.status_code == 404 and "cannot be played" in resp.get_data(as_text=True)
    assert audits() == []


@pytest.mark.parametrize(
    "url",
    [
        "/recordings/../../etc/passwd",
        "/recordings/%2e%2e/%2e%2e/etc/passwd",
        "/recordings/%2e%2e%2f%2e%2e%2fetc%2fpasswd/audio",
        "/recordings//etc/passwd",
        "/recordings/%2Fetc%2Fpasswd/audio",
        "/recordings/-1/audio",
        "/recordings/999/audio",
        "/recordings/",
        "/recordings/1/",
        "/recordings/1/audio/",
    ],
)
def test_urls_name_ids_only(site: Site, url: str) -> None:
    add(site, "1.wav")
    resp = client_of(site, "sue").get(url)
    assert resp.status_code == 404, url
    assert SECRET not in resp.data and site.wav[:44] not in resp.data and b"1.wav" not in resp.data


def _symlink_out(site: Site) -> str:
    (site.spool / "evil.wav").symlink_to(site.outside / "secret.txt")
    return str(site.spool / "evil.wav")


@pytest.mark.parametrize(
    "stored",
    [
        lambda s: str(s.outside / "secret.txt"),
        lambda s: f"{s.spool}/../outside/secret.txt",
        lambda s: "../outside/secret.txt",
        lambda s: "%2e%2e/outside/secret.txt",
        lambda s: "/etc/passwd",
        _symlink_out,
        lambda s: str(s.spool),
    ],
)
def test_a_tampered_row_serves_nothing_outside(site: Site, stored: Any) -> None:
    rec = add(site, "ok.wav")
    Recording.update(path=stored(site)).where(Recording.id == rec.id).execute()
    sue = client_of(site, "sue")
    for headers in ({}, {"Range": "bytes=0-"}, {"Range": "bytes=5-"}):
        resp = sue.get(f"/recordings/{rec.id}/audio", headers=headers)
        assert resp.status_code == 404 and SECRET not in resp.data and b"root:" not in resp.data
    assert audits() == []


def test_an_admin_puts_a_recording_on_legal_hold_from_its_page(site: Site) -> None:
    rec = add(site, "1795430000.9.wav")
    create_user("root", PASSWORD, role="admin")
    admin = client_of(site, "root")
    page = admin.get(f"/recordings/{rec.id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token and "Put on legal hold" in page
    resp = admin.post(
        f"/admin/recordings/{rec.id}/hold",
        data={"csrf_token": token.group(1), "next": f"/recordings/{rec.id}"},
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/recordings/{rec.id}")
    assert Recording.get_by_id(rec.id).legal_hold
    assert "Release the legal hold" in admin.get(f"/recordings/{rec.id}").get_data(as_text=True)
    assert [(a.user, a.action) for a in audits() if a.action == "hold"] == [("root", "hold")]
    supervisor = client_of(site, "sue").get(f"/recordings/{rec.id}").get_data(as_text=True)
    assert "no retention policy deletes it" in supervisor and "Release the legal hold" not in supervisor
