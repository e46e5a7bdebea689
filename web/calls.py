"""The live page: today's calls, kept current over Server-Sent Events fed by the bus.

Each browser gets its own bus subscription and queue for as long as it listens. The
page catches up from the JSON API whenever its stream (re)opens, so nothing published
while it was away is missed.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template
from flask_login import current_user, login_required

from pbxlink.domain.calls import CallEvent, parse_iso
from pbxlink.domain.ports import Bus
from pbxlink.storage.calls import CallFilter, search_calls
from pbxlink.storage.database import connection
from pbxlink.storage.models import Call

from .auth import PanelUser

log = logging.getLogger(__name__)

bp = Blueprint("calls", __name__)

HEARTBEAT_SECONDS = 15.0  # app.config["SSE_HEARTBEAT_SECONDS"] overrides
QUEUE_SIZE = 1000  # events a slow browser may fall behind before its stream is ended
PAGE_LIMIT = 500
MISS_REASONS = {
    "no_answer": "no answer",
    "busy": "busy",
    "abandoned": "abandoned",
    "queue_timeout": "queue timeout",
    "not_offered": "not offered",
    "failed": "failed",
}

_stream_ids = itertools.count(1)


@bp.get("/")
@login_required
def index() -> str:
    viewer: PanelUser = current_user._get_current_object()
    since = today_start()
    calls: list[dict[str, Any]] = []
    if viewer.sees_all or viewer.extensions:
        scope = None if viewer.sees_all else viewer.extensions
        calls, _ = search_calls(CallFilter(since=since, agent=scope), limit=PAGE_LIMIT)  # newest first
    live = current_app.extensions["pbxlink.bus"] is not None
    return render_template("calls/index.html", calls=calls, since=since.isoformat(), live=live)


@bp.get("/calls/stream")
@login_required
def stream() -> Response:
    bus: Bus | None = current_app.extensions["pbxlink.bus"]
    if bus is None:
        abort(503, "live updates are off")
    viewer: PanelUser = current_user._get_current_object()
    heartbeat = float(current_app.config.get("SSE_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))
    return Response(
        _events(bus, viewer, heartbeat),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def today_start() -> datetime:
    """Midnight of the server's local day, in UTC: "today" as the business means it."""
    now = datetime.now().astimezone()
    return now.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def _events(bus: Bus, viewer: PanelUser, heartbeat: float) -> Iterator[str]:
    """SSE frames for one browser; runs until the browser goes (a write fails) or falls too far behind."""
    events: queue.Queue[CallEvent] = queue.Queue(maxsize=QUEUE_SIZE)
    overflow = threading.Event()

    def handler(event: CallEvent) -> None:
        try:
            events.put_nowait(event)
        except queue.Full:
            overflow.set()

    name = f"sse-{next(_stream_ids)}-{viewer.username}"
    bus.subscribe(name, handler)
    log.debug("%s: stream opened", name)
    try:
        yield "retry: 3000\n: connected\n\n"
        while not overflow.is_set():
            try:
                event = events.get(timeout=heartbeat)
            except queue.Empty:
                yield ": keepalive\n\n"  # lets proxies keep the line, and a dead client fail the write
                continue
            payload = event.to_dict()
            if viewer.can_see(payload["call"]):
                payload["id"] = _row_id(event.call.pbx, event.call.call_id)
                yield f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"
        log.warning("%s: the browser fell %d events behind; ending its stream", name, QUEUE_SIZE)
    finally:
        bus.unsubscribe(handler)  # type: ignore[attr-defined]
        log.debug("%s: stream closed", name)


def _row_id(pbx: str, call_id: str) -> int | None:
    """The call-log row of this call, when it has been saved already."""
    with connection():
        row = Call.get_or_none(pbx=pbx, call_id=call_id)
    return None if row is None else int(row.get_id())


@bp.app_template_filter("clock")
def clock(value: str | None) -> str:
    ts = parse_iso(value)
    return ts.astimezone().strftime("%H:%M:%S") if ts else ""


@bp.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@bp.app_template_global("call_status")
def call_status(call: Mapping[str, Any]) -> tuple[str, str]:
    """(css key, label) for the status column; live.js mirrors this for rows it draws."""
    if call.get("ended_at") is None:
        return ("talking", "talking") if call.get("answered_at") else ("ringing", "ringing")
    if call.get("disposition") == "answered":
        key, label = "answered", "answered"
    else:
        reason = MISS_REASONS.get(call.get("miss_reason") or "", "")
        key, label = "missed", f"missed · {reason}" if reason else "missed"
    return key, label if call.get("end_seen", True) else f"{label} (end not seen)"
