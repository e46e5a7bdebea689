"""The campaign form: a new campaign, or a campaign's settings changed (even while it runs: the next dial
uses them). Every value is checked by `CampaignSettings.checked`, whose message ("field: must be …")
is shown beside the form and marks the field it names.
"""

from __future__ import annotations

import logging
import os
import zoneinfo
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from pbxlink.config import Config
from pbxlink.config.schedule import ScheduleSections
from pbxlink.domain.campaign import (
    DEFAULT_RETRIES,
    RETRIED,
    CampaignSettings,
    RetryRule,
    check_for_pbx,
    parse_days,
)
from pbxlink.storage import campaigns as store

from .campaigns import campaign_or_404, manager_required

log = logging.getLogger(__name__)

bp = Blueprint("campaign_form", __name__, url_prefix="/campaigns")

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RETRY_LABELS = {"busy": "Busy", "no_answer": "No answer", "failed": "Failed", "machine": "Answering machine"}
TEXT = ("name", "pbx", "mode", "caller_id", "message", "queue", "timezone")
TIMES = ("hours_start", "hours_end", "window_start", "window_end")
NUMBERS = ("max_concurrent", "per_minute", "ring_timeout")
N = TypeVar("N", int, float)


@bp.route("/new", methods=["GET", "POST"])
@manager_required
def new() -> ResponseReturnValue:
    if request.method == "GET":
        return _page(_values_of(None), None, None)
    values = _values_from(request.form)
    try:
        c = store.create(_settings(values), current_user.username)
    except ValueError as exc:
        return _page(values, None, str(exc)), 400
    log.info("campaign %s: created by %s", c.name, current_user.username)
    flash(f"Campaign {c.name} is created as a draft: import its contacts, then start it.")
    return redirect(url_for("campaigns.detail", campaign_id=c.id))


@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
@manager_required
def edit(campaign_id: int) -> ResponseReturnValue:
    c = campaign_or_404(campaign_id)
    if request.method == "GET":
        return _page(_values_of(store.settings_of(c)), c, None)
    values = _values_from(request.form)
    try:
        store.update(c.id, _settings(values))
    except ValueError as exc:
        return _page(values, c, str(exc)), 400
    log.info("campaign %s: settings changed by %s", c.name, current_user.username)
    running = " (it is running: the next dial uses them)" if c.status == "running" else ""
    flash(f"Campaign {values['name']}: settings saved{running}.")
    return redirect(url_for("campaigns.detail", campaign_id=c.id))


def _page(values: Mapping[str, Any], c: Any, error: str | None) -> str:
    field = error.partition(":")[0] if error else None
    return render_template(
        "campaigns/form.html",
        v=values,
        c=c,
        error=error,
        error_field=field.replace("retries.", "retry-") if field else None,
        pbxes=_pbx_names(),
        days=DAYS,
        retried=RETRIED,
        retry_labels=RETRY_LABELS,
        zones=_zones(),
    )


def _values_of(s: CampaignSettings | None) -> dict[str, Any]:
    """The form's values from stored settings, or a new campaign's defaults."""
    if s is None:
        pbxes = _pbx_names()
        tz = ScheduleSections(Path(), os.environ).server_timezone()
        s = CampaignSettings(name="", pbx=pbxes[0] if pbxes else "", mode="broadcast", timezone=tz)
    hours_start, _, hours_end = s.hours.partition("-")
    days = parse_days(s.days)
    values: dict[str, Any] = {
        **{k: getattr(s, k) or "" for k in TEXT},
        "amd": s.amd,
        "days": [d for i, d in enumerate(DAYS) if i in days],
        "hours_start": hours_start,
        "hours_end": hours_end,
        "window_start": s.window_start,
        "window_end": s.window_end,
        **{k: f"{getattr(s, k):g}" for k in NUMBERS},
    }
    for outcome in RETRIED:
        rule = s.retries.get(outcome, DEFAULT_RETRIES[outcome])
        values[f"retry-{outcome}-after"] = f"{rule.after_minutes:g}"
        values[f"retry-{outcome}-max"] = str(rule.max_attempts)
    return values


def _values_from(form: Mapping[str, Any]) -> dict[str, Any]:
    """The posted values as typed (shown again when they are refused)."""
    values: dict[str, Any] = {k: str(form.get(k, "")).strip() for k in (*TEXT, *TIMES, *NUMBERS)}
    values["amd"] = form.get("amd") == "on"
    values["days"] = [d for d in DAYS if d in form.getlist("days")]  # type: ignore[attr-defined]
    for outcome in RETRIED:
        for part in ("after", "max"):
            key = f"retry-{outcome}-{part}"
            values[key] = str(form.get(key, "")).strip()
    return values


def _settings(v: Mapping[str, Any]) -> CampaignSettings:
    """Checked settings from the form's values; ValueError "field: must be …" for the first wrong one."""
    pbxes = _pbx_names()
    if v["pbx"] not in pbxes:
        configured = ", ".join(pbxes) or "none is configured: add a [[pbx]] to the config file"
        raise ValueError(f"pbx: must be one of the configured PBXes ({configured})")
    if not v["days"]:
        raise ValueError("days: must be at least one weekday")
    broadcast = v["mode"] == "broadcast"
    retries = {
        o: RetryRule(
            _number(v[f"retry-{o}-after"], float, f"retries.{o}"),
            _number(v[f"retry-{o}-max"], int, f"retries.{o}"),
        )
        for o in RETRIED
    }
    s = CampaignSettings.checked(
        name=v["name"],
        pbx=v["pbx"],
        mode=v["mode"],
        timezone=v["timezone"],
        caller_id=v["caller_id"] or None,
        message=(v["message"] or None) if broadcast else None,
        queue=v["queue"] or None,
        amd=bool(v["amd"]) and broadcast,
        days=",".join(v["days"]),
        hours=f"{v['hours_start']}-{v['hours_end']}",
        window_start=v["window_start"],
        window_end=v["window_end"],
        max_concurrent=_number(v["max_concurrent"], int, "max_concurrent"),
        per_minute=_number(v["per_minute"], float, "per_minute"),
        ring_timeout=_number(v["ring_timeout"], int, "ring_timeout"),
        retries=retries,
    )
    return check_for_pbx(s, _pbx_types()[s.pbx])


def _number(text: str, kind: type[N], field: str) -> N:
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{field}: must be a {'whole ' if kind is int else ''}number") from None


def _pbx_names() -> list[str]:
    return list(_pbx_types())


def _pbx_types() -> dict[str, str]:
    config: Config = current_app.extensions["pbxlink.config"]
    return {p.name: p.type for p in config.pbx}


@cache
def _zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())
