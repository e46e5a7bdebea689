"""Importing a campaign's contacts from the panel: upload, map the columns, watch the import run.

1. The upload is saved under `data_dir/uploads/` with a random name of ours (the browser's file
   name is only ever shown, never a path); the session remembers which uploads are whose.
2. The mapping step shows each column with a select prefilled by `suggest_mapping` and the
   first lines as text; the choice is checked (`columns`) before anything runs.
3. `start_import` runs in a thread; the campaign page polls `GET /api/v1/campaigns/<id>/imports/<n>`.
A rejected-rows file is served only from the import's own row, and only when it lies inside the
rejects folder under `data_dir`: no path ever comes from the request.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from itertools import islice
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from pbxlink.config import Config
from pbxlink.domain.calls import iso
from pbxlink.services.contact_import import rejects_folder, start_import, suggest_mapping
from pbxlink.services.contact_rows import CHOICES, columns
from pbxlink.services.csv_lines import CsvFileError, CsvLines
from pbxlink.storage.models import Campaign, CampaignImport
from pbxlink.storage.recordings import audit

from .campaigns import campaign_or_404, manager_required

log = logging.getLogger(__name__)

bp = Blueprint("campaign_imports", __name__, url_prefix="/campaigns")

ENCODINGS = {
    "utf-8": "UTF-8",
    "windows-1252": "Windows (western Europe, windows-1252)",
    "iso-8859-1": "Latin-1 (iso-8859-1)",
    "utf-16": "UTF-16 (Excel's “Unicode text”)",
}
CHOICE_LABELS = {
    "number": "phone number",
    "name": "name",
    "timezone": "time zone",
    "custom": "custom (a dialplan variable)",
    "ignore": "ignore",
}
MAX_UPLOAD = 100 * 1024 * 1024  # bytes; app.config["PBXLINK_MAX_UPLOAD"] overrides it
UPLOAD_NAME = re.compile(r"[0-9a-f]{32}")
PREVIEW = 5
KEEP_UPLOADS = 24 * 3600  # seconds: an upload nobody mapped (or long imported) is removed after this
SESSION_KEY = "campaign_uploads"
REMEMBERED = 5  # uploads a session keeps track of


def limit_uploads(app: Flask) -> None:
    """Cap the upload's body before anything reads it (the CSRF check parses the form first)."""

    def cap() -> None:
        if request.endpoint in ("campaign_imports.upload", "dnc.import_csv"):
            request.max_content_length = max_upload()

    app.before_request_funcs.setdefault(None, []).insert(0, cap)


def max_upload() -> int:
    return int(current_app.config.get("PBXLINK_MAX_UPLOAD", MAX_UPLOAD))


@bp.app_context_processor
def _upload_form() -> dict[str, Any]:
    """What the campaign page's upload form and import list need."""
    return {"encodings": ENCODINGS, "upload_limit": upload_limit(), "import_dict": import_dict}


def upload_limit() -> str:
    """The upload limit in words: "100 MB", "2 KB"."""
    limit = max_upload()
    return f"{limit / 2**20:.0f} MB" if limit >= 2**20 else f"{limit / 2**10:.0f} KB"


def too_large_flash() -> None:
    flash(f"The file is over {upload_limit()}: split it into smaller files, import each.", "error")


@bp.errorhandler(413)
def too_large(_exc: Exception) -> ResponseReturnValue:
    too_large_flash()
    return redirect(_back())


@bp.post("/<int:campaign_id>/imports")
@manager_required
def upload(campaign_id: int) -> ResponseReturnValue:
    c = campaign_or_404(campaign_id)
    file = request.files.get("file")
    encoding = request.form.get("encoding", "")
    if encoding not in ENCODINGS:
        flash(f"Choose the file's encoding: one of {', '.join(ENCODINGS)}.", "error")
        return redirect(_back())
    if file is None or not file.filename:
        flash("Choose a CSV file to import.", "error")
        return redirect(_back())
    folder = _uploads()
    _sweep(folder)
    token = secrets.token_hex(16)
    path = folder / f"{token}.csv"
    file.save(path)
    if path.stat().st_size == 0:
        path.unlink()
        flash(f"{_shown(file.filename)} is empty: there is nothing to import.", "error")
        return redirect(_back())
    uploads = [u for u in session.get(SESSION_KEY, []) if u["token"] != token][-(REMEMBERED - 1) :]
    name = _shown(file.filename)
    session[SESSION_KEY] = [
        *uploads,
        {"token": token, "campaign": c.id, "filename": name, "encoding": encoding},
    ]
    log.info("campaign %s: %s uploaded by %s for import", c.name, name, current_user.username)
    return redirect(url_for(".mapping", campaign_id=c.id, token=token))


