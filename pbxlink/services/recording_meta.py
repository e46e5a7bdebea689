"""What a recording file holds: size, format (from its header, not its name), duration and SHA-256.

A file the PBX is still writing, or one cut short, has a header that lies or is missing: every
reader here answers None for what it cannot tell and never raises for a bad file (only an
OSError for a file that cannot be opened at all), so one broken file never stops a scan.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import struct
import subprocess
import wave
from dataclasses import dataclass
from typing import BinaryIO

from pbxlink.storage.recording_files import open_regular

log = logging.getLogger(__name__)

CHUNK = 1 << 20
PROBE_TIMEOUT = 10.0  # seconds for soxi / ffprobe on one file


@dataclass(frozen=True)
class FileMeta:
    size: int
    mtime: float
    format: str | None  # wav, mp3, ogg, flac, m4a, gsm … or None when the header is not known
    duration: float | None  # seconds, or None when it cannot be read
    sha256: str


def read_meta(real: str, probe: bool = True) -> FileMeta:
    """The metadata of the regular file at `real` (opened without following a link).

    `probe`: ask soxi / ffprobe for the duration of formats the stdlib cannot read.
    """
    file, st = open_regular(real)
    with file:
        header = file.read(64)
        fmt = sniff(header)
        duration = wav_duration(file, st.st_size) if fmt == "wav" else None
        file.seek(0)
        digest = hashlib.sha256()
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    if duration is None and fmt is not None and st.st_size > len(header) and probe:
        duration = probe_duration(real)
    return FileMeta(
        size=st.st_size, mtime=st.st_mtime, format=fmt, duration=duration, sha256=digest.hexdigest()
    )


def sniff(header: bytes) -> str | None:
    """The format the first bytes of a file announce."""
    if header[:4] == b"RIFF" and header[8:12] == b"WAVE":
        return "wav"
    if header[:4] == b"OggS":
        return "opus" if b"OpusHead" in header else "ogg"
    if header[:3] == b"ID3" or (len(header) > 1 and header[0] == 0xFF and header[1] & 0xE0 == 0xE0):
        return "mp3"  # an ID3 tag, or an MPEG audio frame sync
    if header[:4] == b"fLaC":
        return "flac"
    if header[4:8] == b"ftyp":
        return "m4a"
    if header[:1] and header[0] >> 4 == 0xD:  # raw GSM 06.10 frames (Asterisk's "gsm" format)
        return "gsm"
    return None


def wav_duration(file: BinaryIO, size: int) -> float | None:
    """Seconds of PCM audio, counted from the bytes actually there: a header still saying 0 frames
    (the PBX is writing) or more frames than the file holds (cut short) does not mislead it."""
    try:
        file.seek(0)
        with wave.open(file, "rb") as w:
            data_start = file.tell()  # wave stops reading right after the data chunk's header
            frame_size = w.getnchannels() * w.getsampwidth()
            rate = w.getframerate()
            declared = w.getnframes()
    except (wave.Error, EOFError, ValueError, OSError, struct.error):  # struct: a header cut mid-field
        return None
    if frame_size <= 0 or rate <= 0:
        return None
    present = max(size - data_start, 0) // frame_size
    frames = min(declared, present) if declared else present
    return round(frames / rate, 3)


def probe_duration(real: str) -> float | None:
    """The duration by `soxi -D` or `ffprobe` when installed (argument list, no shell, a timeout)."""
    commands: list[list[str]] = []
    if soxi := shutil.which("soxi"):
        commands.append([soxi, "-D", real])
    if ffprobe := shutil.which("ffprobe"):
        entries = ["-show_entries", "format=duration", "-of", "default=noprint_wrappers=1:nokey=1"]
        commands.append([ffprobe, "-v", "error", *entries, real])
    for cmd in commands:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False)
            value = float(done.stdout.strip())
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            log.debug("recording %s: %s could not tell its duration: %s", real, cmd[0], exc)
            continue
        if done.returncode == 0 and value >= 0:
            return round(value, 3)
    return None
