"""Settling an import's lines with the database, batch by batch, and keeping its progress.

Every BATCH lines: in-file duplicates are found in the batch, then two queries — which
numbers the campaign already has, which are on the do-not-call list — and one insert, in
one transaction; no query per line. Each line not imported (refused, a duplicate, on the
do-not-call list) is written to the rejects file with its line number and the reason, its
cells neutralised for spreadsheets. The counters reach the import's row and the progress
callback at most every REPORT_EVERY seconds, and at the end.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import peewee as pw

from pbxlink.domain.phone import numbers
from pbxlink.services import csv_safe
from pbxlink.services.contact_rows import REJECTS_TAIL, Columns, Contact, contact
from pbxlink.services.csv_lines import CsvLines
from pbxlink.storage import dnc
from pbxlink.storage.models import Campaign, CampaignContact, CampaignImport, db_proxy, utcnow

BATCH = 500  # lines settled per transaction
REPORT_EVERY = 0.5  # seconds between two updates of the import's row and two progress calls
DNC_REASON = "on the do-not-call list"
IN_CAMPAIGN = "already in the campaign"


@dataclass
class ImportStats:
    """How far an import is; rows = accepted + rejected + duplicates + dnc."""

    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    dnc: int = 0
    read_bytes: int = 0
    total_bytes: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Rows per second."""
        return self.rows / max(time.monotonic() - self.started, 1e-6)

    @property
    def fraction(self) -> float:
        return min(self.read_bytes / self.total_bytes, 1.0) if self.total_bytes else 1.0


Progress = Callable[[ImportStats], None]


_INSERTED = (
    "campaign", "number", "number_key", "name", "timezones", "fields", "row", "status", "attempts",
    "updated_at",
)  # fmt: skip


@functools.cache
def _insert_sql(rows: int, param: str) -> str:
    """INSERT of `rows` contacts; one already in the campaign (another import's, since our look) is kept."""
    fields = CampaignContact._meta.fields
    names = ", ".join(f'"{fields[name].column_name}"' for name in _INSERTED)
    one = "(" + ", ".join([param] * len(_INSERTED)) + ")"
    values = ", ".join([one] * rows)
    table = CampaignContact._meta.table_name
    return f'INSERT INTO "{table}" ({names}) VALUES {values} ON CONFLICT DO NOTHING'


