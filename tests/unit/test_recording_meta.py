"""Recording metadata read from real files: WAVs written with `wave`, broken headers, other formats' magic."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from pbxlink.services.recording_meta import probe_duration, read_meta, sniff
from pbxlink.storage.recording_files import Refused


def write_wav(path: Path, seconds: float, rate: int = 8000, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * channels * int(rate * seconds))
    return path


def test_wav_size_format_duration_and_hash(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", 2.5, rate=16000, channels=2)
    meta = read_meta(str(path))
    assert meta.format == "wav"
    assert meta.duration == 2.5
    assert meta.size == path.stat().st_size == 44 + 2.5 * 16000 * 4
    assert meta.mtime == path.stat().st_mtime
    assert meta.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_hash_is_streamed_over_chunks(tmp_path: Path) -> None:
    """A file bigger than the read chunk hashes the same as hashlib over all its bytes."""
    path = write_wav(tmp_path / "long.wav", 80)  # 1.28 MB: more than one 1 MiB chunk
    assert read_meta(str(path)).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_empty_wav_header_is_zero_seconds(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "empty.wav", 0)
    meta = read_meta(str(path))
    assert (meta.format, meta.duration, meta.size) == ("wav", 0.0, 44)


def test_truncated_wav_counts_the_frames_really_there(tmp_path: Path) -> None:
    """The header promises 2 s; half the data is there (the PBX died mid-write): 1 s, no exception."""
    path = write_wav(tmp_path / "cut.wav", 2)
    with path.open("r+b") as f:
        f.truncate(44 + 16000)
    assert read_meta(str(path)).duration == 1.0


def test_wav_still_being_written_has_zero_frames_in_header(tmp_path: Path) -> None:
    """MixMonitor fixes the sizes in the header only at the end: the bytes count, not the header."""
    path = write_wav(tmp_path / "open.wav", 3)
    data = bytearray(path.read_bytes())
    data[40:44] = (0).to_bytes(4, "little")  # data chunk size 0
    path.write_bytes(bytes(data))
    assert read_meta(str(path)).duration == 3.0


@pytest.mark.parametrize("cut", [0, 4, 12, 30])
def test_broken_header_is_duration_none_never_an_exception(tmp_path: Path, cut: int) -> None:
    path = write_wav(tmp_path / "b.wav", 1)
    path.write_bytes(path.read_bytes()[:cut])
    meta = read_meta(str(path), probe=False)
    assert meta.duration is None
    assert meta.size == cut
    assert meta.format == ("wav" if cut >= 12 else None)


def test_garbage_after_riff_wave_magic(tmp_path: Path) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(200))
    meta = read_meta(str(path), probe=False)
    assert (meta.format, meta.duration) == ("wav", None)


@pytest.mark.parametrize(
    ("header", "fmt"),
    [
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64\x00\x00", "mp3"),  # an MPEG-1 layer III frame sync, no tag
        (b"OggS\x00\x02" + b"\x00" * 22 + b"\x01\x1evorbis", "ogg"),
        (b"OggS\x00\x02" + b"\x00" * 22 + b"OpusHead", "opus"),
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"\x00\x00\x00\x20ftypM4A ", "m4a"),
        (b"hello, this is text", None),
        (b"", None),
    ],
)
def test_format_from_magic_not_name(header: bytes, fmt: str | None, tmp_path: Path) -> None:
    assert sniff(header) == fmt
    path = tmp_path / "recording.wav"  # the name says wav; the bytes decide
    path.write_bytes(header + b"\x00" * 100)
    meta = read_meta(str(path), probe=False)
    assert meta.format == fmt
    assert meta.duration is None


def test_a_link_or_a_folder_is_refused(tmp_path: Path) -> None:
    real = write_wav(tmp_path / "a.wav", 1)
    (tmp_path / "link.wav").symlink_to(real)
    with pytest.raises(OSError):
        read_meta(str(tmp_path / "link.wav"))
    with pytest.raises(Refused):
        read_meta(str(tmp_path))


@pytest.mark.skipif(not (shutil.which("sox") and shutil.which("soxi")), reason="sox is not installed")
def test_probe_reads_what_wave_cannot(tmp_path: Path) -> None:
    src = write_wav(tmp_path / "a.wav", 2)
    ogg = tmp_path / "a.ogg"
    subprocess.run(["sox", str(src), str(ogg)], check=True, capture_output=True)
    assert probe_duration(str(ogg)) == pytest.approx(2.0, abs=0.05)


def test_probe_of_an_unreadable_file_is_none(tmp_path: Path) -> None:
    path = tmp_path / "x.mp3"
    path.write_bytes(b"ID3" + b"\x00" * 50)
    assert probe_duration(str(path)) is None
