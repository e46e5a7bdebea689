"""The campaigns' JSON API: campaigns with their live progress, start / pause / resume / stop, an import's
progress, and the do-not-call list.

Authenticated as the rest of /api/v1 (a bearer token, else the panel's session); supervisors and
admins only. A session's POST must carry its CSRF token (header `X-CSRFToken`): a cookie alone
must not start a campaign. A command that does not apply answers 409 with the reason.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError

from pbxlink.services.campaigns import CampaignService
from pbxlink.storage import campaigns as store
from pbxlink.storage import dnc
from pbxlink.storage.campaign_reports import progress
from pbxlink.storage.models import Campaign

from .api import authenticate, int_arg
from .campaign_imports import import_dict, import_or_404
from .campaigns import campaign_or_404, verbs_for

log = logging.getLogger(__name__)

bp = Blueprint("campaigns_api", __name__, url_prefix="/api/v1")

PER_PAGE = 50
MAX_PER_PAGE = 200


@bp.before_request
def _allowed() -> Response | None:
    refused = authenticate()
    if refused is not None:
        return refused
    if not g.viewer.sees_all:
        abort(403, "campaigns are for supervisors and admins")
    if request.method == "POST" and "Authorization" not in request.headers:
        current_app.extensions["csrf"].protect()
    return None


@bp.errorhandler(CSRFError)
def _csrf(exc: CSRFError) -> ResponseReturnValue:
    return jsonify(error=f"CSRF check failed ({exc.description}): send the X-CSRFToken header"), 400


@bp.get("/campaigns")
def list_campaigns() -> Response:
    now = datetime.now(UTC)
    return jsonify(campaigns=[campaign_dict(c, now) for c in store.all_campaigns()])


@bp.get("/campaigns/<int:campaign_id>")
def show_campaign(campaign_id: int) -> Response:
    return jsonify(campaign_dict(campaign_or_404(campaign_id), datetime.now(UTC)))


@bp.post("/campaigns/<int:campaign_id>/<any(start, pause, resume, stop):verb>")
def command(campaign_id: int, verb: str) -> ResponseReturnValue:
    c = campaign_or_404(campaign_id)
    try:
        said = CampaignService.command(c, verb)
    except ValueError as exc:
        return jsonify(error=str(exc)), 409
    log.info("campaign %s: %s by %s (API)", c.name, verb, g.viewer.username)
    return jsonify(result=said, campaign=campaign_dict(campaign_or_404(campaign_id), datetime.now(UTC)))


@bp.get("/campaigns/<int:campaign_id>/imports/<int:import_id>")
def show_import(campaign_id: int, import_id: int) -> Response:
    resp = jsonify(import_dict(import_or_404(campaign_id, import_id)))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/dnc")
def list_dnc() -> Response:
    """`?search=` digits of the number or words of the reason; paged like /api/v1/calls."""
    page = int_arg("page", 1, 1, None)
    per_page = int_arg("per_page", PER_PAGE, 1, MAX_PER_PAGE)
    entries, total = dnc.page(request.args.get("search") or None, per_page, (page - 1) * per_page)
    more = page * per_page < total
    args: dict[str, Any] = {**request.args, "page": page + 1}
    return jsonify(
        entries=[dnc.to_dict(e) for e in entries],
        page=page,
        per_page=per_page,
        total=total,
        next=url_for(".list_dnc", **args, _external=True) if more else None,
    )


def campaign_dict(c: Campaign, now: datetime) -> dict[str, Any]:
    """A campaign's settings and status, the commands that apply now, and its live progress."""
    return {**store.to_dict(c), "commands": verbs_for(c.status), "progress": progress(c, now)}
