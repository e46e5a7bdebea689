"""The campaigns pages: every campaign with its live progress, one campaign's report, contacts and
imports, start / pause / resume / stop, and the CSV export.

Admins and supervisors run campaigns; agents get 403. Start and the rest only change the
campaign's status in the database (`CampaignService.command`): the running service notices
within a second, so the panel needs no service object. The live numbers come from the JSON
API (web/campaign_api.py), polled by static/campaigns.js. `register` adds every campaign and
do-not-call blueprint to the app.
"""

from __future__ import annotations

import functools
import io
import logging
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from pbxlink.services import csv_safe
from pbxlink.services.campaigns import CampaignService
from pbxlink.storage import campaigns as store
from pbxlink.storage.campaign_reports import export_rows, progress
from pbxlink.storage.models import Campaign, CampaignImport
from pbxlink.storage.recordings import audit

from .api import int_arg
from .auth import _unauthorized
from .callbacks import local

log = logging.getLogger(__name__)

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

PER_PAGE = 50
TABS = {
    "": "All",
    "pending": "Pending",
    "dialing": "Dialling",
    "done": "Done",
    "dnc": "Do not call",
    "stopped": "Stopped",
}
VERB_LABELS = {"start": "Start", "pause": "Pause", "resume": "Resume", "stop": "Stop"}
OUTCOME_LABELS = {
    "answered": "answered",
    "machine": "machine",
    "busy": "busy",
    "no_answer": "no answer",
    "failed": "failed",
    "no_agent": "no agent free",
    "unknown": "unknown",
}
RECENT_IMPORTS = 10


def manager_required(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Logged in as an admin or a supervisor, else the login page (or 401), or 403 for agents."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if not current_user.is_authenticated:
            return _unauthorized()
        if not current_user.sees_all:
            abort(403, "campaigns are run by supervisors and admins")
        return view(*args, **kwargs)

    return wrapped


def register(app: Flask) -> None:
    """The campaign pages, their imports, the do-not-call list and their JSON API."""
    from . import campaign_api, campaign_form, campaign_imports, dnc

    for blueprint in (bp, campaign_form.bp, campaign_imports.bp, dnc.bp, campaign_api.bp):
        app.register_blueprint(blueprint)
    campaign_imports.limit_uploads(app)
    app.extensions["csrf"].exempt(campaign_api.bp)  # bearer tokens; a session's POSTs are checked there


def verbs_for(status: str) -> list[str]:
    """The commands that apply to a campaign in `status` (what CampaignService.command accepts)."""
    verbs = {
        "draft": ["start", "stop"],
        "running": ["pause", "stop"],
        "paused": ["resume", "stop"],
        "completed": ["start"],
    }
    return verbs.get(status, [])


def campaign_or_404(campaign_id: int) -> Campaign:
    c = store.get(campaign_id)
    if c is None:
        abort(404, f"no campaign #{campaign_id}")
    return c


@bp.app_template_filter("done_percent")
def done_percent(p: dict[str, Any]) -> int:
    """How much of the list is done, in whole percent (campaigns.js reckons it the same way)."""
    return math.floor(100 * (p["contacts"] - p["remaining"]) / p["contacts"]) if p["contacts"] else 0


@bp.app_template_filter("rate")
def rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@bp.app_template_filter("eta")
def eta(seconds: int | None) -> str:
    """Time left as campaigns.js shows it: "1 h 05 min", "12 min", "under a minute"."""
    if seconds is None:
        return "—"
    minutes = math.ceil(seconds / 60)
    if minutes <= 1:
        return "under a minute"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


@bp.get("")
@manager_required
def index() -> str:
    now = datetime.now(UTC)
    rows = [{"c": c, "p": progress(c, now)} for c in store.all_campaigns()]
    return render_template("campaigns/index.html", rows=rows)


@bp.get("/<int:campaign_id>")
@manager_required
def detail(campaign_id: int) -> str:
    c = campaign_or_404(campaign_id)
    status = request.args.get("status", "")
    if status not in TABS:
        abort(400, f"status must be one of {', '.join(k for k in TABS if k)}")
    page = int_arg("page", 1, 1, None)
    report = progress(c, datetime.now(UTC))
    contacts, total = store.contacts(c.id, status or None, PER_PAGE, (page - 1) * PER_PAGE)
    attempts = store.attempts_of([k.id for k in contacts])
    imports = list(
        CampaignImport.select()
        .where(CampaignImport.campaign == c.id)
        .order_by(CampaignImport.id.desc())
        .limit(RECENT_IMPORTS)
    )
    return render_template(
        "campaigns/detail.html",
        c=c,
        s=store.settings_of(c),
        p=report,
        verbs=verbs_for(c.status),
        verb_labels=VERB_LABELS,
        tabs=TABS,
        status=status,
        counts={"": report["contacts"], **report["statuses"]},
        contacts=[
            {
                "k": k,
                "fields": store.fields_of(k),
                "attempts": [
                    {
                        "at": local(a.started_at),
                        "outcome": a.outcome or "",
                        "agent": a.agent,
                        "detail": a.detail,
                    }
                    for a in attempts[k.id]
                ],
            }
            for k in contacts
        ],
        outcome_labels=OUTCOME_LABELS,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        total=total,
        imports=imports,
        local=local,
    )


@bp.post("/<int:campaign_id>/<any(start, pause, resume, stop):verb>")
@manager_required
def command(campaign_id: int, verb: str) -> ResponseReturnValue:
    c = campaign_or_404(campaign_id)
    if verb == "stop" and request.form.get("confirm") != "yes":
        flash(f"Campaign {c.name} was not stopped: tick the box to confirm (stopping is final).", "error")
        return redirect(url_for(".detail", campaign_id=c.id))
    try:
        said = CampaignService.command(c, verb)
    except ValueError as exc:
        flash(f"{str(exc)[0].upper()}{str(exc)[1:]}.", "error")
    else:
        log.info("campaign %s: %s by %s", c.name, verb, current_user.username)
        flash(f"{said[0].upper()}{said[1:]}.")
    return redirect(url_for(".detail", campaign_id=c.id))


@bp.get("/<int:campaign_id>/export.csv")
@manager_required
def export(campaign_id: int) -> Response:
    """Every contact's every dial as CSV, streamed; formulas neutralised; named by the id, not the name."""
    c = campaign_or_404(campaign_id)
    audit(current_user.username, "export", f"campaign:{c.id}")
    log.info("campaign %s: exported by %s", c.name, current_user.username)
    resp = Response(stream_with_context(_csv(export_rows(c))), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="campaign-{c.id}.csv"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _csv(rows: Iterator[list[Any]], batch: int = 200) -> Iterator[str]:
    buffer = io.StringIO()
    out = csv_safe.writer(buffer)
    for n, row in enumerate(rows, start=1):
        out.writerow(row)
        if n % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