@bp.route("/<int:campaign_id>/imports/<token>", methods=["GET", "POST"])
@manager_required
def mapping(campaign_id: int, token: str) -> ResponseReturnValue:
    c = campaign_or_404(campaign_id)
    up = _upload_of(c, token)
    path = _uploads() / f"{token}.csv"
    try:
        with CsvLines(path, up["encoding"]) as lines:
            headers = lines.header
            preview = list(islice(lines, PREVIEW))
    except CsvFileError as exc:
        path.unlink(missing_ok=True)
        flash(f"{up['filename']} cannot be imported: {exc}.", "error")
        return redirect(url_for("campaigns.detail", campaign_id=c.id, _anchor="imports"))
    if request.method == "GET":
        return _mapping_page(c, up, headers, preview, suggest_mapping(headers), None)
    chosen = {h: request.form.get(f"col-{i}", "") for i, h in enumerate(headers)}
    try:
        columns(headers, chosen)
    except CsvFileError as exc:
        return _mapping_page(c, up, headers, preview, chosen, str(exc)), 400
    config: Config = current_app.extensions["pbxlink.config"]
    import_id = start_import(
        c.id,
        path,
        chosen,
        filename=up["filename"],
        encoding=up["encoding"],
        by=current_user.username,
        rejects_dir=rejects_folder(config.data_dir),
    )
    session[SESSION_KEY] = [u for u in session.get(SESSION_KEY, []) if u["token"] != token]
    log.info(
        "campaign %s: import #%d of %s started by %s",
        c.name,
        import_id,
        up["filename"],
        current_user.username,
    )
    flash(f"Importing {up['filename']}: its progress is below.")
    return redirect(url_for("campaigns.detail", campaign_id=c.id, _anchor=f"import-{import_id}"))


@bp.get("/<int:campaign_id>/imports/<int:import_id>/rejected.csv")
@manager_required
def rejects(campaign_id: int, import_id: int) -> Response:
    imp = import_or_404(campaign_id, import_id)
    path = rejects_file(imp)
    if path is None:
        abort(404, f"import #{import_id} has no file of rejected rows")
    who = current_user.username
    audit(who, "download", f"campaign-import:{import_id}")
    log.info("campaign #%d: rejected rows of import #%d downloaded by %s", campaign_id, import_id, who)
    return send_file(
        path,
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"campaign-{campaign_id}-import-{import_id}-rejected.csv",
        max_age=0,
    )


def import_or_404(campaign_id: int, import_id: int) -> CampaignImport:
    imp = CampaignImport.get_or_none(
        (CampaignImport.id == import_id) & (CampaignImport.campaign == campaign_id)
    )
    if imp is None:
        abort(404, f"campaign #{campaign_id} has no import #{import_id}")
    return imp


def rejects_file(imp: CampaignImport) -> Path | None:
    """The import's rejects file, if it exists inside the rejects folder; None for anything else."""
    if not imp.rejects_path:
        return None
    config: Config = current_app.extensions["pbxlink.config"]
    folder = rejects_folder(config.data_dir).resolve()
    path = Path(imp.rejects_path).resolve()
    return path if path.is_relative_to(folder) and path.is_file() else None


def import_dict(imp: CampaignImport) -> dict[str, Any]:
    """An import's progress, JSON-ready (what the progress bar polls)."""
    fraction = imp.read_bytes / imp.total_bytes if imp.total_bytes else 0.0
    if imp.status == "done":
        fraction = 1.0
    rejects_url = None
    if imp.status != "running" and rejects_file(imp) is not None:
        rejects_url = url_for("campaign_imports.rejects", campaign_id=imp.campaign_id, import_id=imp.id)
    return {
        "id": imp.id,
        "campaign": imp.campaign_id,
        "filename": imp.filename,
        "status": imp.status,
        "fraction": round(min(fraction, 1.0), 4),
        "total_bytes": imp.total_bytes,
        "read_bytes": imp.read_bytes,
        "rows": imp.rows,
        "accepted": imp.accepted,
        "rejected": imp.rejected,
        "duplicates": imp.duplicates,
        "dnc": imp.dnc,
        "error": imp.error,
        "rejects_url": rejects_url,
        "started_by": imp.started_by,
        "started_at": iso(imp.started_at),
        "finished_at": iso(imp.finished_at),
    }


def _mapping_page(
    c: Campaign,
    up: dict[str, Any],
    headers: list[str],
    preview: list[Any],
    chosen: dict[str, str],
    error: str | None,
) -> str:
    return render_template(
        "campaigns/mapping.html",
        c=c,
        up=up,
        headers=headers,
        preview=preview,
        chosen=chosen,
        choices=CHOICES,
        choice_labels=CHOICE_LABELS,
        error=error,
    )


def _upload_of(c: Campaign, token: str) -> dict[str, Any]:
    """This session's upload `token` for campaign `c`, whose file is still there; else 404."""
    if UPLOAD_NAME.fullmatch(token):
        for up in session.get(SESSION_KEY, []):
            if up["token"] == token and up["campaign"] == c.id and (_uploads() / f"{token}.csv").is_file():
                return dict(up)
    abort(404, "no such upload (it was imported already, or is too old): upload the file again")


def _uploads() -> Path:
    config: Config = current_app.extensions["pbxlink.config"]
    folder = config.data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _sweep(folder: Path) -> None:
    """Uploads are kept after their import (nothing says when it ends); old ones go on the next upload."""
    cutoff = time.time() - KEEP_UPLOADS
    for old in folder.glob("*.csv"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)


def _shown(filename: str) -> str:
    """The browser's file name for display only: its last part, printable, short."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in name if ch.isprintable())[:120] or "upload.csv"


def _back() -> str:
    campaign_id = request.view_args.get("campaign_id") if request.view_args else None
    if campaign_id is None:
        return url_for("campaigns.index")
    return url_for("campaigns.detail", campaign_id=campaign_id, _anchor="imports")
