"""The JSON API over the call log: `GET /api/v1/calls` (filtered, paginated) and `GET /api/v1/calls/<id>`.

Callers authenticate with `Authorization: Bearer <token>`; the panel's own scripts use
their login session. Errors are JSON `{"error": ...}` so scripts never parse HTML.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, abort, g, jsonify, request, url_for
from flask_login import current_user

from pbxlink.storage import callbacks
from pbxlink.storage.calls import CallFilter, get_call, search_calls
from pbxlink.storage.users import user_for_token

from .auth import PanelUser

bp = Blueprint("api", __name__, url_prefix="/api/v1")

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
DISPOSITIONS = ("answered", "missed")


@bp.before_request
def authenticate() -> Response | None:
    """A bearer token wins over the session: a script with a wrong token must hear so, not ride a cookie."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        user = user_for_token(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if user is None:
            return _unauthorized("invalid bearer token")
        g.viewer = PanelUser(user)
    elif current_user.is_authenticated:
        g.viewer = current_user._get_current_object()
    else:
        return _unauthorized("missing bearer token")
    return None


@bp.get("/calls")
def list_calls() -> Response:
    page = int_arg("page", 1, 1, None)
    per_page = int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    disposition = request.args.get("disposition") or None
    if disposition is not None and disposition not in DISPOSITIONS:
        abort(400, f"invalid disposition: must be one of {', '.join(DISPOSITIONS)}")
    agent = request.args.get("agent") or None
    viewer: PanelUser = g.viewer
    scope: str | tuple[str, ...] | None = agent
    if not viewer.sees_all:
        if agent is not None and agent not in viewer.extensions:
            abort(403, "agents may only see their own calls")
        if not viewer.extensions:
            return _page([], 0, page, per_page)
        scope = agent or viewer.extensions
    f = CallFilter(
        since=_time_arg("since", end_of_day=False),
        until=_time_arg("until", end_of_day=True),
        number=request.args.get("number") or None,
        agent=scope,
        disposition=disposition,
    )
    calls, total = search_calls(f, limit=per_page, offset=(page - 1) * per_page)
    return _page(calls, total, page, per_page)


@bp.get("/calls/<int:call_id>")
def show_call(call_id: int) -> Response:
    call = get_call(call_id)
    viewer: PanelUser = g.viewer
    if call is None or not viewer.can_see(call):  # another agent's call is as absent as a missing one
        abort(404, f"no call with id {call_id}")
    # the callback its miss scheduled, or the callback it was an attempt of
    return jsonify({**call, "callbacks": callbacks.linked_to(call["pbx"], call["call_id"], call["origin"])})


def _page(calls: list[dict[str, Any]], total: int, page: int, per_page: int) -> Response:
    more = page * per_page < total
    args: dict[str, Any] = {**request.args, "page": page + 1}
    next_url = url_for(".list_calls", **args, _external=True) if more else None
    return jsonify(calls=calls, page=page, per_page=per_page, total=total, next=next_url)


def int_arg(name: str, default: int, lo: int, hi: int | None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
    try:
        value = int(raw)
    except ValueError:
        abort(400, f"invalid {name}: must be an integer {bounds}")
    if value < lo or (hi is not None and value > hi):
        abort(400, f"invalid {name}: must be an integer {bounds}")
    return value


def _time_arg(name: str, *, end_of_day: bool) -> datetime | None:
    """ISO date or datetime; naive means UTC. A bare `until` date includes that whole day."""
    raw = request.args.get(name)
    if not raw:
        return None
    if len(raw) > 19 and raw[-6] == " ":  # an unencoded "+02:00" arrives as " 02:00"
        raw = f"{raw[:-6]}+{raw[-5:]}"
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            start = datetime.combine(day, time(), tzinfo=UTC)
            return start + timedelta(days=1) if end_of_day else start  # `until` is exclusive
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        abort(400, f"invalid {name}: expected an ISO 8601 date or datetime, e.g. 2026-01-31T08:00Z")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _unauthorized(message: str) -> Response:
    resp = jsonify(error=message)
    resp.status_code = 401
    resp.headers["WWW-Authenticate"] = 'Bearer realm="pbxlink"'
    return resp
