"""Loading a do-not-call list from a CSV file: streamed, in batches, every line accounted for.

The number column is found as the contacts import finds it (Phone, Number, Mobile …); a
column named Reason, Note or Comment gives each entry its reason. A file of bare numbers,
one a line with no header, is read too: its first line is then a number, not a name.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pbxlink.domain.phone import numbers
from pbxlink.services.contact_rows import suggest_mapping
from pbxlink.services.csv_lines import CsvFileError, CsvLines, Line
from pbxlink.storage import dnc

BATCH = 500
SHOWN_PROBLEMS = 10  # lines whose reason is kept for the summary
_REASON_NAMES = {"reason", "note", "notes", "comment"}


@dataclass
class DncImportStats:
    """rows = added + already + rejected; `problems` holds the first few refused lines and why."""

    rows: int = 0
    added: int = 0
    already: int = 0  # on the list before, or twice in the file
    rejected: int = 0
    read_bytes: int = 0
    total_bytes: int = 0
    problems: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def fraction(self) -> float:
        return min(self.read_bytes / self.total_bytes, 1.0) if self.total_bytes else 1.0


def import_dnc(
    path: Path,
    encoding: str = "utf-8",
    by: str | None = None,
    progress: Callable[[DncImportStats], None] | None = None,
) -> DncImportStats:
    """Add every number of the file to the do-not-call list (CsvFileError when the file cannot be read)."""
    phones = numbers()
    with CsvLines(path, encoding) as lines:
        stats = DncImportStats(total_bytes=lines.total_bytes)
        headers = lines.header
        mapping = suggest_mapping(headers)
        number = next((i for i, h in enumerate(headers) if mapping[h] == "number"), None)
        reason = next((i for i, h in enumerate(headers) if h.lower() in _REASON_NAMES), None)
        first: list[Line] = []
        if number is None and len(headers) == 1:
            number, first = 0, [Line(1, headers)]  # no header: the first line is already a number
        elif number is None:
            raise CsvFileError(
                f"no column holds the phone number (name it Phone or Number); columns: {', '.join(headers)}"
            )
        batch: list[tuple[str, str, str | None]] = []
        for line in itertools.chain(first, lines):
            stats.rows += 1
            try:
                if line.problem is not None:
                    raise ValueError(line.problem)
                key, stored = dnc.normalize(line.cells[number], phones)
            except ValueError as exc:
                stats.rejected += 1
                if len(stats.problems) < SHOWN_PROBLEMS:
                    stats.problems.append(f"line {line.number}: {exc}")
                continue
            batch.append((key, stored, None if reason is None else line.cells[reason].strip() or None))
            if len(batch) >= BATCH:
                _flush(stats, batch, by, lines.read_bytes, progress)
        _flush(stats, batch, by, lines.total_bytes, progress)
    return stats


def _flush(
    stats: DncImportStats,
    batch: list[tuple[str, str, str | None]],
    by: str | None,
    read_bytes: int,
    progress: Callable[[DncImportStats], None] | None,
) -> None:
    added = dnc.add_many(batch, by)
    stats.added += added
    stats.already += len(batch) - added
    stats.read_bytes = read_bytes
    batch.clear()
    if progress is not None:
        progress(stats)
