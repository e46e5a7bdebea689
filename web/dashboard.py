"""The supervisor's dashboard: calls in progress, agents, today per queue against the targets, and
charts by hour and by day, kept current over Server-Sent Events; admins set the targets here.

Supervisors and admins only; agents get 403. A stream pushes a fresh snapshot when call events
arrive, at most one a second, once more a second after the last (the call log may still be
writing the final record that moved the figures), and a heartbeat meanwhile. The thirty days'
figures before today are summed once a day (and when the targets change) for every stream.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from pbxlink.domain.ports import Bus
from pbxlink.services.kpis import ALL_QUEUES, Tally, Targets, kpis, queue_kpis, total
from pbxlink.storage import kpi_queries, kpi_targets
from pbxlink.storage.calls import record_from_row
from pbxlink.storage.database import connection
from pbxlink.storage.models import Call, User

from .auth import _unauthorized, admin_required
from .dashboard_live import AgentState, LiveCalls

log = logging.getLogger(__name__)

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

HEARTBEAT_SECONDS = 15.0  # app.config["SSE_HEARTBEAT_SECONDS"] overrides, as for the live calls page
PUSH_INTERVAL = 1.0  # app.config["DASHBOARD_PUSH_SECONDS"] overrides (tests)
PAST_DAYS_TTL = 600.0  # late final records of calls that crossed midnight, rows of other processes
_STATE_KEY = "pbxlink.dashboard"
_lock = threading.Lock()


def manager_required(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Supervisors and admins; agents get 403; a stream without a session gets JSON 401."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if not current_user.is_authenticated:
            if request.path.endswith(("/stream", "/snapshot")):
                return jsonify(error="login required"), 401
            return _unauthorized()
        if not current_user.sees_all:
            return _forbidden()
        return view(*args, **kwargs)

    return wrapped


def _forbidden() -> ResponseReturnValue:
    message = "the dashboard is for supervisors and admins"
    if request.path.endswith(("/stream", "/snapshot")):
        return jsonify(error=message), 403
    return render_template("error.html", message=f"403 Forbidden: {message}"), 403


class Dashboard:
    """The app's one live view of the calls, and the cached figures of the past days."""

    def __init__(self, bus: Bus | None, zone: ZoneInfo) -> None:
        self.zone = zone
        since = datetime.now(UTC) - timedelta(days=1)
        with connection():
            rows = Call.select().where(Call.ended_at.is_null(), Call.started_at >= since)
            self.live = LiveCalls(record_from_row(row) for row in rows)
        if bus is not None:
            bus.subscribe("dashboard", self.live.on_event)
        self._past: tuple[tuple[date, Targets], float, list[tuple[date, Tally]]] | None = None
        self._snapshot: tuple[int, float, dict[str, Any]] | None = None
        self._build = threading.Lock()

    def snapshot(self, max_age: float) -> dict[str, Any]:
        """The figures now; one built less than `max_age` s ago at the same version is shared."""
        with self._build:
            version, now = self.live.version, time.monotonic()
            if self._snapshot and self._snapshot[0] == version and now - self._snapshot[1] < max_age:
                return self._snapshot[2]
            with connection():
                snap = self._figures()
            self._snapshot = (version, now, snap)
            return snap

    def _figures(self) -> dict[str, Any]:
        targets = kpi_targets.load()
        today = kpi_queries.today(targets, self.zone)
        figures = queue_kpis(today.queues, targets, kpi_queries.callbacks_pending())
        days = [*self._past_days(today.day, targets), (today.day, total(today.queues.values()))]
        return {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "day": today.day.isoformat(),
            "timezone": self.zone.key,
            "targets": dataclasses.asdict(targets),
            "in_progress": self.live.in_progress(),
            "agents": agents(self.live.agent_states()),
            "queues": [{"queue": q, **k.to_dict()} for q, k in figures.items() if q != ALL_QUEUES],
            "total": figures[ALL_QUEUES].to_dict(),
            "by_hour": series([int(h.timestamp()) for h in today.hour_starts], today.hours, targets),
            "by_day": series(
                [int(kpi_queries.local_midnight(d, self.zone).timestamp()) for d, _ in days],
                [t for _, t in days],
                targets,
            ),
        }

    def _past_days(self, day: date, targets: Targets) -> list[tuple[date, Tally]]:
        key = (day, targets)
        if self._past is None or self._past[0] != key or time.monotonic() - self._past[1] > PAST_DAYS_TTL:
            days = kpi_queries.by_day(day - timedelta(days=1), self.zone, targets, kpi_queries.DAYS - 1)
            self._past = (key, time.monotonic(), days)
        return self._past[2]