class Batches:
    """The import's loop: lines checked one by one, settled with the database batch by batch."""

    def __init__(
        self,
        campaign: Campaign,
        row: CampaignImport,
        lines: CsvLines,
        cols: Columns,
        rejects: Path,
        progress: Progress | None,
    ) -> None:
        self.campaign, self.row, self.lines, self.cols = campaign, row, lines, cols
        self.rejects_path, self.progress = rejects, progress
        self.stats = ImportStats(total_bytes=lines.total_bytes)
        self.phones = numbers()
        # Contacts above this id that the campaign has were added by this import: an in-file duplicate.
        self.first_new = CampaignContact.select(pw.fn.MAX(CampaignContact.id)).scalar() or 0
        self._writer: csv_safe.SafeWriter | None = None
        self._file: IO[str] | None = None
        self._reported = time.monotonic()

    def run(self) -> ImportStats:
        """Read every line and settle it; the final counts (the row holds them too)."""
        contacts: list[tuple[Contact, list[str]]] = []
        refused: list[tuple[int, list[str], str]] = []
        zone, cols, phones = self.campaign.timezone, self.cols, self.phones
        for line in self.lines:
            if line.problem is not None:
                refused.append((line.number, line.cells, line.problem))
            else:
                try:
                    contacts.append((contact(line.cells, cols, line.number, zone, phones), line.cells))
                except ValueError as exc:
                    refused.append((line.number, line.cells, str(exc)))
            if len(contacts) + len(refused) >= BATCH:
                self._settle(contacts, refused)
                contacts, refused = [], []
        self._settle(contacts, refused)
        self.stats.read_bytes = self.stats.total_bytes
        self._report()
        return self.stats

    def _settle(
        self, contacts: list[tuple[Contact, list[str]]], refused: list[tuple[int, list[str], str]]
    ) -> None:
        s = self.stats
        s.rows += len(contacts) + len(refused)
        s.rejected += len(refused)
        first: dict[str, Contact] = {}
        unique: list[tuple[Contact, list[str]]] = []
        for c, cells in contacts:
            earlier = first.setdefault(c.key, c)
            if earlier is c:
                unique.append((c, cells))
            else:
                refused.append((c.line, cells, f"duplicate of line {earlier.line}"))
                s.duplicates += 1
        keys = [c.key for c, _ in unique]
        known = self._known(keys)
        blocked = dnc.blocked_keys(k for k in keys if k not in known)
        fresh: list[Contact] = []
        for c, cells in unique:
            if c.key in known:
                contact_id, line = known[c.key]
                why = f"duplicate of line {line}" if contact_id > self.first_new else IN_CAMPAIGN
                refused.append((c.line, cells, why))
                s.duplicates += 1
            elif c.key in blocked:
                refused.append((c.line, cells, DNC_REASON))
                s.dnc += 1
            else:
                fresh.append(c)
        if fresh:
            s.accepted += len(fresh)
            # A contact another import added since our look is kept once; this one counts as a duplicate.
            lost = len(fresh) - self._insert(fresh)
            s.accepted -= lost
            s.duplicates += lost
        self._write_rejects(sorted(refused, key=lambda r: r[0]))
        s.read_bytes = self.lines.read_bytes
        if time.monotonic() - self._reported >= REPORT_EVERY:
            self._report()

    def _known(self, keys: list[str]) -> dict[str, tuple[int, int | None]]:
        """Those of `keys` the campaign has: their contact's id and CSV line."""
        if not keys:
            return {}
        query = CampaignContact.select(
            CampaignContact.number_key, CampaignContact.id, CampaignContact.row
        ).where((CampaignContact.campaign == self.campaign.id) & CampaignContact.number_key.in_(keys))
        rows = cast(Iterable[tuple[str, int, int | None]], query.tuples())
        return {key: (contact_id, line) for key, contact_id, line in rows}

    def _insert(self, fresh: list[Contact]) -> int:
        """Insert in one statement, written out: peewee's builder took longer than the checks of a line."""
        now = CampaignContact.updated_at.db_value(utcnow())
        campaign = self.campaign.id
        params: list[object] = []
        for c in fresh:
            params += (campaign, c.number, c.key, c.name, c.timezones, c.fields, c.line, "pending", 0, now)
        with db_proxy.atomic():
            cursor = db_proxy.execute_sql(_insert_sql(len(fresh), db_proxy.param), params)
            return int(cursor.rowcount)

    def _write_rejects(self, refused: list[tuple[int, list[str], str]]) -> None:
        if not refused:
            return
        if self._writer is None:
            self.rejects_path.parent.mkdir(parents=True, exist_ok=True)
            # utf-8-sig: Excel opens it with its accents intact.
            self._file = self.rejects_path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv_safe.writer(self._file)
            self._writer.writerow([*self.lines.header, *REJECTS_TAIL])
            self.row.rejects_path = str(self.rejects_path)
            self.row.save(only=[CampaignImport.rejects_path])
        width = len(self.lines.header)
        for number, cells, reason in refused:
            if len(cells) > width:  # the surplus joined into the last column, so `line` stays in its own
                cells = [*cells[: width - 1], self.lines.delimiter.join(cells[width - 1 :])]
            self._writer.writerow([*cells, *[""] * (width - len(cells)), number, reason])

    def _report(self) -> None:
        s = self.stats
        self._reported = time.monotonic()
        CampaignImport.update(
            read_bytes=s.read_bytes, rows=s.rows, accepted=s.accepted, rejected=s.rejected,
            duplicates=s.duplicates, dnc=s.dnc,
        ).where(CampaignImport.id == self.row.id).execute()  # fmt: skip
        for name in ("read_bytes", "rows", "accepted", "rejected", "duplicates", "dnc"):
            setattr(self.row, name, getattr(s, name))
        if self.progress is not None:
            self.progress(s)

    def __enter__(self) -> Batches:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._file is not None:
            self._file.close()
