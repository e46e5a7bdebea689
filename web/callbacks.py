"""The callbacks page: who is waiting to be called back, what came of each attempt, and the actions on them.

Supervisors and admins see and steer every callback; an agent sees the callbacks assigned
to (or missed by) their own extensions and may only "call now" those. Every action goes
through the callback store, which refuses a callback that is no longer open (done, failed
or cancelled): the page says so instead of pretending. `GET /callbacks/waiting` is the
count the screen-pop page shows; `GET /api/v1/callbacks` the same lists as JSON.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from peewee import fn

from pbxlink.services.callback_attempts import WORDS as OUTCOMES
from pbxlink.storage import callbacks as store
from pbxlink.storage.models import Call, Callback, User

from .api import authenticate, int_arg
from .auth import PanelUser, safe_next

log = logging.getLogger(__name__)

bp = Blueprint("callbacks", __name__, url_prefix="/callbacks")
api_bp = Blueprint("callbacks_api", __name__, url_prefix="/api/v1")
api_bp.before_request(authenticate)

PER_PAGE = 50
MAX_PER_PAGE = 200
TABS = {
    "pending": "Pending",
    "in_progress": "In progress",
    "done": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
SOURCES = {"missed_call": "missed call", "web": "website request", "manual": "added by hand"}
EXTENSION = re.compile(r"[A-Za-z0-9_*#+.-]{1,32}")  # as the user settings accept it
LOCAL_INPUT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?")
MAX_REASON = 200
MAX_AHEAD = timedelta(days=366)


@bp.get("")
@login_required
def index() -> str:
    viewer = _viewer()
    status = request.args.get("status") or "pending"
    if status not in TABS:
        abort(400, f"status must be one of {', '.join(TABS)}")
    page = int_arg("page", 1, 1, None)
    rows, total = _page(viewer, status, PER_PAGE, (page - 1) * PER_PAGE)
    missed = _missed_calls(rows)
    return render_template(
        "callbacks/index.html",
        tabs=TABS,
        status=status,
        counts=_counts(viewer),
        rows=[_row(cb, missed.get(cb.missed_call or "")) for cb in rows],
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        total=total,
        **_form_context(),
    )


@bp.get("/<int:cb_id>")
@login_required
def detail(cb_id: int) -> str:
    cb = store.get(cb_id)
    if cb is None or not _sees(_viewer(), cb):  # another agent's callback is as absent as a missing one
        abort(404, f"no callback #{cb_id}")
    attempts = store.attempts_of(cb_id)
    calls = {c.origin: c for c in Call.select().where(Call.origin.in_([a.tag for a in attempts]))}
    return render_template(
        "callbacks/detail.html",
        cb=_row(cb, _missed_calls([cb]).get(cb.missed_call or "")),
        attempts=[
            {
                "started": local(a.started_at),
                "ended": local(a.ended_at),
                "outcome": OUTCOMES.get(a.outcome or "", a.outcome or "under way"),
                "outcome_key": a.outcome or "",
                "by": a.by or "",
                "call": calls.get(a.tag),
            }
            for a in attempts
        ],
        **_form_context(),
    )


@bp.post("/<int:cb_id>/call-now")
@login_required
def call_now(cb_id: int) -> ResponseReturnValue:
    cb = _acted_on(cb_id, agents_may=True)
    if cb is not None and _done(store.call_now(cb_id, _viewer().username), cb, "call now"):
        flash(f"Callback #{cb_id} to {cb.number} is due now: pbxlink places it within moments.")
    return _back()


@bp.post("/<int:cb_id>/reschedule")
@login_required
def reschedule(cb_id: int) -> ResponseReturnValue:
    cb = _acted_on(cb_id)
    if cb is None:
        return _back()
    raw = request.form.get("due_at", "")
    try:
        due = parse_local(raw, datetime.now(UTC))
    except ValueError as exc:
        flash(f"Callback #{cb_id} was not rescheduled: {exc}", "error")
        return _back()
    if _done(store.reschedule(cb_id, due, _viewer().username), cb, "reschedule"):
        flash(f"Callback #{cb_id} to {cb.number} is due {local(due)} {due.astimezone().tzname()}.")
    return _back()


@bp.post("/<int:cb_id>/assign")
@login_required
def assign(cb_id: int) -> ResponseReturnValue:
    cb = _acted_on(cb_id)
    if cb is None:
        return _back()
    agent = request.form.get("agent", "").strip() or None
    if agent is not None and EXTENSION.fullmatch(agent) is None:
        flash(f"Callback #{cb_id} was not assigned: an agent is an extension such as 201.", "error")
    elif _done(store.assign(cb_id, agent, _viewer().username), cb, "assign"):
        flash(f"Callback #{cb_id} to {cb.number} is " + (f"assigned to {agent}." if agent else "unassigned."))
    return _back()


@bp.post("/<int:cb_id>/cancel")
@login_required
def cancel(cb_id: int) -> ResponseReturnValue:
    cb = _acted_on(cb_id)
    if cb is None:
        return _back()
    reason = " ".join(request.form.get("reason", "").split())[:MAX_REASON]
    if not reason:
        flash(f"Callback #{cb_id} was not cancelled: say why (the reason is kept with it).", "error")
    elif _done(store.cancel(cb_id, reason, _viewer().username), cb, "cancel"):
        flash(f"Callback #{cb_id} to {cb.number} is cancelled.")
    return _back()


@bp.get("/waiting")
def waiting() -> ResponseReturnValue:
    """The open callbacks for the logged-in user's extensions, for the screen-pop page's badge."""
    if not current_user.is_authenticated:
        return jsonify(error="login required"), 401
    extensions = _viewer().extensions
    resp = jsonify(waiting=store.waiting_for(extensions) if extensions else 0)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@api_bp.get("/callbacks")
def list_callbacks() -> Response:
    """`?status=pending|in_progress|done|failed|cancelled` (default: all), paged like /api/v1/calls."""
    status = request.args.get("status") or None
    if status is not None and status not in TABS:
        abort(400, f"invalid status: must be one of {', '.join(TABS)}")
    page = int_arg("page", 1, 1, None)
    per_page = int_arg("per_page", PER_PAGE, 1, MAX_PER_PAGE)
    rows, total = _page(g.viewer, status, per_page, (page - 1) * per_page)
    more = page * per_page < total
    args: dict[str, Any] = {**request.args, "page": page + 1}
    return jsonify(
        callbacks=[store.to_dict(cb) for cb in rows],
        page=page,
        per_page=per_page,
        total=total,
        counts=_counts(g.viewer),
        next=url_for(".list_callbacks", **args, _external=True) if more else None,
    )


def parse_local(raw: str, now: datetime) -> datetime:
    """A `datetime-local` value, in the server's timezone, as UTC; ValueError says what is wrong with it."""
    text = raw.strip()
    if LOCAL_INPUT.fullmatch(text) is None:
        shown = text[:40] or "nothing"
        raise ValueError(f"“{shown}” is not a date and time; give one as YYYY-MM-DD HH:MM.")
    try:
        due = datetime.fromisoformat(text).astimezone(UTC)  # naive: the server's local time
    except ValueError:
        raise ValueError(f"{text} is not a date that exists.") from None
    if due < now - timedelta(minutes=1):
        raise ValueError(f"{local(due)} has passed; use “Call now” to call at once.")
    if due > now + MAX_AHEAD:
        raise ValueError(f"{local(due)} is more than a year ahead.")
    return due


