"""`GET /r/<token>`: a call's recording through a signed, expiring link (the one in CRM call logs).

No login: the signature is the permission, as for a CRM user clicking the link. The token
names a call, never a file: the file is the one the call log holds for it, served only if
its real path (symlinks followed) lies inside a `[recordings]` folder and is a regular file.
Everything else is a plain 404 and one WARNING line saying which call and why.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from flask import Blueprint, Response, abort, current_app, render_template, request, send_file
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.wrappers import Response as BaseResponse

from pbxlink.config import Config
from pbxlink.services.recording_links import RecordingLinkExpired, RecordingLinkInvalid, RecordingLinks
from pbxlink.storage.models import Call

log = logging.getLogger(__name__)

bp = Blueprint("recordings", __name__)

#: what browsers and CRMs play inline; any other file goes out as bytes, never as something to render
AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class Refused(Exception):
    """The stored recording path may not be served; the message says why, for the log."""


def resolve(stored: str, folders: Sequence[Path]) -> str:
    """The real path of the file `stored` names, inside one of `folders`; raises Refused otherwise.

    The path is taken literally (never URL-decoded). An absolute one must resolve inside a
    folder; a relative one is tried in each folder and must resolve inside that folder.
    """
    if "\x00" in stored:
        raise Refused("the stored path holds a NUL byte")
    if ".." in re.split(r"[/\\]", stored):
        raise Refused("the stored path climbs out with '..'")
    if not folders:
        raise Refused("no [recordings] folders are configured: name the PBX's recording folders there")
    absolute = os.path.isabs(stored)
    seen: set[str] = set()  # what the path is in each folder: "out", "other" (not a file), "missing"
    for folder in folders:
        root = os.path.realpath(folder)
        real = os.path.realpath(os.path.join(root, stored))  # an absolute `stored` replaces `root`
        if os.path.commonpath([real, root]) != root:
            if not absolute:  # a relative path leaving its folder: a link in there leads out
                seen.add("out")
        elif real != root and os.path.isfile(real):  # `real` has no symlinks left to follow
            return real
        else:
            seen.add("other" if os.path.lexists(real) else "missing")
    if "out" in seen or not seen:
        raise Refused(
            "the file lies outside the [recordings] folders (or a link leads out of them): "
            "add its folder there if it should be served"
        )
    if "other" in seen:
        raise Refused("the stored path is a folder (or a pipe, a device), not a recording file")
    raise Refused("no such file in the recording folders (deleted or moved?)")


def open_regular(real: str) -> tuple[BinaryIO, os.stat_result]:
    """The file opened for reading, if it is still a regular file (not swapped for a link meanwhile)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(real, flags)  # O_NONBLOCK: a FIFO put there must not hold the thread
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Refused("the stored path is not a regular file")
    return os.fdopen(fd, "rb"), st


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
    response = _stream(file, st, row.recording)
    part = response.headers.get("Content-Range") or f"the whole file, {st.st_size} bytes"
    log.info("recording link: served call %s (HTTP %d, %s) to %s", key, response.status_code, part, who)
    return response


@bp.after_request
def _private(response: Response) -> Response:
    """Recordings and the pages about them stay out of every shared cache."""
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _stream(file: BinaryIO, st: os.stat_result, stored: str) -> BaseResponse:
    """The file with Range support (seeking in a player), from the opened file, never by path again."""
    name = _UNSAFE_NAME.sub("_", os.path.basename(stored)).lstrip(".")[-100:] or "recording"
    ext = os.path.splitext(name)[1].lower()
    response = send_file(
        file,
        mimetype=AUDIO_TYPES.get(ext, "application/octet-stream"),
        download_name=name,
        conditional=False,
        etag=False,
        last_modified=st.st_mtime,
    )
    response.content_length = st.st_size
    response.set_etag(f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}")  # If-Range: same file, same bytes
    try:
        return response.make_conditional(request.environ, accept_ranges=True, complete_length=st.st_size)
    except RequestedRangeNotSatisfiable:
        file.close()
        raise
