"""The scan of the recording folders: files no event announced, and the archive from before pbxlink.

Folders are walked iteratively (os.scandir, no recursion limit) in a fixed order, sorted by
name, each directory's files indexed in one transaction that also saves "last directory done"
in the `setting` table: a scan killed midway (Ctrl-C, a restart) continues after that
directory. Links are never followed, so nothing outside a folder is indexed. Later scans flag
rows whose file changed (size or mtime differ, then the hash) or went missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbxlink.domain.calls import CallRecord
from pbxlink.services.recording_index import NameInfo, call_fields, calls_by_uid, parse_name, row_values
from pbxlink.services.recording_meta import read_meta
from pbxlink.storage import recordings
from pbxlink.storage.database import connection
from pbxlink.storage.models import Recording, Setting, db_proxy, utcnow

log = logging.getLogger(__name__)


@dataclass
class ScanStats:
    """What a scan did so far; `total` is the file count of the last complete scan (for an ETA)."""

    seen: int = 0
    indexed: int = 0  # new files, and changed ones read again
    linked: int = 0  # of those, linked to a logged call
    changed: int = 0
    missing: int = 0
    errors: int = 0
    total: int | None = None
    resumed: bool = False
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Files seen per second."""
        return self.seen / max(time.monotonic() - self.started, 1e-6)

    @property
    def eta(self) -> float | None:
        """Seconds left, when the folder's size is known from the last complete scan."""
        if self.total is None or self.seen == 0 or self.seen >= self.total:
            return None
        return (self.total - self.seen) / self.rate


Progress = Callable[[ScanStats], None]


def scan(
    folders: Sequence[Path],
    pbx_names: Sequence[str] = (),
    progress: Progress | None = None,
    resume: bool = True,
    probe: bool = True,
) -> ScanStats:
    """Index every file of `folders`; `resume`: continue a scan that was killed (else start over).

    `progress` is called after each file; whatever it raises stops the scan (resumable).
    """
    stats = ScanStats()
    for folder in folders:
        _Walk(str(folder.resolve()), pbx_names, stats, progress, probe).run(resume)
    return stats