def local(ts: datetime | None) -> str:
    """A time as the panel shows times: the server's local time."""
    return "" if ts is None else ts.astimezone().strftime("%Y-%m-%d %H:%M")


def _viewer() -> PanelUser:
    return current_user._get_current_object()  # type: ignore[no-any-return]


def _sees(viewer: PanelUser, cb: Callback) -> bool:
    return viewer.sees_all or cb.agent in viewer.extensions


def _page(viewer: PanelUser, status: str | None, limit: int, offset: int) -> tuple[list[Callback], int]:
    if viewer.sees_all:
        return store.page(status, limit, offset)
    query = _theirs(viewer) if status is None else _theirs(viewer).where(Callback.status == status)
    rows = query.order_by(Callback.created_at.desc(), Callback.id.desc()).limit(limit).offset(offset)
    return list(rows), query.count()  # newest first, as store.page


def _counts(viewer: PanelUser) -> dict[str, int]:
    if viewer.sees_all:
        return store.counts()
    query = _theirs(viewer).select(Callback.status, fn.COUNT(Callback.id)).group_by(Callback.status)
    found = dict(query.tuples())
    return {status: int(found.get(status, 0)) for status in store.STATUSES}


def _theirs(viewer: PanelUser) -> Any:
    """An agent's callbacks: those assigned to, or missed by, one of their extensions."""
    return Callback.select().where(Callback.agent.in_(list(viewer.extensions)))


