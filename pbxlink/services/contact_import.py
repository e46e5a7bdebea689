"""Importing a CSV list of contacts into a campaign: what the panel and the CLI call.

The file is read line by line (pbxlink.services.csv_lines), each line checked
(contact_rows) and settled with the database batch by batch (contact_batches), so a 1 GB
list imports in the memory of one batch. The import's row (CampaignImport) is created
first and carries the progress, which the panel polls; it ends `done`, or `failed` with the
reason in words when the file cannot be imported at all. Nothing is silently lost: every
line not imported is in the rejects file with its line number and why.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path

import peewee as pw

from pbxlink.services.contact_batches import Batches, ImportStats, Progress
from pbxlink.services.contact_rows import FIELDS, columns, read_header, suggest_mapping
from pbxlink.services.csv_lines import CsvFileError, CsvLines
from pbxlink.storage.database import connection
from pbxlink.storage.models import Campaign, CampaignImport, utcnow
from pbxlink.storage.outbox import one_line

__all__ = [
    "FIELDS",
    "ImportStats",
    "read_header",
    "rejects_folder",
    "run_import",
    "start_import",
    "suggest_mapping",
]

log = logging.getLogger(__name__)

MAX_ERROR = 500


def rejects_folder(data_dir: Path) -> Path:
    """Where the CLI and the panel keep the rejects files, under the config's data_dir."""
    return data_dir / "campaign-imports"


def start_import(
    campaign_id: int,
    path: Path,
    mapping: Mapping[str, str] | None,
    *,
    filename: str,
    encoding: str = "utf-8",
    by: str | None = None,
    rejects_dir: Path,
    progress: Progress | None = None,
) -> int:
    """Create the import's row at once, run the import in a background thread; the row's id, to poll."""
    row = _new_row(campaign_id, filename, by)

    def work() -> None:
        with connection():
            try:
                run_import(
                    campaign_id, path, mapping, filename=filename, encoding=encoding, by=by,
                    rejects_dir=rejects_dir, progress=progress, import_id=row.id,
                )  # fmt: skip
            except Exception:
                log.exception("import %d into campaign %d stopped; its row says failed", row.id, campaign_id)

    threading.Thread(target=work, name=f"contact-import-{row.id}", daemon=True).start()
    return int(row.id)


def run_import(
    campaign_id: int,
    path: Path,
    mapping: Mapping[str, str] | None,
    *,
    filename: str,
    encoding: str = "utf-8",
    by: str | None = None,
    rejects_dir: Path,
    progress: Progress | None = None,
    import_id: int | None = None,
) -> CampaignImport:
    """Import `path` into the campaign; the finished row: `done`, or `failed` with `error` in words.

    A file that cannot be imported at all (unknown encoding, not a CSV, no number column …)
    fails the row and returns it; a database failure fails it too, and is raised.
    """
    campaign = _campaign(campaign_id)
    row = _new_row(campaign_id, filename, by) if import_id is None else CampaignImport.get_by_id(import_id)
    try:
        with CsvLines(path, encoding) as lines:
            cols = columns(lines.header, mapping)
            row.mapping = json.dumps(cols.mapping, ensure_ascii=False)
            row.total_bytes = lines.total_bytes
            row.save(only=[CampaignImport.mapping, CampaignImport.total_bytes])
            rejects = rejects_dir / f"campaign-{campaign_id}-import-{row.id}-rejected.csv"
            with Batches(campaign, row, lines, cols, rejects, progress) as batches:
                stats = batches.run()
        _finish(row, "done")
        _log_done(campaign, row, stats)
    except CsvFileError as exc:
        _finish(row, "failed", str(exc))
        log.warning("import of %s into campaign %s failed: %s", filename, campaign.name, exc)
    except BaseException as exc:
        _finish(row, "failed", f"stopped: {exc or type(exc).__name__}")
        raise
    return row


def _log_done(campaign: Campaign, row: CampaignImport, s: ImportStats) -> None:
    where = f"; the rows not imported, and why, are in {row.rejects_path}" if row.rejects_path else ""
    log.info(
        "campaign %s: %s imported, %d rows: %d accepted, %d rejected, %d duplicates, %d do-not-call%s",
        campaign.name, row.filename, s.rows, s.accepted, s.rejected, s.duplicates, s.dnc, where,
    )  # fmt: skip


def _campaign(campaign_id: int) -> Campaign:
    campaign = Campaign.get_or_none(Campaign.id == campaign_id)
    if campaign is None:
        raise ValueError(f"no campaign {campaign_id}")
    return campaign


def _new_row(campaign_id: int, filename: str, by: str | None) -> CampaignImport:
    _campaign(campaign_id)
    return CampaignImport.create(
        campaign=campaign_id, filename=filename[:255], started_by=None if by is None else by[:64]
    )


def _finish(row: CampaignImport, status: str, error: str | None = None) -> None:
    row.status = status
    row.error = None if error is None else one_line(error, MAX_ERROR)
    row.finished_at = utcnow()
    try:
        row.save()
    except pw.PeeweeException:  # the database itself is what failed: the caller raises that
        log.exception("import %d: cannot record that it %s", row.id, status)
