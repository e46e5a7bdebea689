"""The recording indexer on a real folder tree and a real SQLite call log: scans, resume, the bus, the CLI."""

from __future__ import annotations

import json
import logging
import os
import pty
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import peewee as pw
import pytest

from pbxlink.bus import InProcessBus
from pbxlink.domain.calls import CallEnded, CallRecord, RecordingReady
from pbxlink.services.recording_index import parse_name, recording_handler
from pbxlink.services.recording_scan import ScanStats, scan
from pbxlink.storage import recordings
from pbxlink.storage.calls import save_call
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import AuditEntry, Recording, Setting
from tests.unit.test_cli import CONFIG, PBXLINK, pbxlink

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
AST_UID = "1767603600.42"
FPBX_UID = "1767603700.7"
FS_UUID = "0b7a3f0e-5d0c-4a4e-9d7e-2f6c1b9e8a11"
FPBX_IN = f"in-2025550143-2025550199-20260105-090000-{FPBX_UID}.wav"
FPBX_OUT = "out-2025550111-201-20260105-100000-1767609999.1.wav"


def wav(path: Path, seconds: float = 0.5) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * int(8000 * seconds))
    return path


def call(pbx: str, call_id: str, minutes: int = 0, **fields: object) -> CallRecord:
    values: dict[str, object] = {
        "direction": "inbound",
        "caller": "+12025550143",
        "callee": "2025550100",
        "agent": "201",
        "agents": ["201", "202"],
        "queue": "sales",
        "disposition": "answered",
        "talk_seconds": 42.0,
        "ended_at": T0 + timedelta(minutes=minutes, seconds=60),
        **fields,
    }
    return CallRecord(pbx=pbx, call_id=call_id, started_at=T0 + timedelta(minutes=minutes), **values)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[pw.Database]:
    database = connect(f"sqlite:///{tmp_path}/state/pbxlink.db")
    migrate(database)
    yield database
    database.close()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A recording folder as Asterisk, FreePBX and FreeSWITCH leave it, with links leading out."""
    root = tmp_path / "rec"
    wav(root / "2026/01/05" / f"{AST_UID}.wav", 1.0)
    wav(root / "2026/01/05" / FPBX_IN, 2.0)
    wav(root / "2026/01/06" / FPBX_OUT)
    wav(root / "fs" / f"{FS_UUID}.wav")
    (root / "notes").mkdir()
    (root / "notes" / "greeting.mp3").write_bytes(b"ID3\x04" + b"\x00" * 60)
    outside = tmp_path / "secret"
    wav(outside / "private.wav")
    (root / "link.wav").symlink_to(outside / "private.wav")
    (root / "linkdir").symlink_to(outside)
    return root


def rows() -> dict[str, Recording]:
    return {Path(r.path).name: r for r in Recording.select()}


@pytest.mark.usefixtures("db")
def test_first_scan_indexes_and_links_then_flags_changed_and_missing(tree: Path) -> None:
    save_call(call("main", AST_UID))
    save_call(call("main", FPBX_UID, 5, caller="2025550199", agents=["203"], agent="203"))
    save_call(call("fs", FS_UUID, 10, direction="outbound", disposition="missed", agents=[], agent=None))
    stats = scan([tree], ["main", "fs"], probe=False)
    assert (stats.seen, stats.indexed, stats.linked, stats.errors, stats.missing) == (5, 5, 3, 0, 0)
    found = rows()
    assert set(found) == {f"{AST_UID}.wav", FPBX_IN, FPBX_OUT, f"{FS_UUID}.wav", "greeting.mp3"}  # no links
    ast = found[f"{AST_UID}.wav"]
    assert (ast.pbx, ast.call_id, ast.agent, ast.queue, ast.talk_seconds) == (
        "main",
        AST_UID,
        "202",
        "sales",
        42.0,
    )
    assert (ast.caller_e164, ast.started_at, ast.duration, ast.format) == ("+12025550143", T0, 1.0, "wav")
    assert ast.path == str((tree / "2026/01/05" / f"{AST_UID}.wav").resolve())
    assert ast.folder == str(tree.resolve())
    assert (found[FPBX_IN].call_id, found[FPBX_IN].agent) == (FPBX_UID, "203")
    assert (found[f"{FS_UUID}.wav"].pbx, found[f"{FS_UUID}.wav"].disposition) == ("fs", "missed")
    out = found[FPBX_OUT]  # no such call logged: what the FreePBX name says
    assert (out.call_id, out.direction, out.agent, out.callee_e164) == (
        None,
        "outbound",
        "201",
        "+12025550111",
    )
    assert out.started_at == datetime(2026, 1, 5, 10, 0).astimezone()
    mp3 = found["greeting.mp3"]  # a file of no known naming: unlinked, at its mtime
    assert (mp3.call_id, mp3.format) == (None, "mp3")
    assert mp3.started_at.timestamp() == pytest.approx(
        (tree / "notes/greeting.mp3").stat().st_mtime, abs=1e-3
    )
    assert {(r.source, r.status, len(r.sha256 or "")) for r in found.values()} == {("scan", "present", 64)}

    # The next scan: one file overwritten, one deleted, the outbound call logged meanwhile.
    changed = tree / "2026/01/05" / FPBX_IN
    wav(changed, 3.0)
    os.utime(changed, (time.time() + 5, time.time() + 5))
    (tree / "fs" / f"{FS_UUID}.wav").unlink()
    save_call(call("main", "1767609999.1", 60, direction="outbound", agents=["201"]))
    again = scan([tree], ["main", "fs"], probe=False)
    assert (again.seen, again.indexed, again.changed, again.missing, again.linked) == (4, 1, 1, 1, 1)
    after = rows()
    assert (after[FPBX_IN].status, after[FPBX_IN].duration) == ("changed", 3.0)
    assert after[FPBX_IN].sha256 != found[FPBX_IN].sha256
    audit = AuditEntry.get(AuditEntry.action == "changed")
    assert (audit.user, audit.target) == ("system", f"recording:{found[FPBX_IN].id}")
    before, after_hash = found[FPBX_IN].sha256, after[FPBX_IN].sha256
    assert json.loads(audit.detail or "null") == {"before": before, "after": after_hash}
    assert after[f"{FS_UUID}.wav"].status == "missing"
    assert (after[FPBX_OUT].call_id, after[FPBX_OUT].status) == ("1767609999.1", "present")
    assert Recording.select().count() == 5

    # A third scan with nothing changed reads no file again and flags nothing new.
    third = scan([tree], ["main", "fs"], probe=False)
    assert (third.seen, third.indexed, third.changed, third.missing, third.linked) == (4, 0, 0, 0, 0)


@pytest.mark.usefixtures("db")
def test_a_killed_scan_resumes_after_the_last_directory_done(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    for d in range(6):
        for f in range(3):
            wav(root / f"d{d}" / ("sub" if d == 2 else "") / f"{1767600000 + d * 10 + f}.{f}.wav", 0)

    class Killed(Exception):
        pass

    def kill_at_8(stats: ScanStats) -> None:
        if stats.seen == 8:
            raise Killed

    with pytest.raises(Killed):
        scan([root], progress=kill_at_8)
    # d0, d1 and d2/sub were done (9 files would be; the 8th file's directory rolled back)
    assert Recording.select().count() == 6
    assert Setting.select().where(Setting.key.startswith("recscan:")).count() == 1
    resumed = scan([root])
    assert resumed.resumed
    assert (resumed.seen, resumed.indexed, resumed.missing) == (12, 12, 0)
    assert Recording.select().count() == 18
    assert Setting.select().where(Setting.key.startswith("recscan:")).count() == 0  # finished: forgotten
    restarted = scan([root], resume=False)
    assert (restarted.resumed, restarted.seen, restarted.indexed, restarted.total) == (False, 18, 0, 18)


@pytest.mark.usefixtures("db")
def test_bus_handler_indexes_the_announced_file_once_it_appears(
    tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pbxlink.services.recording_index")
    bus = InProcessBus()
    bus.subscribe("recordings", recording_handler([tree], retry_delays=(0.2, 0.5, 1.0, 2.0, 5.0)))
    rec = call("main", "1767700000.1", recording="late/1767700000.1.wav")
    bus.publish(RecordingReady(call=rec, at=T0, path="late/1767700000.1.wav"))
    threading.Timer(0.3, wav, [tree / "late" / "1767700000.1.wav", 1.5]).start()  # the PBX is still moving it
    bus.publish(CallEnded(call=call("main", "c-out", recording="../secret/private.wav"), at=T0))
    bus.publish(CallEnded(call=call("main", "c-link", recording="link.wav"), at=T0))
    bus.publish(CallEnded(call=call("main", "c-none"), at=T0))  # no recording: nothing to do
    bus.close(timeout=30)
    row = recordings.for_call("main", "1767700000.1")
    assert len(row) == 1
    assert (row[0].source, row[0].duration, row[0].agent, row[0].status) == ("tracker", 1.5, "202", "present")
    assert row[0].folder == str(tree.resolve())
    assert Recording.select().count() == 1  # neither the climb out nor the link out
    assert "not there yet" in caplog.text
    assert "call main:c-out not indexed" in caplog.text and "'..'" in caplog.text
    assert "call main:c-link not indexed" in caplog.text


def test_names_of_each_pbx() -> None:
    assert parse_name(f"{AST_UID}.wav") is not None
    assert parse_name(f"{FS_UUID}.wav") is not None
    fpbx = parse_name(FPBX_IN)
    assert fpbx is not None and fpbx.uid == FPBX_UID
    assert (fpbx.fields["direction"], fpbx.fields["callee"], fpbx.fields["caller"]) == (
        "inbound",
        "2025550143",
        "2025550199",
    )
    q = parse_name("q-sales-2025550199-20260105-090000-1767603700.9.wav")
    assert q is not None and q.fields["queue"] == "sales"
    assert parse_name("holiday-greeting.wav") is None
    assert parse_name("in-1-2-20261399-990000-1.2.wav") is not None  # a bad date: no start, still its uid


def test_cli_scan_prints_progress_on_a_terminal_and_a_summary(tmp_path: Path, tree: Path) -> None:
    config = tmp_path / "pbxlink.toml"
    config.write_text(CONFIG + f'\n[recordings]\nfolders = ["{tree}"]\n')
    done = pbxlink("recordings", "scan", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "5 files seen: 5 indexed, 0 linked to calls, 0 changed, 0 missing, 0 errors"
    )
    assert done.stderr == ""  # not a terminal: no progress line for the log
    (tree / "notes" / "greeting.mp3").unlink()
    master, slave = pty.openpty()
    with subprocess.Popen(
        [PBXLINK, "recordings", "scan", "--restart", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
        env={**os.environ, "TZ": "UTC"},
    ) as proc:
        os.close(slave)
        out, _ = proc.communicate(timeout=30)
    terminal = os.read(master, 65536).decode()
    os.close(master)
    assert proc.returncode == 0
    assert "4 files seen: 0 indexed, 0 linked to calls, 0 changed, 1 missing, 0 errors" in out
    assert "\r\x1b[K1 files, 0 indexed" in terminal and "files/s" in terminal
    wrong = pbxlink("recordings", "scan", "--folder", str(tmp_path), "--config", str(config))
    assert wrong.returncode == 1
    assert "is not one of the [recordings] folders" in wrong.stderr


def test_the_periodic_scan_indexes_in_the_background_and_stops_promptly(tmp_path: Path) -> None:
    from pbxlink.services.recording_scan import PeriodicScan
    from pbxlink.storage.database import connect
    from pbxlink.storage.migrations import migrate

    migrate(connect(f"sqlite:///{tmp_path}/scan.db"))
    folder = tmp_path / "monitor"
    folder.mkdir()
    for i in range(3):
        with wave.open(str(folder / f"17954{i}.1.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\0\0" * 800)
    scanner = PeriodicScan([folder], ["main"], interval=3600)
    scanner.start()
    deadline = time.monotonic() + 10
    while Recording.select().count() < 3:
        assert time.monotonic() < deadline, "the background scan indexed nothing"
        time.sleep(0.05)
    started = time.monotonic()
    scanner.stop()
    assert time.monotonic() - started < 2  # not an hour: the wait ends with stop()