def _missed_calls(rows: Sequence[Callback]) -> dict[str, Call]:
    """The missed calls of these callbacks from the call log, by "<pbx>:<call_id>"."""
    keys = {cb.missed_call for cb in rows if cb.missed_call}
    found: dict[str, Call] = {}
    for pbx in {k.partition(":")[0] for k in keys}:
        ids = [k.partition(":")[2] for k in keys if k.partition(":")[0] == pbx]
        for call in Call.select().where(Call.pbx == pbx, Call.call_id.in_(ids)):
            found[f"{call.pbx}:{call.call_id}"] = call
    return found


def _row(cb: Callback, missed: Call | None) -> dict[str, Any]:
    return {
        "id": cb.id,
        "number": cb.number,
        "name": cb.name or "",
        "status": cb.status,
        "status_label": TABS.get(cb.status, cb.status),
        "open": cb.status in store.OPEN,
        "policy": cb.policy,
        "source": SOURCES.get(cb.source, cb.source),
        "queue": cb.queue or "",
        "agent": cb.agent or "",
        "missed": missed,
        "missed_key": cb.missed_call or "",
        "missed_at": local(missed.started_at) if missed is not None else "",
        "due": local(cb.due_at),
        "due_input": cb.due_at.astimezone().strftime("%Y-%m-%dT%H:%M"),
        "attempts": cb.attempts,
        "last_outcome": OUTCOMES.get(cb.last_outcome or "", cb.last_outcome or ""),
        "reason": cb.reason or "",
        "mine": cb.agent in _viewer().extensions,
    }


def _form_context() -> dict[str, Any]:
    """What the action forms need: where to come back to, the server's timezone, known extensions."""
    users = User.select().where(User.active == True, User.extension.is_null(False))  # noqa: E712
    extensions = sorted({ext for user in users for ext in PanelUser(user).extensions})
    return {
        "back": request.full_path.rstrip("?"),
        "tz": datetime.now().astimezone().tzname(),
        "extensions": extensions,
    }


def _acted_on(cb_id: int, *, agents_may: bool = False) -> Callback | None:
    """The callback an action is about, or None (said in a flash); 403 for an agent not allowed to act."""
    viewer = _viewer()
    cb = store.get(cb_id)
    if cb is not None and not viewer.sees_all and not (agents_may and cb.agent in viewer.extensions):
        abort(403, "agents may only call their own callbacks now; ask a supervisor for the rest")
    if cb is None:
        flash(f"Callback #{cb_id} does not exist.", "error")
    return cb


def _done(changed: bool, cb: Callback, action: str) -> bool:
    """Whether the store did it; if not, a flash that says why (the callback's state as it is now)."""
    if changed:
        log.info("callback #%s to %s: %s by %s", cb.id, cb.number, action, _viewer().username)
        return True
    now = store.get(cb.id)
    if now is None:
        flash(f"Callback #{cb.id} no longer exists.", "error")
    elif now.status == "in_progress":
        flash(
            f"Callback #{cb.id} is being called right now: try “{action}” again once the attempt ends.",
            "error",
        )
    elif now.status in store.OPEN:
        flash(f"Callback #{cb.id} could not be changed just now: reload the page and try again.", "error")
    else:
        state = TABS[now.status].lower() if now.status in TABS else now.status
        flash(f"Callback #{cb.id} to {cb.number} is {state} already: it can no longer be changed.", "error")
    return False


def _back() -> ResponseReturnValue:
    target = safe_next(request.form.get("next"))
    ok = target is not None and (target == "/callbacks" or target.startswith(("/callbacks?", "/callbacks/")))
    return redirect(request.script_root + target if ok and target is not None else url_for(".index"))
