"""Recordings: indexing a folder of recording files, beside a bare `os.scandir` walk of the same folder.

    .venv/bin/python benchmarks/recordings.py [--part index|search|all] [--files N] [--rows N] [--no-write]

index: a temporary folder of `--files` WAV files with empty headers (44 bytes), 1,000 per
directory like a date-sorted archive, indexed by `pbxlink.services.recording_scan.scan` into a
fresh SQLite database (header, duration, SHA-256, one row each), then scanned again with
nothing changed (the periodic scan). In the same run, the same folder walked by a bare
iterative `os.scandir` that only counts files: the floor any indexer stands on. The page cache
is warm for both (the files were just written).

search: `--rows` recording rows bulk-loaded into a fresh SQLite database (the real migrations,
so the real indexes), then the panel's searches through the store's `search` (by number, by
agent and a week), beside the same number search as a full scan (`NOT INDEXED`) and a bare
`COUNT(*)` in the same run. Each part writes its own section of
docs/benchmarks.md between markers, leaving the rest of the file alone.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import wave
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from results import machine, run_parts

from pbxlink.domain.phone import numbers
from pbxlink.services.recording_scan import scan
from pbxlink.storage import recordings as store
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import Recording

PER_DIR = 1000


def make_folder(root: Path, files: int) -> None:
    """`files` WAV files with an empty header: Asterisk `<uniqueid>.wav` names, 1,000 per directory."""
    template = root / "template.wav"
    with wave.open(str(template), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
    header = template.read_bytes()
    template.unlink()
    for i in range(files):
        folder = root / f"{2026 + i // 365_000}" / f"{i // PER_DIR:05d}"
        if i % PER_DIR == 0:
            folder.mkdir(parents=True)
        (folder / f"{1767600000 + i}.{i % 97}.wav").write_bytes(header)


def scandir_walk(root: Path) -> int:
    """The bare walk: every regular file counted, nothing read, no database."""
    count, stack = 0, [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    count += 1
    return count


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    start = time.perf_counter()
    count = fn()
    return count, time.perf_counter() - start


def part_index(args: argparse.Namespace) -> tuple[str, str]:
    with tempfile.TemporaryDirectory(prefix="pbxlink-bench-rec-") as tmp:
        root = Path(tmp) / "recordings"
        root.mkdir()
        print(f"writing {args.files:,} files …", flush=True)
        make_folder(root, args.files)
        db = connect(f"sqlite:///{tmp}/pbxlink.db")
        migrate(db)
        walked, walk_s = timed(lambda: scandir_walk(root))
        print(f"os.scandir walk: {walked:,} files in {walk_s:.2f} s", flush=True)
        full = timed(lambda: scan([root], probe=False).indexed)
        print(f"full index: {full[0]:,} files in {full[1]:.1f} s", flush=True)
        again = timed(lambda: scan([root], probe=False).seen)
        print(f"scan again, nothing changed: {again[0]:,} files in {again[1]:.1f} s", flush=True)
        db.close()
    assert walked == full[0] == again[0] == args.files, (walked, full[0], again[0])
    rate = lambda n, s: f"{n / s:,.0f} files/s"  # noqa: E731
    section = "\n".join(
        [
            "## Recordings: indexing a folder",
            "",
            f"{args.files:,} WAV files with empty headers, {PER_DIR:,} per directory, in a temporary folder "
            "with a warm page cache; SQLite. Indexing reads each file's header and duration, hashes it "
            "(SHA-256) and writes its row; the second scan finds nothing changed (stat only).",
            "",
            "| what | time | rate |",
            "|---|---:|---:|",
            f"| bare `os.scandir` walk (count only) | {walk_s:.2f} s | {rate(walked, walk_s)} |",
            f"| pbxlink full index | {full[1]:.1f} s | {rate(*full)} |",
            f"| pbxlink scan again, nothing changed | {again[1]:.1f} s | {rate(*again)} |",
            "",
            f"Machine: {machine()}. Run: `python benchmarks/recordings.py --part index`.",
            "",
        ]
    )
    return "recordings_index", section


SEARCH_BATCH = 10_000
AGENTS = [str(200 + i) for i in range(200)]
QUEUES = ["support", "sales", "billing", "vip", "retention", "tech-1", "tech-2", "tech-3"]
QUEUES += ["orders", "returns", "partners", "after-hours"]
CUSTOMERS = 200_000
SEARCHES = 200  # timed searches of each kind
FULL_SCANS = 5  # the reference is slow: a few runs are enough
START = datetime(2025, 6, 1, tzinfo=UTC)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def customer(i: int) -> str:
    return f"+1202{5_000_000 + i:07d}"


def load_rows(rows: int, rng: random.Random) -> tuple[float, list[int]]:
    """Bulk-insert `rows` recordings in transactions: the seconds it took, and the customers used."""
    forms = [numbers().query(customer(i)) for i in range(CUSTOMERS)]
    used: list[int] = []
    started = Recording.started_at.db_value
    columns = "path, folder, pbx, call_id, started_at, direction, caller_e164, caller_tail, callee_e164, "
    columns += "callee_tail, agent, queue, disposition, talk_seconds, size, duration, format, sha256, mtime, "
    columns += "status, legal_hold, source, indexed_at"
    sql = f"INSERT INTO recording ({columns}) VALUES ({', '.join('?' * 23)})"
    indexed = started(datetime.now(UTC))
    db = Recording._meta.database
    t0 = time.perf_counter()
    for first in range(0, rows, SEARCH_BATCH):
        batch: list[tuple[Any, ...]] = []
        for i in range(first, min(rows, first + SEARCH_BATCH)):
            at = START + timedelta(seconds=i * 365 * 86400 / rows + rng.random() * 30)
            used.append(rng.randrange(CUSTOMERS))
            q = forms[used[-1]]
            assert q is not None
            inbound = rng.random() < 0.7
            cust = (q.e164, q.tail) if inbound else (None, None)
            ext = (None, None) if inbound else (q.e164, q.tail)
            answered = rng.random() < 0.85
            seconds = rng.uniform(5, 900) if answered else rng.uniform(1, 30)
            name = f"{1_748_736_000 + i}.{i % 97}"
            batch.append(
                (
                    f"/var/spool/asterisk/monitor/{at:%Y/%m/%d}/{name}.wav", "/var/spool/asterisk/monitor",
                    "main", name, started(at), "inbound" if inbound else "outbound", *cust, *ext,
                    rng.choice(AGENTS), rng.choice(QUEUES) if inbound else None,
                    "answered" if answered else "missed", seconds if answered else None,
                    int(seconds * 16000) + 44, seconds, "wav", None, at.timestamp(),
                    "present" if rng.random() < 0.97 else "deleted", False, "scan", indexed,
                )
            )  # fmt: skip
        with db.atomic():
            db.connection().executemany(sql, batch)
    return time.perf_counter() - t0, used


def samples(run: Callable[[], Any], times: int) -> tuple[list[float], Any]:
    """Milliseconds of each of `times` runs (after one warm-up), and the last result."""
    result = run()
    taken = []
    for _ in range(times):
        t0 = time.perf_counter()
        result = run()
        taken.append((time.perf_counter() - t0) * 1000)
    return taken, result


def part_search(args: argparse.Namespace) -> tuple[str, str]:
    """`--rows` rows loaded, then the panel's searches through the store, beside a scan and a COUNT(*)."""
    rng = random.Random(6)
    with tempfile.TemporaryDirectory(prefix="pbxlink-bench-rec-") as tmp:
        db = connect(f"sqlite:///{tmp}/pbxlink.db")
        migrate(db)
        print(f"loading {args.rows:,} recording rows …", flush=True)
        load_s, used = load_rows(args.rows, rng)
        db.execute_sql("ANALYZE")
        print(f"{args.rows:,} rows loaded in {load_s:.1f} s", flush=True)
        picks = [customer(rng.choice(used)) for _ in range(SEARCHES + 1)]
        typed = iter(f"({p[2:5]}) {p[5:8]}-{p[8:]}" for p in picks)  # as a person types it
        weeks = iter(START + timedelta(days=rng.randrange(350)) for _ in range(SEARCHES + 1))
        agents = iter(rng.choice(AGENTS) for _ in range(SEARCHES + 1))

        def by_number() -> tuple[list[Recording], int]:
            return store.search(store.RecordingFilter(number=next(typed)), 50)

        def by_agent_week() -> tuple[list[Recording], int]:
            since = next(weeks)
            week = store.RecordingFilter(agent=next(agents), since=since, until=since + timedelta(days=7))
            return store.search(week, 50)

        number_ms, (page, total) = samples(by_number, SEARCHES)
        agent_ms, (_, agent_total) = samples(by_agent_week, SEARCHES)
        one = numbers().query(picks[0])
        assert one is not None
        scan_sql = (
            "SELECT COUNT(*) FROM recording NOT INDEXED WHERE status = 'present' AND "
            "(caller_e164 = ? OR (caller_e164 IS NULL AND caller_tail = ?) OR "
            "callee_e164 = ? OR (callee_e164 IS NULL AND callee_tail = ?))"
        )
        params = (one.e164, one.tail, one.e164, one.tail)
        scan_ms, _ = samples(lambda: db.execute_sql(scan_sql, params).fetchone(), FULL_SCANS)
        count_ms, _ = samples(lambda: db.execute_sql("SELECT COUNT(*) FROM recording").fetchone(), FULL_SCANS)
        db.close()
    assert page and total, "the number search found nothing: the benchmark data is wrong"
    rows = [
        ("by number (a page of 50 + the total)", number_ms, f"{total} match the last number"),
        ("by agent and a 7-day range (a page of 50 + the total)", agent_ms, f"{agent_total} match the last"),
        ("reference: the number search as a full scan (`NOT INDEXED`)", scan_ms, f"{FULL_SCANS} runs"),
        ("reference: `SELECT COUNT(*)` of the table", count_ms, f"{FULL_SCANS} runs"),
    ]
    met = all(percentile(s, 95) <= 100 for s in (number_ms, agent_ms))
    section = "\n".join(
        [
            "## Recordings: searching the index",
            "",
            f"{args.rows:,} recording rows in SQLite (the real migrations, so the real indexes), bulk-loaded "
            f"in transactions of {SEARCH_BATCH:,} rows in {load_s:.0f} s: a year of calls over {len(AGENTS)} "
            f"agents, {len(QUEUES)} queues and {CUSTOMERS:,} customer numbers. Each search goes through the "
            "recording store's `search`, as the panel's page does: a page of 50, newest first, and the "
            f"total. {SEARCHES} searches of each kind, each with another number (typed as `(202) 555-0142`) "
            "or another agent and week. The references run in the same process on the same database.",
            "",
            "| search | p50 ms | p95 ms | |",
            "|---|---:|---:|---|",
            *(
                f"| {n} | {statistics.median(s):.1f} | {percentile(s, 95):.1f} | {note} |"
                for n, s, note in rows
            ),
            "",
            f"Target: p95 ≤ 100 ms for both searches: **{'met' if met else 'NOT met'}**.",
            "",
            f"Machine: {machine()}. Run: `python benchmarks/recordings.py --part search --rows {args.rows}`.",
            "",
        ]
    )
    return "recordings_search", section


PARTS: dict[str, Callable[[argparse.Namespace], tuple[str, str]]] = {
    "index": part_index,
    "search": part_search,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000, help="files in the folder to index")
    parser.add_argument("--rows", type=int, default=1_000_000, help="recording rows to search")
    run_parts(parser, PARTS)


if __name__ == "__main__":
    main()
