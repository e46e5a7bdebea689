"""The recordings pages: search, a recording's page with its player, and the audio itself, by id only.

Supervisors and admins find every recording; an agent only those of calls they talked on
(their extensions): another agent's recording is as absent (404) as a missing one, on every
request, Range requests included. The audio is served by the row's id alone, its real path
re-resolved inside a `[recordings]` folder each time (pbxlink.storage.recording_files). The
first request of a playback (no Range, or `bytes=0-`) and every download are audited; the
later Range chunks a player asks for while seeking are not, nor a player reopening its stream at
once, so one listen is one row.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from pbxlink.config import Config
from pbxlink.storage import recordings as store
from pbxlink.storage.models import AuditEntry, Recording, utcnow
from pbxlink.storage.recording_files import Refused, open_regular, resolve

from .api import int_arg
from .audio import stream
from .auth import PanelUser

log = logging.getLogger(__name__)

bp = Blueprint("recording_pages", __name__)

PER_PAGE = 50
DISPOSITIONS = ("answered", "missed")
#: the status filter: "all" is any status
STATUSES: dict[str, str | None] = {
    "present": "present",
    "changed": "changed",
    "missing": "missing",
    "deleted": "deleted",
    "all": None,
}
FIELDS = (
    "number",
    "agent",
    "queue",
    "since",
    "until",
    "disposition",
    "min_duration",
    "max_duration",
    "status",
)
FIRST_BYTES = ("bytes=0-",)  # a playback's first request; a seek asks for a later start
AUDIT_SHOWN = 20
SAME_PLAYBACK = timedelta(seconds=10)  # the same user's listen again within this is the same playback

_audit_lock = threading.Lock()


@bp.get("/recordings")
@login_required
def index() -> ResponseReturnValue:
    viewer = _viewer()
    call = request.args.get("call", "").strip()
    if call:
        pbx, _, call_id = call.partition(":")
        rows = [r for r in store.for_call(pbx, call_id) if may_hear(viewer, r)]
        return render_template("recordings/call.html", call=call, rows=[recording_row(r) for r in rows])
    form = {k: request.args.get(k, "").strip() for k in FIELDS}
    try:
        f = _filter(viewer, form)
    except ValueError as exc:
        return render_template("recordings/index.html", form=form, error=str(exc), **_empty()), 400
    page = int_arg("page", 1, 1, None)
    rows, total = ([], 0) if f is None else store.search(f, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    args = {k: v for k, v in form.items() if v}
    return render_template(
        "recordings/index.html",
        form=form,
        error=None,
        rows=[recording_row(r) for r in rows],
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        total=total,
        newer=args | {"page": page - 1},
        older=args | {"page": page + 1},
        **_choices(),
    )


@bp.get("/recordings/<int:rec_id>")
@login_required
def detail(rec_id: int) -> ResponseReturnValue:
    rec = _visible(rec_id)
    audits: list[dict[str, Any]] = []
    if _viewer().sees_all:
        entries = AuditEntry.select().where(AuditEntry.target == f"recording:{rec.id}")
        audits = [_audit(e) for e in entries.order_by(AuditEntry.at.desc()).limit(AUDIT_SHOWN)]
    return render_template("recordings/detail.html", r=recording_row(rec), audits=audits)


@bp.get("/recordings/<int:rec_id>/audio")
@login_required
def audio(rec_id: int) -> ResponseReturnValue:
    rec = _visible(rec_id)
    cfg: Config = current_app.extensions["pbxlink.config"]
    try:
        file, st = open_regular(resolve(rec.path, cfg.recordings.folders))
    except (Refused, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.warning(
            "recording #%s refused to %s: %s (stored path %r)", rec.id, _viewer().username, why, rec.path
        )
        return _gone(rec, 404)
    download = request.args.get("download") == "1"
    response = stream(file, st, rec.path, download=download)
    wanted = request.headers.get("Range")
    if wanted is None or "".join(wanted.split()) in FIRST_BYTES:
        _audit_once(rec.id, "download" if download else "listen", wanted)
    return response


@bp.after_request
def _private(response: Response) -> Response:
    """Recordings, and the pages about them, stay out of every shared cache."""
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _filter(viewer: PanelUser, form: dict[str, str]) -> store.RecordingFilter | None:
    """The search the form asks, within what the viewer may see (None: nothing); ValueError says why not."""
    agent = form["agent"] or None
    agents = None if viewer.sees_all else viewer.extensions
    if agents is not None and (not agents or (agent is not None and agent not in agents)):
        return None  # an agent asking for another agent's recordings finds none
    since, until = local_day(form["since"], "from"), local_day(form["until"], "to")
    if since is not None and until is not None and until < since:
        raise ValueError("The “to” day is before the “from” day.")
    if form["disposition"] and form["disposition"] not in DISPOSITIONS:
        raise ValueError(f"Disposition must be one of {', '.join(DISPOSITIONS)}.")
    status = form["status"] or "present"
    if status not in STATUSES:
        raise ValueError(f"Status must be one of {', '.join(STATUSES)}.")
    return store.RecordingFilter(
        number=form["number"] or None,
        agent=agent,
        agents=agents,
        queue=form["queue"] or None,
        since=since,
        until=until + timedelta(days=1) if until is not None else None,  # the whole "to" day
        disposition=form["disposition"] or None,
        min_duration=_seconds(form["min_duration"], "minimum"),
        max_duration=_seconds(form["max_duration"], "maximum"),
        status=STATUSES[status],
    )


def local_day(raw: str, which: str) -> datetime | None:
    """A `date` input (the server's local day) as the UTC time it starts."""
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"The “{which}” day must be a date such as 2026-03-02.") from None
    return datetime.combine(day, time()).astimezone(UTC)


