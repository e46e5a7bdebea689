"""Deliveries: the outbox as an admin sees it (what is waiting, what failed and why, a retry button),
and `GET /api/v1/deliveries` for monitoring.

A retry makes the row due now and wakes the worker when it runs in this process; a worker
in another process finds it at its next poll.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from pbxlink.storage import outbox
from pbxlink.storage.models import OutboxItem

from .api import authenticate, int_arg
from .auth import admin_required
from .calls import today_start

bp = Blueprint("outbox", __name__, url_prefix="/admin/deliveries")
api_bp = Blueprint("outbox_api", __name__, url_prefix="/api/v1")
api_bp.before_request(authenticate)

PER_PAGE = 50
MAX_PER_PAGE = 200
KIND_LABELS = {"crm_log": "CRM call log", "webhook": "webhook"}


@bp.get("/")
@admin_required
def index() -> str:
    page = int_arg("page", 1, 1, None)
    items, total = outbox.page(None, PER_PAGE, (page - 1) * PER_PAGE)
    return render_template(
        "outbox/index.html",
        counts=outbox.counts(done_since=today_start()),
        rows=[_row(item) for item in items],
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        kinds=KIND_LABELS,
    )


@bp.post("/<int:item_id>/retry")
@admin_required
def retry(item_id: int) -> ResponseReturnValue:
    item = outbox.get(item_id)
    if item is not None and outbox.retry_now(item_id):
        flash(f"{_label(item)} to {item.target} for {item.key} is queued to be tried again now.")
        _wake_worker()
    else:
        flash(f"Delivery #{item_id} is done already or no longer exists: nothing to retry.", "error")
    return _back()


@bp.post("/retry-failed")
@admin_required
def retry_failed() -> ResponseReturnValue:
    kind, target = request.form.get("kind") or None, request.form.get("target") or None
    count = outbox.retry_failed(target, kind)
    scope = f" to {target}" if target else ""
    if count:
        flash(f"{count} failed deliveries{scope} are queued to be tried again now.")
        _wake_worker()
    else:
        flash(f"No failed deliveries{scope} to retry.")
    return _back()


@api_bp.get("/deliveries")
def list_deliveries() -> Response:
    """`?status=failed|retrying|pending|done` (default: failed and retrying), paged like /api/v1/calls."""
    if g.viewer.role != "admin":
        abort(403, "deliveries are for admins")
    view = request.args.get("status") or None
    if view is not None and view not in outbox.VIEWS:
        abort(400, f"invalid status: must be one of {', '.join(outbox.VIEWS)}")
    page = int_arg("page", 1, 1, None)
    per_page = int_arg("per_page", PER_PAGE, 1, MAX_PER_PAGE)
    items, total = outbox.page(view, per_page, (page - 1) * per_page)
    return jsonify(
        deliveries=[outbox.item_to_dict(item) for item in items],
        page=page,
        per_page=per_page,
        total=total,
        pending=outbox.depth(),
        targets=[
            {
                "kind": c.kind,
                "target": c.target,
                "pending": c.pending,
                "failed": c.failed,
                "done_today": c.done_since,
            }
            for c in outbox.counts(done_since=today_start())
        ],
    )


def _row(item: OutboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": _label(item),
        "target": item.target,
        "key": item.key,
        "status": "failed" if item.status == "failed" else "retrying" if item.attempts else "queued",
        "attempts": item.attempts,
        "error": item.last_error or "",
        "next_try": _next_try(item.next_at) if item.status == "pending" else "",
    }


def _label(item: OutboxItem) -> str:
    return KIND_LABELS.get(item.kind, item.kind)


def _next_try(ts: datetime) -> str:
    """The server's local time, as the rest of the panel shows times; "now" once it has passed."""
    return "now" if ts <= datetime.now(UTC) else ts.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _wake_worker() -> None:
    worker = current_app.extensions.get("pbxlink.outbox_worker")
    if worker is not None:
        worker.notify()


def _back() -> ResponseReturnValue:
    page = request.form.get("page", "")
    return redirect(
        url_for(".index", page=int(page)) if page.isdigit() and int(page) > 1 else url_for(".index")
    )
