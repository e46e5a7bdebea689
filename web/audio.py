"""Streaming a recording opened safely by pbxlink.storage.recording_files: Range, types, headers."""

from __future__ import annotations

import os
import re
from typing import BinaryIO

from flask import request, send_file
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.wrappers import Response as BaseResponse

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")  # what may reach Content-Disposition
AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
}


def stream(file: BinaryIO, st: os.stat_result, stored: str, *, download: bool = False) -> BaseResponse:
    """The file with Range support (seeking in a player), from the opened file, never by path again."""
    name = _UNSAFE_NAME.sub("_", os.path.basename(stored)).lstrip(".")[-100:] or "recording"
    ext = os.path.splitext(name)[1].lower()
    response = send_file(
        file,
        mimetype=AUDIO_TYPES.get(ext, "application/octet-stream"),
        as_attachment=download,
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