def series(starts: list[int], tallies: list[Tally], targets: Targets) -> dict[str, list[Any]]:
    """Chart columns: bucket start (Unix seconds), offered, answered, abandoned (short ones left out)."""
    figures = [kpis(t, targets) for t in tallies]
    return {
        "t": starts,
        "offered": [k.offered for k in figures],
        "answered": [k.answered for k in figures],
        "abandoned": [k.abandoned - k.short_abandons for k in figures],
    }


def agents(states: dict[str, AgentState]) -> list[dict[str, Any]]:
    """Every active user with an extension, in the state of their busiest extension."""
    rank = {"talking": 2, "ringing": 1, "idle": 0}
    found = []
    users = User.select().where(User.active == True, User.extension.is_null(False))  # noqa: E712
    for user in users.order_by(User.username):
        exts = [e for e in (p.strip() for p in str(user.extension).split(",")) if e]
        if not exts:
            continue
        best = max((states.get(e, AgentState("idle")) for e in exts), key=lambda s: rank[s.state])
        found.append({"username": user.username, "extensions": exts, **best.__dict__})
    return found


def dashboard_of(app: Flask) -> Dashboard:
    with _lock:
        if _STATE_KEY not in app.extensions:
            app.extensions[_STATE_KEY] = Dashboard(app.extensions["pbxlink.bus"], kpi_queries.site_zone())
        board: Dashboard = app.extensions[_STATE_KEY]
        return board


@bp.get("")
@manager_required
def index() -> ResponseReturnValue:
    return _page(kpi_targets.load(), {}, 200)


@bp.post("/targets")
@admin_required
def targets() -> ResponseReturnValue:
    form = {name: request.form.get(name, "") for name in kpi_targets.LIMITS}
    try:
        chosen = kpi_targets.checked(form)
    except kpi_targets.TargetsError as exc:
        return _page(form, exc.errors, 400)
    changed = kpi_targets.save(chosen, current_user.username)
    message = "Targets saved." if changed else "The targets were already these; nothing changed."
    return _page(chosen, {}, 200, message)


def _page(
    values: Targets | dict[str, str], errors: dict[str, str], status: int, saved: str = ""
) -> ResponseReturnValue:
    shown = dataclasses.asdict(values) if isinstance(values, Targets) else values
    live = current_app.extensions["pbxlink.bus"] is not None
    body = render_template(
        "dashboard/index.html", values=shown, errors=errors, limits=kpi_targets.LIMITS, live=live, saved=saved
    )
    return body, status


@bp.get("/snapshot")
@manager_required
def snapshot() -> ResponseReturnValue:
    board = dashboard_of(current_app._get_current_object())  # type: ignore[attr-defined]
    return jsonify(board.snapshot(0.0))


@bp.get("/stream")
@manager_required
def stream() -> ResponseReturnValue:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.extensions["pbxlink.bus"] is None:
        return jsonify(error="live updates are off"), 503
    board = dashboard_of(app)
    heartbeat = float(app.config.get("SSE_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))
    interval = float(app.config.get("DASHBOARD_PUSH_SECONDS", PUSH_INTERVAL))
    return Response(
        _frames(board, heartbeat, interval),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _frames(board: Dashboard, heartbeat: float, interval: float) -> Iterator[str]:
    """Snapshots for one browser: at once, then on change (throttled, plus one settling push), and
    a heartbeat when nothing was sent for `heartbeat` seconds. Ends when a write fails."""
    yield "retry: 3000\n: connected\n\n"
    sent_version, last_push, settle_at, last_frame = -1, 0.0, 0.0, ""
    last_sent = time.monotonic()
    while True:
        now = time.monotonic()
        moved = board.live.version != sent_version
        due = (moved and now - last_push >= interval) or (settle_at and now >= settle_at)
        if due:
            settle_at = now + interval if moved else 0.0
            sent_version, last_push = board.live.version, now
            snap = board.snapshot(interval / 2)
            frame = json.dumps({k: v for k, v in snap.items() if k != "at"}, separators=(",", ":"))
            if frame != last_frame:
                last_frame, last_sent = frame, now
                yield f"data: {json.dumps(snap, separators=(',', ':'))}\n\n"
            continue
        if now - last_sent >= heartbeat:
            last_sent = now
            yield ": keepalive\n\n"
            continue
        wake = [last_sent + heartbeat]
        if moved:
            wake.append(last_push + interval)
        if settle_at:
            wake.append(settle_at)
        board.live.wait(sent_version if not moved else board.live.version, max(0.0, min(wake) - now))
