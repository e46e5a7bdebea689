"""The calls history: every call in the log, filtered and paged, and the same selection as a CSV file.

Days in the filter are the server's local days (what "Monday's calls" means to the business),
turned into UTC bounds. Agents find only the calls they talked on: asking for another agent's
calls finds none, as on the recordings page. The export streams the log a batch at a time
(`iter_calls`), so a year of calls is never held in memory, and every cell goes through the
formula-neutralising CSV writer; each export is audited (who, which filter).
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from pbxlink.domain.calls import RECORD_FIELDS, parse_iso
from pbxlink.services import csv_safe
from pbxlink.storage.calls import CallFilter, iter_calls, matching, row_to_dict
from pbxlink.storage.models import Call
from pbxlink.storage.recordings import audit

from .api import int_arg
from .auth import PanelUser
from .calls import MISS_REASONS
from .recording_pages import local_day

log = logging.getLogger(__name__)

bp = Blueprint("call_history", __name__)

PER_PAGE = 50
FIELDS = ("since", "until", "number", "agent", "queue", "direction", "disposition", "miss_reason", "pbx")
DIRECTIONS = ("inbound", "outbound", "internal")
DISPOSITIONS = ("answered", "missed")


@bp.get("/calls/history")
@login_required
def index() -> ResponseReturnValue:
    form = _form()
    try:
        f = history_filter(_viewer(), form)
    except ValueError as exc:
        return render_template("call/history.html", form=form, error=str(exc), **_empty()), 400
    page = int_arg("page", 1, 1, None)
    calls: list[dict[str, Any]] = []
    total = 0
    if f is not None:
        query = matching(f)
        total = query.count()
        rows = query.order_by(Call.started_at.desc(), Call.id.desc()).limit(PER_PAGE)
        calls = [row_to_dict(row) for row in rows.offset((page - 1) * PER_PAGE)]
    return render_template(
        "call/history.html",
        form=form,
        error=None,
        calls=calls,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        total=total,
        args={k: v for k, v in form.items() if v},
        **_choices(),
    )


@bp.get("/calls/history.csv")
@login_required
def export() -> ResponseReturnValue:
    """Every matching call, every field of RECORD_FIELDS (plus its id), newest first, streamed."""
    form = _form()
    viewer = _viewer()
    try:
        f = history_filter(viewer, form)
    except ValueError as exc:
        return render_template("call/history.html", form=form, error=str(exc), **_empty()), 400
    asked = {k: v for k, v in form.items() if v}
    audit(viewer.username, "export", "calls", {"filter": asked, "address": request.remote_addr})
    log.info("calls exported as CSV by %s (filter: %s)", viewer.username, json.dumps(asked))
    rows = iter(()) if f is None else iter_calls(f)
    resp = Response(stream_with_context(_csv(rows)), mimetype="text/csv")
    resp.headers["Content-Disposition"] = 'attachment; filename="calls.csv"'
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def history_filter(viewer: PanelUser, form: Mapping[str, str]) -> CallFilter | None:
    """The search the form asks, within what the viewer may see (None: nothing); ValueError says why not."""
    agent = form["agent"] or None
    scope: str | tuple[str, ...] | None = agent
    if not viewer.sees_all:
        if not viewer.extensions or (agent is not None and agent not in viewer.extensions):
            return None  # an agent asking for another agent's calls finds none
        scope = agent or viewer.extensions
    since, until = local_day(form["since"], "from"), local_day(form["until"], "to")
    if since is not None and until is not None and until < since:
        raise ValueError("The “to” day is before the “from” day.")
    for name, allowed in (
        ("direction", DIRECTIONS),
        ("disposition", DISPOSITIONS),
        ("miss_reason", tuple(MISS_REASONS)),
    ):
        if form[name] and form[name] not in allowed:
            raise ValueError(f"{name.replace('_', ' ').capitalize()} must be one of {', '.join(allowed)}.")
    return CallFilter(
        since=since,
        until=until + timedelta(days=1) if until is not None else None,  # the whole "to" day
        number=form["number"] or None,
        agent=scope,
        disposition=form["disposition"] or None,
        queue=form["queue"] or None,
        direction=form["direction"] or None,
        miss_reason=form["miss_reason"] or None,
        pbx=form["pbx"] or None,
    )


def _csv(calls: Iterator[dict[str, Any]], batch: int = 200) -> Iterator[str]:
    """CSV text a batch of rows at a time; lists (agents, transfers) as compact JSON."""
    buffer = io.StringIO()
    out = csv_safe.writer(buffer)
    out.writerow(("id", *RECORD_FIELDS))
    for n, call in enumerate(calls, start=1):
        out.writerow((call["id"], *(_cell(call[k]) for k in RECORD_FIELDS)))
        if n % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> object:
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if value else ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


@bp.app_template_filter("local_time")
def local_time(value: str | None) -> str:
    """An ISO time of the record as the server's local date and time (what the day filter uses)."""
    ts = parse_iso(value)
    return ts.astimezone().strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def _form() -> dict[str, str]:
    return {k: request.args.get(k, "").strip()[:128] for k in FIELDS}


def _viewer() -> PanelUser:
    return current_user._get_current_object()  # type: ignore[no-any-return]


def _choices() -> dict[str, Any]:
    return {
        "directions": DIRECTIONS,
        "dispositions": DISPOSITIONS,
        "miss_reasons": MISS_REASONS,
        "tz": datetime.now().astimezone().tzname(),
    }


def _empty() -> dict[str, Any]:
    return {"calls": [], "page": 1, "pages": 1, "total": 0, "args": {}, **_choices()}