def _seconds(raw: str, which: str) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10**7:
        raise ValueError(f"The {which} duration must be a number of seconds.")
    return value


def _audit_once(rec_id: int, action: str, wanted: str | None) -> None:
    """The audit row of a listen or download, unless this user's same action is a moment old: a
    player reopens its stream (Chromium asks `bytes=0-` twice) and that is still one listen."""
    user, target, address = _viewer().username, f"recording:{rec_id}", request.remote_addr
    with _audit_lock:  # two requests of one playback arrive together, on two threads
        recent = AuditEntry.select().where(
            AuditEntry.user == user,
            AuditEntry.action == action,
            AuditEntry.target == target,
            AuditEntry.at >= utcnow() - SAME_PLAYBACK,
        )
        if recent.exists():
            return
        store.audit(user, action, target, {"range": wanted, "address": address})
    log.info("recording #%s: %s by %s from %s", rec_id, action, user, address)


def _viewer() -> PanelUser:
    return current_user._get_current_object()  # type: ignore[no-any-return]


def may_hear(viewer: PanelUser, rec: Recording) -> bool:
    return viewer.sees_all or (rec.agent is not None and rec.agent in viewer.extensions)


def _visible(rec_id: int) -> Recording:
    """The recording, if this viewer may have it; deleted ones answer 410 with a page saying so."""
    rec = store.get(rec_id)
    if rec is None or not may_hear(_viewer(), rec):  # another agent's recording is as absent as a missing one
        abort(404, f"no recording #{rec_id}")
    if rec.status == "deleted":
        abort(_gone(rec, 410))
    if rec.status == "missing":
        abort(_gone(rec, 404))
    return rec


def _gone(rec: Recording, code: int) -> Response:
    page = render_template("recordings/gone.html", r=recording_row(rec), code=code)
    return current_app.response_class(page, status=code, mimetype="text/html")


def _local(ts: datetime | None) -> str:
    return "" if ts is None else ts.astimezone().strftime("%Y-%m-%d %H:%M")


def recording_row(r: Recording) -> dict[str, Any]:
    return {
        "id": r.id,
        "started": _local(r.started_at),
        "direction": r.direction or "",
        "caller": r.caller_e164 or r.caller_tail or "",
        "callee": r.callee_e164 or r.callee_tail or "",
        "agent": r.agent or "",
        "queue": r.queue or "",
        "disposition": r.disposition or "",
        "duration": r.duration,
        "size_kb": math.ceil((r.size or 0) / 1024),
        "format": r.format or "",
        "status": r.status,
        "legal_hold": r.legal_hold,
        "call": f"{r.pbx}:{r.call_id}" if r.pbx and r.call_id else "",
        "deleted": _local(r.deleted_at),
        "deleted_by": r.deleted_by or "",
    }


def _audit(e: AuditEntry) -> dict[str, Any]:
    detail = json.loads(e.detail) if e.detail else {}
    return {"at": _local(e.at), "user": e.user, "action": e.action, "address": detail.get("address") or ""}


def _choices() -> dict[str, Any]:
    return {"dispositions": DISPOSITIONS, "statuses": tuple(STATUSES)}


def _empty() -> dict[str, Any]:
    return {"rows": [], "page": 1, "pages": 1, "total": 0, "newer": {}, "older": {}, **_choices()}
