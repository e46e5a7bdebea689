"""The storage page (admins): how much the recordings take, month by month, what the retention
policies would free, and the legal holds; "run now" for the enabled policies; hold and release.

Every hold, release and manual run is written to the audit log with who did it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import peewee as pw
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from pbxlink.config import Config
from pbxlink.services.retention import WITH_FILE, RetentionService, preview
from pbxlink.storage.models import AuditEntry, Recording, db_proxy

from .auth import admin_required

bp = Blueprint("retention", __name__)

GROWTH_MONTHS = 3
HELD_SHOWN = 100


@bp.get("/admin/storage")
@admin_required
def storage() -> str:
    months = _months()
    recent = months[-GROWTH_MONTHS:]
    held = Recording.select().where(Recording.legal_hold).order_by(Recording.started_at.desc())
    return render_template(
        "retention/storage.html",
        months=months,
        total_gb=sum(m["gb"] for m in months),
        total_files=sum(m["files"] for m in months),
        growth_gb=sum(m["gb"] for m in recent) / GROWTH_MONTHS if recent else 0.0,
        growth_months=GROWTH_MONTHS,
        plan=preview(_config().retention_policies, datetime.now(UTC)),
        held=list(held.limit(HELD_SHOWN)),
        held_count=held.count(),
        retention_time=_config().recordings.retention_time,
    )


@bp.post("/admin/recordings/<int:rec_id>/hold")
@admin_required
def hold(rec_id: int) -> ResponseReturnValue:
    return _set_hold(rec_id, True)


@bp.post("/admin/recordings/<int:rec_id>/release")
@admin_required
def release(rec_id: int) -> ResponseReturnValue:
    return _set_hold(rec_id, False)


@bp.post("/admin/retention/run")
@admin_required
def run_now() -> ResponseReturnValue:
    if request.form.get("confirm") != "yes":
        flash("Tick the box to confirm: the files listed under the enabled policies are deleted.", "error")
        return redirect(url_for(".storage"))
    result = RetentionService.from_config(_config()).run(str(current_user.username))
    flash(
        f"Retention run: {result.deleted} recordings deleted ({result.bytes / 1e9:.2f} GB), "
        f"{result.missing} already missing, {result.refused} refused (see the log), "
        f"{result.transcoded} transcoded."
    )
    return redirect(url_for(".storage"))


def _set_hold(rec_id: int, on: bool) -> ResponseReturnValue:
    rec = Recording.get_or_none(Recording.id == rec_id)
    if rec is None:
        abort(404)
    action = "hold" if on else "release"
    if rec.legal_hold != on:
        Recording.update(legal_hold=on).where(Recording.id == rec_id).execute()
        detail = {"path": rec.path, "status": rec.status}
        AuditEntry.create(
            at=datetime.now(UTC),
            user=current_user.username,
            action=action,
            target=f"recording:{rec_id}",
            detail=json.dumps(detail),
        )
        flash(f"Recording #{rec_id} is {'on legal hold: no policy deletes it' if on else 'released'}.")
    else:
        flash(f"Recording #{rec_id} was {'on hold' if on else 'not on hold'} already: nothing changed.")
    return redirect(_local(request.form.get("next")) or url_for(".storage"))


def _local(target: str | None) -> str | None:
    """A path on this site to go back to, never another site (`//host`, `/\\host`)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


def _months() -> list[dict[str, Any]]:
    """Files and GB still on disk, per month of the call's start, oldest first."""
    if isinstance(db_proxy.obj, pw.PostgresqlDatabase):
        month = pw.fn.to_char(Recording.started_at, "YYYY-MM")
    else:
        month = pw.fn.strftime("%Y-%m", Recording.started_at)
    rows: Any = (  # (month, files, bytes) tuples
        Recording.select(month.alias("month"), pw.fn.COUNT(Recording.id), pw.fn.SUM(Recording.size))
        .where(Recording.status.in_(WITH_FILE))
        .group_by(month)
        .order_by(month)
        .tuples()
    )
    return [{"month": m, "files": n, "gb": (size or 0) / 1e9} for m, n, size in rows]


def _config() -> Config:
    cfg: Config = current_app.extensions["pbxlink.config"]
    return cfg
