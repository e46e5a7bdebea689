"""The screen-pop page: an agent's browser shows who is calling the moment one of their extensions rings.

Pops come from the one `PopHub` (fed by the screen-pop bus subscriber) over Server-Sent
Events: first a snapshot of the pops held for the page's extensions, then every change. A
page that falls too far behind is dropped by the hub: its stream ends, the browser
reconnects and starts again from a snapshot. Agents watch their own extensions;
supervisors and admins may watch any with `?ext=201,202`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_login import current_user, login_required

from pbxlink.services.pop_hub import Pop, PopHub

from .auth import PanelUser

bp = Blueprint("pops", __name__)

HEARTBEAT_SECONDS = 15.0  # app.config["SSE_HEARTBEAT_SECONDS"] overrides
LINGER_SECONDS = 30  # a pop that stopped ringing or ended stays this long on the page
MAX_WATCHED = 50
_EXTENSION = re.compile(r"[A-Za-z0-9_*#+.-]{1,32}")  # as the user settings accept it


@bp.get("/pops")
@login_required
def index() -> str:
    viewer: PanelUser = current_user._get_current_object()
    asked = request.args.get("ext", "").strip()
    watched = watched_extensions(viewer, asked)
    return render_template(
        "pops/index.html",
        watched=watched,
        own=set(watched) <= set(viewer.extensions),  # "answered by you" rather than "by 201"
        asked=asked,
        live=current_app.extensions.get("pbxlink.pops") is not None,
        linger=LINGER_SECONDS,
    )


@bp.get("/pops/stream")
@login_required
def stream() -> Response:
    hub: PopHub | None = current_app.extensions.get("pbxlink.pops")
    if hub is None:
        abort(503, "screen-pops are off")
    viewer: PanelUser = current_user._get_current_object()
    watched = watched_extensions(viewer, request.args.get("ext", "").strip())
    if not watched:
        abort(400, "this account has no extension: ask an admin to set one")
    heartbeat = float(current_app.config.get("SSE_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))
    return Response(
        _frames(hub, watched, viewer.role == "admin", heartbeat),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def watched_extensions(viewer: PanelUser, asked: str) -> tuple[str, ...]:
    """The extensions a page shows: the viewer's own, or those in `?ext=` (another's: supervisors only)."""
    if not asked:
        return viewer.extensions
    wanted = tuple(dict.fromkeys(e.strip() for e in asked.split(",") if e.strip()))
    if len(wanted) > MAX_WATCHED or not all(_EXTENSION.fullmatch(e) for e in wanted):
        abort(400, f"ext: up to {MAX_WATCHED} extensions, separated by commas")
    if not viewer.sees_all and not set(wanted) <= set(viewer.extensions):
        abort(403, "agents see the pops of their own extensions only")
    return wanted


def for_viewer(pop: Pop, admin: bool) -> Pop:
    """The pop as this viewer may see it: a CRM's error lines are for admins (agents: "CRM unavailable")."""
    return pop if admin or not pop.get("errors") else {**pop, "errors": []}


def _frames(hub: PopHub, watched: tuple[str, ...], admin: bool, heartbeat: float) -> Iterator[str]:
    """SSE frames for one page; ends when the browser goes (a write fails) or the hub drops it."""
    listener = hub.listen(watched)  # before the snapshot: a pop in between comes twice, never not at all
    try:
        pops = [for_viewer(p, admin) for p in hub.snapshot(watched)]
        yield "retry: 3000\n\n" + _event("snapshot", {"extensions": list(watched), "pops": pops})
        while True:
            pop = listener.next(heartbeat)
            if pop is not None:
                yield _event("pop", for_viewer(pop, admin))
            elif listener.dropped:
                return
            else:
                yield ": keepalive\n\n"  # lets proxies keep the line, and a dead client fail the write
    finally:
        hub.close(listener)


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
