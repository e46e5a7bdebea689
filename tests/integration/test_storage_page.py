"""The storage page through Flask's test client, over real SQLite rows and real files: GB per month, the
retention preview, legal hold and release (CSRF, audit log), "run now", and admins only."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pbxlink.web import create_app
from pbxlink.web import retention as retention_web

from pbxlink.config import RecordingsConfig, RetentionPolicyConfig
from pbxlink.storage.models import AuditEntry, Recording
from pbxlink.storage.users import create_user
from tests.unit import test_web_api
from tests.unit.test_web_api import PASSWORD, csrf_token, login

config = test_web_api.config  # the fixture: a migrated SQLite database and its Config

NOW = datetime.now(UTC)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "monitor"
    path.mkdir()
    return path


@pytest.fixture
def app(config: Any, folder: Path) -> Flask:
    cfg = dataclasses.replace(
        config,
        recordings=RecordingsConfig(folders=(folder,)),
        retention_policies=(
            RetentionPolicyConfig(name="sales", keep_days=30, queues=("sales",), enabled=True),
            RetentionPolicyConfig(name="everything", keep_days=365),
        ),
    )
    app = create_app(cfg)
    if "retention" not in app.blueprints:  # until app.py registers it
        app.register_blueprint(retention_web.bp)
    return app


def add(folder: Path, name: str, started: datetime, size: int, **fields: Any) -> Recording:
    path = folder / name
    path.write_bytes(b"RIFF")  # the row's size is what the page adds up
    return Recording.create(path=str(path), folder=str(folder), started_at=started, size=size, **fields)


@pytest.fixture
def rows(folder: Path) -> dict[str, Recording]:
    return {
        "old_sales": add(folder, "a.wav", datetime(2025, 1, 10, tzinfo=UTC), 3_000_000_000, queue="sales"),
        "old_sales_2": add(folder, "b.wav", datetime(2025, 1, 20, tzinfo=UTC), 1_000_000_000, queue="sales"),
        "old_other": add(folder, "c.wav", datetime(2025, 2, 3, tzinfo=UTC), 500_000_000, queue="support"),
        "new": add(folder, "d.wav", NOW - timedelta(days=1), 250_000_000, queue="sales"),
        "held": add(folder, "e.wav", datetime(2025, 1, 5, tzinfo=UTC), 7, queue="sales", legal_hold=True),
        "gone": add(folder, "f.wav", datetime(2025, 1, 5, tzinfo=UTC), 9, status="deleted"),
    }


def client_as(app: Flask, role: str) -> Any:
    create_user(role, PASSWORD, role=role, extension="201" if role == "agent" else None)
    client = app.test_client()
    assert login(client, role).status_code == 302
    return client


def cells(html: str, table: str) -> list[list[str]]:
    body = html.split(f'class="{table}"', 1)[1].split("</table>", 1)[0]
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
        if "<td" in row
    ]


def test_the_admin_sees_gb_per_month_the_preview_and_the_holds(
    app: Flask, rows: dict[str, Recording]
) -> None:
    html = client_as(app, "admin").get("/admin/storage").get_data(as_text=True)
    months = cells(html, "storage-months")
    assert months[:2] == [["2025-01", "3", "4.00"], ["2025-02", "1", "0.50"]]  # the held file counts, 7 bytes
    assert months[-1] == [(NOW - timedelta(days=1)).strftime("%Y-%m"), "1", "0.25"]
    assert "4.75 GB" in html  # the total still on disk: the deleted row's file is not counted
    preview = cells(html, "retention-preview")
    assert [row[:5] for row in preview] == [
        ["sales", "enabled", "30", "2", "4.00"],
        ["everything", "preview only", "365", "1", "0.50"],
    ]
    assert "Delete the 2 files" in html and 'name="confirm"' in html
    assert "Legal holds (1)" in html and f'action="/admin/recordings/{rows["held"].id}/release"' in html
    assert "<script" not in html and "style=" not in html


def test_hold_and_release_need_csrf_and_are_audited(app: Flask, rows: dict[str, Recording]) -> None:
    admin = client_as(app, "admin")
    rec = rows["old_sales"]
    assert admin.post(f"/admin/recordings/{rec.id}/hold").status_code == 400  # no CSRF token
    assert not Recording.get_by_id(rec.id).legal_hold
    token = csrf_token(admin, "/admin/storage")
    resp = admin.post(
        f"/admin/recordings/{rec.id}/hold", data={"csrf_token": token, "next": "//evil.example"}
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/storage"
    assert Recording.get_by_id(rec.id).legal_hold
    page = admin.get("/admin/storage").get_data(as_text=True)
    assert cells(page, "retention-preview")[0][3] == "1"  # held: out of the preview at once
    resp = admin.post(
        f"/admin/recordings/{rec.id}/release", data={"csrf_token": token, "next": "/recordings"}
    )
    assert resp.headers["Location"] == "/recordings"
    assert not Recording.get_by_id(rec.id).legal_hold
    entries = [(e.user, e.action, e.target) for e in AuditEntry.select().order_by(AuditEntry.id)]
    assert entries == [("admin", "hold", f"recording:{rec.id}"), ("admin", "release", f"recording:{rec.id}")]
    assert admin.post("/admin/recordings/999999/hold", data={"csrf_token": token}).status_code == 404


def test_run_now_wants_the_box_ticked_then_deletes_what_the_preview_showed(
    app: Flask, rows: dict[str, Recording]
) -> None:
    admin = client_as(app, "admin")
    token = csrf_token(admin, "/admin/storage")
    admin.post("/admin/retention/run", data={"csrf_token": token})
    assert all(Path(r.path).exists() for r in rows.values())
    resp = admin.post("/admin/retention/run", data={"csrf_token": token, "confirm": "yes"})
    assert resp.status_code == 302
    gone = {k for k, r in rows.items() if not Path(r.path).exists()}
    assert gone == {"old_sales", "old_sales_2"}
    assert Recording.get_by_id(rows["old_sales"].id).deleted_by == "retention:sales"
    (entry,) = AuditEntry.select().where(AuditEntry.action == "retention")
    assert entry.user == "admin" and json.loads(entry.detail)["bytes"] == 4_000_000_000
    assert "2 recordings deleted (4.00 GB)" in admin.get("/admin/storage").get_data(as_text=True)


@pytest.mark.parametrize("role", ["agent", "supervisor"])
def test_only_admins(app: Flask, rows: dict[str, Recording], role: str) -> None:
    client = client_as(app, role)
    token = csrf_token(client, "/")
    assert client.get("/admin/storage").status_code == 403
    rec = rows["old_sales"]
    assert client.post(f"/admin/recordings/{rec.id}/hold", data={"csrf_token": token}).status_code == 403
    assert (
        client.post("/admin/retention/run", data={"csrf_token": token, "confirm": "yes"}).status_code == 403
    )
    assert not Recording.get_by_id(rec.id).legal_hold and Path(rec.path).exists()
    assert AuditEntry.select().count() == 0
