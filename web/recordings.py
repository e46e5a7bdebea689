"""`GET /r/<token>`: a call's recording through a signed, expiring link (the one in CRM call logs).

No login: the signature is the permission, as for a CRM user clicking the link. The token
names a call, never a file: the file is the one the call log holds for it, served only if
its real path (symlinks followed) lies inside a `[recordings]` folder and is a regular file.
Everything else is a plain 404 and one WARNING line saying which call and why.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue

from pbxlink.config import Config
from pbxlink.services.recording_links import RecordingLinkExpired, RecordingLinkInvalid, RecordingLinks
from pbxlink.storage.models import Call
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
    row = Call.get_or_none(Call.pbx == pbx, Call.call_id == call_id)
    if row is None or not row.recording:
        log.warning("recording link for call %s refused: the call log has no recording for it", key)
        abort(404)
    try:
        file, st = open_regular(resolve(row.recording, cfg.recordings.folders))
    except (Refused, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.warning("recording link for call %s refused: %s (stored path %r)", key, why, row.recording)
        abort(404)
    response = stream(file, st, row.recording)
    part = response.headers.get("Content-Range") or f"the whole file, {st.st_size} bytes"
    log.info("recording link: served call %s (HTTP %d, %s) to %s", key, response.status_code, part, who)
    return response


@bp.after_request
def _private(response: Response) -> Response:
    """Recordings and the pages about them stay out of every shared cache."""
    response.headers["Cache-Control"] = "private, no-store"
    return response
