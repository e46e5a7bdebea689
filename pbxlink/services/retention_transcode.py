"""Compressing old WAV recordings with the system's `ffmpeg` or `sox`, never losing the original first.

The new file is written beside the WAV under a temporary name, checked (not empty; as long
as the WAV, within a second, when a probe can tell), renamed, recorded in the row (path,
format, size, SHA-256), and only then is the WAV removed. Any failure leaves the WAV and the
row as they were. The tools run from an argument list with a timeout, never through a shell.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pbxlink.services.recording_meta import FileMeta, read_meta
from pbxlink.storage.models import Recording
from pbxlink.storage.recording_files import Refused, resolve

log = logging.getLogger(__name__)

_FFMPEG_CODECS = {
    "mp3": ("-codec:a", "libmp3lame", "-q:a", "4"),
    "ogg": ("-codec:a", "libvorbis", "-q:a", "4"),
    "opus": ("-codec:a", "libopus", "-b:a", "24k"),
}


@dataclass(frozen=True)
class Transcoder:
    """A found tool: `kind` "ffmpeg" or "sox", at `exe`."""

    kind: str
    exe: str
    timeout: float = 600.0

    @classmethod
    def find(cls, path: str | None = None) -> Transcoder | None:
        """ffmpeg else sox on PATH (or `path`); None, said once, when neither is there."""
        for kind in ("ffmpeg", "sox"):
            if exe := shutil.which(kind, path=path):
                return cls(kind, exe)
        log.warning(
            "retention: a policy asks for transcoding but neither ffmpeg nor sox is installed: "
            "recordings stay WAV (install one of them and restart to compress them)"
        )
        return None

    def command(self, src: str, dst: str) -> list[str]:
        fmt = os.path.splitext(dst)[1].lstrip(".")
        if self.kind == "sox":
            return [self.exe, "-q", src, dst]
        return [self.exe, "-nostdin", "-loglevel", "error", "-y", "-i", src, *_FFMPEG_CODECS[fmt], dst]


def transcode_one(rec: Recording, fmt: str, folders: Sequence[Path], tool: Transcoder) -> bool:
    """One recording to `fmt`; True when the row now names the new file and the WAV is gone."""
    try:
        src = resolve(rec.path, folders)
        if src != os.path.normpath(rec.path):
            raise Refused("the stored path is a link, not the recording file")
    except Refused as exc:
        log.warning("retention: recording #%d not transcoded: %s (stored path %r)", rec.id, exc, rec.path)
        return False
    stem = os.path.splitext(src)[0]
    dst, tmp = f"{stem}.{fmt}", f"{stem}.transcoding.{fmt}"
    if os.path.lexists(dst):
        log.warning("retention: recording #%d not transcoded: %s already exists", rec.id, dst)
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # left by a run cut short (or a link put there): the tool must write a new file
    why, meta = _convert(tool, src, tmp, rec.duration)
    if meta is not None and os.path.lexists(dst):
        why, meta = f"left it: {dst} appeared meanwhile", None
    if meta is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        log.warning("retention: recording #%d kept as WAV: %s %s", rec.id, tool.kind, why)
        return False
    os.rename(tmp, dst)
    Recording.update(
        path=dst, format=fmt, size=meta.size, sha256=meta.sha256, mtime=meta.mtime, duration=meta.duration
    ).where(Recording.id == rec.id).execute()
    os.unlink(src)
    log.info("retention: recording #%d transcoded to %s (%d -> %d bytes)", rec.id, fmt, rec.size, meta.size)
    return True


def _convert(tool: Transcoder, src: str, tmp: str, duration: float | None) -> tuple[str, FileMeta | None]:
    """The metadata of `tmp` once it holds a verified copy of `src`; else why not (and None)."""
    try:
        done = subprocess.run(tool.command(src, tmp), capture_output=True, timeout=tool.timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"took more than {tool.timeout:g} s", None
    except OSError as exc:
        return f"could not start: {exc.strerror}", None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        return f"failed (exit {done.returncode}: {tail[0][:200]})", None
    try:
        meta = read_meta(tmp)
    except (OSError, Refused):
        return "wrote no file", None
    if meta.size == 0:
        return "wrote an empty file", None
    before = read_meta(src).duration if duration is None else duration
    if before is not None and meta.duration is not None and abs(before - meta.duration) > 1.0:
        return f"wrote {meta.duration:.1f} s of audio from {before:.1f} s", None
    return "", meta
