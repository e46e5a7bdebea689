"""The do-not-call list's page: search it, add a number, take one off, import a CSV of numbers.

Numbers are kept by their key (pbxlink.storage.dnc), so one number written three ways is one
entry; the dialler checks the list again right before every dial, so a number added here
during a campaign is never called. Admins and supervisors only.
"""

from __future__ import annotations

import logging
import math
import secrets

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from pbxlink.config import Config
from pbxlink.services.csv_lines import CsvFileError
from pbxlink.services.dnc_import import import_dnc
from pbxlink.storage import dnc as store
from pbxlink.storage.models import DncEntry
from pbxlink.storage.recordings import audit

from .api import int_arg
from .callbacks import local
from .campaign_imports import ENCODINGS, too_large_flash
from .campaigns import manager_required

log = logging.getLogger(__name__)

bp = Blueprint("dnc", __name__, url_prefix="/dnc")

PER_PAGE = 50
MAX_SEARCH = 64


@bp.errorhandler(413)
def too_large(_exc: Exception) -> ResponseReturnValue:
    too_large_flash()
    return redirect(url_for(".index"))


@bp.get("")
@manager_required
def index() -> str:
    search = request.args.get("search", "").strip()[:MAX_SEARCH]
    page = int_arg("page", 1, 1, None)
    entries, total = store.page(search or None, PER_PAGE, (page - 1) * PER_PAGE)
    return render_template(
        "dnc/index.html",
        entries=entries,
        search=search,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        total=total,
        everything=store.count(),
        encodings=ENCODINGS,
        local=local,
    )


@bp.post("/add")
@manager_required
def add() -> ResponseReturnValue:
    number = request.form.get("number", "").strip()
    reason = request.form.get("reason", "").strip() or None
    try:
        entry, created = store.add(number, reason, current_user.username)
    except ValueError as exc:
        flash(f"Not added: {exc}.", "error")
        return redirect(url_for(".index"))
    if created:
        log.info("do-not-call list: %s added by %s", entry.number, current_user.username)
        flash(f"{entry.number} is on the do-not-call list: no campaign calls it from now on.")
    else:
        flash(f"{entry.number} was on the do-not-call list already (since {local(entry.added_at)}).")
    return redirect(url_for(".index", search=entry.number))


@bp.post("/<int:entry_id>/remove")
@manager_required
def remove(entry_id: int) -> ResponseReturnValue:
    entry = DncEntry.get_or_none(DncEntry.id == entry_id)
    if entry is None or not store.remove(entry_id):
        abort(404, f"no do-not-call entry #{entry_id}")
    audit(current_user.username, "dnc_remove", f"dnc:{entry.number}", {"reason": entry.reason})
    log.info("do-not-call list: %s removed by %s", entry.number, current_user.username)
    flash(f"{entry.number} is off the do-not-call list: campaigns may call it again.")
    return redirect(url_for(".index"))


@bp.post("/import")
@manager_required
def import_csv() -> ResponseReturnValue:
    """A CSV of numbers (pbxlink.services.dnc_import): read as it is uploaded, the result in a message."""
    file = request.files.get("file")
    encoding = request.form.get("encoding", "")
    if file is None or not file.filename or encoding not in ENCODINGS:
        flash("Choose a CSV file and its encoding.", "error")
        return redirect(url_for(".index"))
    config: Config = current_app.extensions["pbxlink.config"]
    folder = config.data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"dnc-{secrets.token_hex(16)}.csv"
    file.save(path)
    who = current_user.username
    try:
        stats = import_dnc(path, encoding, by=who)
    except CsvFileError as exc:
        flash(f"The file cannot be imported: {exc}.", "error")
        return redirect(url_for(".index"))
    finally:
        path.unlink(missing_ok=True)
    log.info(
        "do-not-call list: %d numbers imported by %s (%d listed already)", stats.added, who, stats.already
    )
    added = f"{stats.added} number{'' if stats.added == 1 else 's'}"
    was = "was" if stats.already == 1 else "were"
    flash(f"{added} added to the do-not-call list; {stats.already} {was} on it already.")
    if stats.rejected:
        more = stats.rejected - len(stats.problems)
        shown = "; ".join(stats.problems) + (f" and {more} more" if more else "")
        flash(f"{stats.rejected} lines were skipped: {shown}.", "error")
    return redirect(url_for(".index"))
