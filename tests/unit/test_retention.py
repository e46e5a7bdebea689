"""Retention on real files in temporary folders and real Recording rows (SQLite): what the preview
promises is what the run deletes, and nothing else is ever unlinked."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import sys
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pbxlink.config import Config, DatabaseConfig, RecordingsConfig, RetentionPolicyConfig, WebConfig
from pbxlink.services.retention import RetentionService, preview, run
from pbxlink.services.retention_transcode import Transcoder
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import AuditEntry, Recording

NOW = datetime(2026, 6, 1, 3, 30, tzinfo=UTC)
RATE = 8000


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    database = connect(f"sqlite:///{tmp_path}/state/pbxlink.db")
    migrate(database)
    rec = tmp_path / "monitor"
    rec.mkdir()
    yield rec
    database.close()


def write_wav(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"\x01\x00" * int(seconds * RATE))
    return path


def recording(folder: Path, name: str, days_old: float, seconds: float = 2.0, **fields: Any) -> Recording:
    path = write_wav(folder / name, seconds)
    return Recording.create(
        path=str(path),
        folder=str(folder),
        started_at=NOW - timedelta(days=days_old),
        size=path.stat().st_size,
        duration=seconds,
        format="wav",
        direction=fields.pop("direction", "inbound"),
        **fields,
    )


def policy(name: str, keep_days: float, **kw: Any) -> RetentionPolicyConfig:
    return RetentionPolicyConfig(name=name, keep_days=keep_days, **kw)


def fresh(rec: Recording) -> Recording:
    return Recording.get_by_id(rec.id)


def test_preview_counts_files_bytes_and_dates_leaving_out_holds_and_gone_files(folder: Path) -> None:
    old = [recording(folder, f"old{i}.wav", 100 + i, seconds=1 + i) for i in range(3)]
    recording(folder, "young.wav", 10)
    recording(folder, "held.wav", 200, legal_hold=True)
    recording(folder, "gone.wav", 200, status="missing")
    recording(folder, "done.wav", 200, status="deleted")
    recording(folder, "other-queue.wav", 200, queue="support")
    plan = preview([policy("sales", 90, queues=("sales",)), policy("all", 30)], NOW)
    sales, everything = plan.policies
    assert (sales.files, sales.ids) == (0, ())
    assert everything.files == 4 and not everything.enabled
    assert everything.bytes == sum(r.size for r in old) + (folder / "other-queue.wav").stat().st_size
    assert everything.oldest == NOW - timedelta(days=200) and everything.newest == NOW - timedelta(days=100)
    assert set(everything.ids) == {r.id for r in old} | {
        Recording.get(path=str(folder / "other-queue.wav")).id
    }
    assert plan.to_delete == ()  # nothing is enabled: the preview deletes nothing
    assert all(p.exists() for p in folder.iterdir())


def test_run_deletes_only_enabled_policies_old_files_and_keeps_the_rows_marked(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sales = [recording(folder, f"s{i}.wav", 40 + i, queue="sales") for i in range(2)]
    young = recording(folder, "s-young.wav", 20, queue="sales")
    support = recording(folder, "support.wav", 400, queue="support")
    policies = [
        policy("sales", 30, queues=("sales",), enabled=True),
        policy("support", 365, queues=("support",)),
    ]
    with caplog.at_level(logging.INFO, logger="pbxlink.services.retention"):
        result = run(policies, NOW, "schedule", folders=[folder])
    assert (result.deleted, result.bytes) == (2, sum(r.size for r in sales))
    (line,) = [r.getMessage() for r in caplog.records]  # one line per run
    assert line.startswith("retention run by schedule: 2 recordings deleted (0.00 GB), 2 by sales;")
    assert result.by_policy == {"sales": 2}
    for rec in sales:
        row = fresh(rec)
        assert not Path(rec.path).exists()
        assert (row.status, row.deleted_at, row.deleted_by) == ("deleted", NOW, "retention:sales")
        assert row.sha256 == rec.sha256 and row.path == rec.path  # the metadata stays
    assert Path(young.path).exists() and fresh(young).status == "present"
    assert Path(support.path).exists() and fresh(support).status == "present"  # its policy is a preview
    (entry,) = AuditEntry.select()
    assert (entry.user, entry.action) == ("schedule", "retention")
    assert json.loads(entry.detail) == {"deleted": 2, "bytes": result.bytes, "by_policy": {"sales": 2}}


def test_a_legal_hold_is_never_deleted_even_when_placed_after_the_preview(folder: Path) -> None:
    held = recording(folder, "held.wav", 500, legal_hold=True)
    later = recording(folder, "later.wav", 500)
    policies = [policy("all", 1, enabled=True)]
    plan = preview(policies, NOW)
    assert plan.policies[0].ids == (later.id,)
    Recording.update(legal_hold=True).where(Recording.id == later.id).execute()
    result = run(plan, NOW, "admin", folders=[folder])
    assert (result.deleted, result.held) == (0, 1)
    assert Path(held.path).exists() and Path(later.path).exists()
    assert fresh(held).status == fresh(later).status == "present"


def test_the_longest_matching_policy_wins_even_before_it_is_enabled(folder: Path) -> None:
    mid = recording(folder, "mid.wav", 100, queue="sales")
    ancient = recording(folder, "ancient.wav", 800, queue="sales")
    inbound = recording(folder, "in.wav", 100, queue="support")
    policies = [
        policy("short", 30, enabled=True),
        policy("sales-long", 730, queues=("sales",)),
    ]
    plan = preview(policies, NOW)
    assert plan.policies[0].ids == (ancient.id, inbound.id)  # sales recordings are kept two years…
    assert plan.policies[1].ids == ()  # …and past that go under the enabled policy
    result = run(policies, NOW, "schedule", folders=[folder])
    assert result.deleted == 2 and result.by_policy == {"short": 2}
    assert Path(mid.path).exists() and not Path(ancient.path).exists() and not Path(inbound.path).exists()


def test_a_direction_or_campaign_policy_matches_only_those(folder: Path) -> None:
    out = recording(folder, "out.wav", 50, direction="outbound")
    inb = recording(folder, "in.wav", 50)
    plan = preview(
        [policy("out", 10, directions=("outbound",)), policy("camp", 10, campaigns=("spring",))], NOW
    )
    assert plan.policies[0].ids == (out.id,) and plan.policies[1].ids == ()
    assert inb.id not in plan.policies[0].ids


def test_a_file_outside_the_folder_or_behind_a_link_is_never_unlinked(folder: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    victim = write_wav(elsewhere / "victim.wav", 1)
    inside = write_wav(folder / "target.wav", 1)
    (folder / "link-out.wav").symlink_to(victim)
    (folder / "link-in.wav").symlink_to(inside)
    rows = [
        Recording.create(path=str(victim), folder=str(folder), started_at=NOW - timedelta(days=99), size=1),
        Recording.create(path=str(folder / "../etc/victim.wav"), folder=str(folder), started_at=NOW, size=1),
        Recording.create(path=str(folder / "link-out.wav"), folder=str(folder), started_at=NOW, size=1),
        Recording.create(path=str(folder / "link-in.wav"), folder=str(folder), started_at=NOW, size=1),
    ]
    Recording.update(started_at=NOW - timedelta(days=99)).execute()
    result = run([policy("all", 1, enabled=True)], NOW, "schedule", folders=[folder])
    assert (result.deleted, result.refused) == (0, 4)
    assert victim.exists() and inside.exists()
    assert (folder / "link-out.wav").is_symlink() and (folder / "link-in.wav").is_symlink()
    assert {fresh(r).status for r in rows} == {"present"}


def test_a_vanished_file_is_marked_missing_not_an_error(folder: Path) -> None:
    rec = recording(folder, "gone.wav", 99)
    os.unlink(rec.path)
    result = run([policy("all", 1, enabled=True)], NOW, "schedule", folders=[folder])
    assert (result.deleted, result.missing, result.refused) == (0, 1, 0)
    assert fresh(rec).status == "missing"


# --- transcoding -------------------------------------------------------------------------------------


def fake_tool(bin_dir: Path, body: str) -> Transcoder:
    """An `ffmpeg` that runs `body` (Python, with `src`, `dst`) and records its arguments."""
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "ffmpeg"
    exe.write_text(
        f"#!{sys.executable}\nimport sys, shutil, wave\n"
        f"open({str(bin_dir / 'args')!r}, 'a').write(repr(sys.argv[1:]) + '\\n')\n"
        "src, dst = sys.argv[sys.argv.index('-i') + 1], sys.argv[-1]\n" + body
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    tool = Transcoder.find(str(bin_dir))
    assert tool is not None and tool.kind == "ffmpeg"
    return tool


MP3 = [policy("all", 365, enabled=True, transcode="mp3", transcode_after_days=7)]


def test_transcoding_replaces_the_wav_only_after_the_new_file_is_verified(
    folder: Path, tmp_path: Path
) -> None:
    tool = fake_tool(tmp_path / "bin", "shutil.copyfile(src, dst)\n")
    old = recording(folder, "old.wav", 10)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (folder / "old.transcoding.mp3").symlink_to(victim)  # a link planted where the tool writes
    young = recording(folder, "young.wav", 3)
    held = recording(folder, "held.wav", 10, legal_hold=True)
    result = run(MP3, NOW, "schedule", folders=[folder], transcoder=tool)
    assert result.transcoded == 1
    row = fresh(old)
    new = folder / "old.mp3"
    assert (row.path, row.format, row.size) == (str(new), "mp3", new.stat().st_size)
    assert row.sha256 == hashlib.sha256(new.read_bytes()).hexdigest() and row.duration == 2.0
    assert not Path(old.path).exists()
    assert Path(young.path).exists() and Path(held.path).exists()  # too young; on hold: left as they are
    assert sorted(p.name for p in folder.iterdir()) == ["held.wav", "old.mp3", "young.wav"]
    assert victim.read_text() == "keep"
    (args,) = (tmp_path / "bin" / "args").read_text().splitlines()
    assert "libmp3lame" in args and old.path in args


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("sys.stderr.write('Unknown encoder libmp3lame\\n'); sys.exit(1)\n", "Unknown encoder libmp3lame"),
        ("open(dst, 'wb').close()\n", "wrote an empty file"),
        (
            "w = wave.open(dst, 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)\n"
            "w.writeframes(bytes(8000 * 2)); w.close()\n",
            "wrote 1.0 s of audio from 5.0 s",
        ),
    ],
)
def test_a_failed_transcode_keeps_the_original_and_its_row(
    folder: Path, tmp_path: Path, body: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    tool = fake_tool(tmp_path / "bin", body)
    rec = recording(folder, "call.wav", 30, seconds=5)
    before = Path(rec.path).read_bytes()
    with caplog.at_level(logging.WARNING):
        result = run(MP3, NOW, "schedule", folders=[folder], transcoder=tool)
    assert result.transcoded == 0
    assert Path(rec.path).read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["call.wav"]  # no half-written file left behind
    row = fresh(rec)
    assert (row.path, row.format, row.size) == (rec.path, "wav", rec.size)
    assert f"recording #{rec.id} kept as WAV" in caplog.text and why in caplog.text


@pytest.mark.skipif(
    not (shutil.which("ffmpeg") or shutil.which("sox")), reason="neither ffmpeg nor sox is installed here"
)
def test_transcoding_with_the_real_tool(folder: Path) -> None:
    tool = Transcoder.find()
    assert tool is not None
    rec = recording(folder, "real.wav", 30, seconds=3)
    fmt = "ogg" if tool.kind == "sox" else "mp3"
    policies = [policy("all", 365, enabled=True, transcode=fmt)]
    assert run(policies, NOW, "schedule", folders=[folder], transcoder=tool).transcoded == 1
    row = fresh(rec)
    assert row.format == fmt and Path(row.path).stat().st_size > 0 and not Path(rec.path).exists()
    assert row.duration is None or abs(row.duration - 3) <= 1  # measured when ffprobe or soxi is there


def test_without_a_tool_transcoding_is_skipped_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "empty").mkdir()
    with caplog.at_level(logging.WARNING):
        assert Transcoder.find(str(tmp_path / "empty")) is None
    assert caplog.text.count("neither ffmpeg nor sox is installed") == 1


# --- the daily job -----------------------------------------------------------------------------------


def test_the_service_runs_daily_at_the_configured_time(folder: Path) -> None:
    cfg = Config(
        path=None,
        database=DatabaseConfig("sqlite://"),
        web=WebConfig(),
        pbx=(),
        data_dir=folder,
        recordings=RecordingsConfig(folders=(folder,), retention_time="04:45"),
        retention_policies=(policy("all", 1, enabled=True),),
    )
    service = RetentionService.from_config(cfg)
    assert service.transcoder is None  # no policy asks for it: no tool is looked for
    rec = recording(folder, "old.wav", 5)
    assert service.preview(NOW).policies[0].ids == (rec.id,)
    service.start()
    try:
        due = service.next_run()
        assert due is not None and (due.hour, due.minute) == (4, 45)
        assert timedelta(0) < due - datetime.now(due.tzinfo) <= timedelta(days=1)
    finally:
        service.stop()
    assert service.next_run() is None
    assert service.run("admin").deleted == 1 and fresh(rec).deleted_by == "retention:all"