class _Walk:
    def __init__(
        self, root: str, pbx_names: Sequence[str], stats: ScanStats, progress: Progress | None, probe: bool
    ) -> None:
        self.root, self.pbx_names, self.stats, self.progress, self.probe = (
            root,
            pbx_names,
            stats,
            progress,
            probe,
        )
        digest = hashlib.sha1(root.encode()).hexdigest()
        self.checkpoint_key, self.total_key = f"recscan:{digest}", f"recscan-total:{digest}"

    def run(self, resume: bool) -> None:
        done = self._setting(self.checkpoint_key) if resume else None
        checkpoint = tuple(done) if isinstance(done, list) else None
        if checkpoint is not None:
            self.stats.resumed = True
            log.info("recording scan of %s: resuming after %s", self.root, "/".join(checkpoint) or ".")
        total = self._setting(self.total_key)
        self.stats.total = (self.stats.total or 0) + total if isinstance(total, int) else None
        seen: set[str] = set()
        stack: list[tuple[str, ...]] = [()]
        while stack:
            rel = stack.pop()
            if checkpoint is not None and rel < checkpoint and checkpoint[: len(rel)] != rel:
                continue  # this whole subtree was done before the scan was stopped
            path = os.path.join(self.root, *rel)
            try:
                with os.scandir(path) as it:
                    entries = list(it)
            except OSError as exc:
                self.stats.errors += 1
                log.warning("recording scan: cannot list %s: %s (check its permissions)", path, exc.strerror)
                continue
            dirs = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
            stack.extend((*rel, name) for name in reversed(dirs))
            if checkpoint is not None and rel <= checkpoint:
                continue  # its files were indexed before
            files = sorted((e for e in entries if e.is_file(follow_symlinks=False)), key=lambda e: e.name)
            with db_proxy.atomic():
                self._files(files, seen)
                self._save(self.checkpoint_key, list(rel))
        self._flag_missing(seen)
        on_disk = Recording.select().where(
            Recording.folder == self.root, Recording.status.in_(recordings.ON_DISK)
        )
        self._save(self.total_key, on_disk.count())  # the next scan's ETA
        Setting.delete().where(Setting.key == self.checkpoint_key).execute()

    def _files(self, entries: list[os.DirEntry[str]], seen: set[str]) -> None:
        paths = [e.path for e in entries]
        known = recordings.by_paths(paths)
        names = {e.path: parse_name(e.name) for e in entries}
        wanted = [n.uid for p, n in names.items() if n and (p not in known or known[p].call_id is None)]
        calls = calls_by_uid(wanted, self.pbx_names) if wanted else {}
        new: list[dict[str, Any]] = []
        for entry in entries:
            self.stats.seen += 1
            seen.add(entry.path)
            try:
                self._file(entry, known.get(entry.path), names[entry.path], calls, new)
            except OSError as exc:
                self.stats.errors += 1
                log.warning("recording scan: cannot read %s: %s", entry.path, exc.strerror or exc)
            if self.progress is not None:
                self.progress(self.stats)
        recordings.upsert_many(new)

    def _file(
        self,
        entry: os.DirEntry[str],
        row: Recording | None,
        name: NameInfo | None,
        calls: dict[str, CallRecord],
        new: list[dict[str, Any]],
    ) -> None:
        """Compare one file with its row: a new file's values go to `new`, to be written in a batch."""
        call = calls.get(name.uid) if name else None
        link = call_fields(call) if call else {}
        if row is None or row.status == "deleted":  # a new file (or one put back after retention)
            fields = {**(name.fields if name else {}), **link, "path": entry.path, "folder": self.root}
            new.append(row_values(fields, read_meta(entry.path, self.probe), "scan"))
            self.stats.indexed += 1
            self.stats.linked += bool(link)
            return
        st = entry.stat(follow_symlinks=False)
        if row.size == st.st_size and row.mtime == st.st_mtime:
            if link or row.status == "missing":
                recordings.mark(row.id, row.status if row.status != "missing" else "present", **link)
                self.stats.linked += bool(link)
            return
        meta = read_meta(entry.path, self.probe)
        values = dict(size=meta.size, mtime=meta.mtime, duration=meta.duration, format=meta.format, **link)
        if meta.sha256 == row.sha256:  # touched, not changed
            recordings.mark(row.id, "present" if row.status == "missing" else row.status, **values)
            return
        recordings.mark(row.id, "changed", sha256=meta.sha256, checked_at=utcnow(), **values)
        recordings.audit(
            "system", "changed", f"recording:{row.id}", {"before": row.sha256, "after": meta.sha256}
        )
        log.warning("recording %s (id %d) changed after it was indexed: flagged `changed`", row.path, row.id)
        self.stats.changed += 1
        self.stats.indexed += 1

    def _flag_missing(self, seen: set[str]) -> None:
        gone = [
            r for r in recordings.iter_on_disk(self.root) if r.path not in seen and not os.path.isfile(r.path)
        ]
        for row in gone:
            recordings.mark(row.id, "missing", checked_at=utcnow())
            log.warning("recording %s (id %d) is gone from its folder: flagged `missing`", row.path, row.id)
        self.stats.missing += len(gone)

    def _setting(self, key: str) -> Any:
        row = Setting.get_or_none(Setting.key == key)
        return None if row is None else json.loads(row.value)

    def _save(self, key: str, value: Any) -> None:
        Setting.insert(key=key, value=json.dumps(value)).on_conflict(
            conflict_target=[Setting.key], update={Setting.value: json.dumps(value)}
        ).execute()


#: How often `pbxlink run` walks the recording folders for files the events did not announce.
SCAN_INTERVAL = 3600.0


class PeriodicScan:
    """`scan` in a background thread, at start (resuming a scan a restart cut short) and then every
    `interval` seconds; a failed scan is logged and tried again at the next turn."""

    def __init__(
        self, folders: Sequence[Path], pbx_names: Sequence[str], interval: float = SCAN_INTERVAL
    ) -> None:
        self.folders, self.pbx_names, self.interval = tuple(folders), tuple(pbx_names), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recording-scan", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connection():
                    stats = scan(self.folders, self.pbx_names, progress=self._check_stop)
                log.info(
                    "recordings: scanned %d files: %d indexed (%d linked to calls), %d changed, "
                    "%d missing, %d errors",
                    stats.seen,
                    stats.indexed,
                    stats.linked,
                    stats.changed,
                    stats.missing,
                    stats.errors,
                )
            except _Stopped:
                return
            except Exception:
                log.exception(
                    "recordings: the folder scan failed; it is tried again in %.0f s", self.interval
                )
            self._stop.wait(self.interval)

    def _check_stop(self, stats: ScanStats) -> None:
        if self._stop.is_set():
            raise _Stopped  # the scan resumes from its checkpoint next time


class _Stopped(Exception):
    pass
