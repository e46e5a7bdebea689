"""`GET /r/<token>`: a call's recording through a signed, expiring link (the one in CRM call logs).

No login: the signature is the permission, as for a CRM user clicking the link. The token
names a call, never a file. The file is served by its row in the recordings index (indexed
on the spot from the call log's path when the indexer has not got to it yet), and only if
its real path (symlinks followed) lies inside a `[recordings]` folder and is a regular file.
Everything else is a plain 404 and one WARNING line saying which call and why; each playback
is written to the audit log as a listen by "link".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue

from pbxlink.config import Config
from pbxlink.services.recording_links import RecordingLinkExpired, RecordingLinkInvalid, RecordingLinks
from pbxlink.storage import recordings
from pbxlink.storage.models import Call, Recording
from pbxlink.storage.recording_files import Refused, open_regular, resolve

from .audio import stream

log = logging.getLogger(__name__)

bp = Blueprint("recordings", __name__)


@bp.get("/r/<token>")
def play(token: str) -> ResponseReturnValue:
    cfg: Config = current_app.extensions["pbxlink.config"]
    links = RecordingLinks(
        str(current_app.config["SECRET_KEY"]), cfg.web.public_url or "", cfg.recordings.link_days * 86400
    )
    who = request.remote_addr or "unknown"
    try:
        pbx, call_id = links.verify(token)
    except RecordingLinkExpired as exc:
        log.info("recording link for call %s:%s from %s has expired", exc.pbx, exc.call_id, who)
        days = f"{cfg.recordings.link_days:g}"
        return render_template("recordings/expired.html", call=f"{exc.pbx}:{exc.call_id}", days=days), 410
    except RecordingLinkInvalid as exc:
        log.warning("recording link from %s refused: %s (tampered or cut short?)", who, exc)
        abort(404)
    key = f"{pbx}:{call_id}"
    folders = cfg.recordings.folders
    try:
        rec = _indexed(pbx, call_id, folders)
        if rec is not None and rec.status == "deleted":
            deleted = rec.deleted_at.strftime("%Y-%m-%d") if rec.deleted_at else None
            page = {"id": rec.id, "deleted": deleted, "deleted_by": rec.deleted_by}
            return render_template("recordings/gone.html", r=page, code=410), 410
        if rec is None:
            raise Refused("the call log has no recording for it")
        file, st = open_regular(resolve(rec.path, folders))
    except (Refused, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.warning("recording link for call %s refused: %s", key, why)
        abort(404)
    if request.headers.get("Range", "bytes=0-") == "bytes=0-":  # a playback starts, not a seek
        recordings.audit("link", "listen", f"recording:{rec.id}", {"address": who, "call": key})
    response = stream(file, st, rec.path)
    part = response.headers.get("Content-Range") or f"the whole file, {st.st_size} bytes"
    log.info("recording link: served call %s (HTTP %d, %s) to %s", key, response.status_code, part, who)
    return response


@bp.after_request
def _private(response: Response) -> Response:
    """Recordings and the pages about them stay out of every shared cache."""
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _indexed(pbx: str, call_id: str, folders: Sequence[Path]) -> Recording | None:
    """The call's recording in the index; one the indexer has not reached yet is indexed now."""
    rec = next(iter(recordings.for_call(pbx, call_id)), None)
    if rec is not None:
        return rec
    call = Call.get_or_none(Call.pbx == pbx, Call.call_id == call_id)
    if call is None or not call.recording:
        return None
    real = resolve(call.recording, folders)  # refused here: nothing outside a folder gets a row
    folder = next(str(f) for f in folders if Path(real).is_relative_to(Path(f).resolve()))
    return recordings.upsert(
        real, folder, pbx=pbx, call_id=call_id, started_at=call.started_at, source="link"
    )
