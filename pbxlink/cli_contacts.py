"""`pbxlink campaign import` and `pbxlink dnc …`: campaign contacts and the do-not-call list from the shell.

Registered by `pbxlink.cli.build_parser` through `add_commands`. A list that cannot be
imported at all (no number column, unknown encoding, not a CSV) ends with exit status 2,
like the other commands' admin mistakes; an import that refused some rows ends with 1, so
a cron job notices.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pbxlink.cli import CommandError, fail, local_time, positive, print_table
from pbxlink.config import Config
from pbxlink.services.contact_import import ImportStats, rejects_folder, run_import
from pbxlink.services.contact_rows import CHOICES, FIELDS, columns, read_header, suggest_mapping
from pbxlink.services.csv_lines import CsvFileError
from pbxlink.services.dnc_import import DncImportStats, import_dnc
from pbxlink.storage import dnc
from pbxlink.storage.database import open_database
from pbxlink.storage.models import Campaign

BY = "cli"  # who the rows say added them
DEFAULT_LIST_LIMIT = 50
S = TypeVar("S", ImportStats, DncImportStats)
_ENCODING = "the file's character encoding: utf-8 (default), windows-1252 (Excel on Windows), utf-16 …"


def add_commands(commands: Any, command: Any, group: Any, campaign_group: Any) -> None:
    """Add `campaign import` to `campaign_group` and the `dnc` group, with build_parser's helpers."""
    imp = command(
        campaign_group,
        "import",
        "import contacts from a CSV file into a campaign; exit 1 if some rows were rejected, "
        "2 if the file cannot be imported",
        _campaign_import,
    )
    imp.add_argument("name", help="the campaign's name")
    imp.add_argument("file", type=Path, help="the CSV file; its first line names the columns")
    imp.add_argument(
        "--map",
        action="append",
        type=_mapping_item,
        default=[],
        metavar="HEADER=FIELD",
        help=f"what a column holds: one of {', '.join(CHOICES)} (repeat for several columns); "
        "the columns not given are guessed from their names (Phone, Name, Timezone …) or become custom",
    )
    imp.add_argument("--encoding", metavar="ENC", default="utf-8", help=_ENCODING)

    lists = group("dnc", "the do-not-call list: numbers no campaign ever dials")
    add = command(lists, "add", "put a number on the do-not-call list", _dnc_add)
    add.add_argument("number", help="the phone number, in any usual form")
    add.add_argument("--reason", metavar="TEXT", help="why, e.g. 'asked on the phone, 2026-03-02'")
    remove = command(lists, "remove", "take a number off the do-not-call list; exit 1 if absent", _dnc_remove)
    remove.add_argument("number", help="the phone number, in any usual form")
    load = command(
        lists,
        "import",
        "add every number of a CSV file (a Phone or Number column, optionally Reason) to the list; "
        "exit 1 if some lines were rejected",
        _dnc_import,
    )
    load.add_argument("file", type=Path, help="the CSV file, or a file of bare numbers, one a line")
    load.add_argument("--encoding", metavar="ENC", default="utf-8", help=_ENCODING)
    show = command(lists, "list", "show the do-not-call list, newest first", _dnc_list)
    show.add_argument(
        "--search", metavar="TEXT", help="entries whose number has these digits or reason this text"
    )
    show.add_argument(
        "--limit", type=positive, metavar="N", default=DEFAULT_LIST_LIMIT, help="at most N entries"
    )


def _mapping_item(text: str) -> tuple[str, str]:
    header, sep, field = text.rpartition("=")
    if not sep or field not in CHOICES:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected HEADER=FIELD, FIELD one of {', '.join(CHOICES)}"
        )
    return header.strip(), field


def _campaign_import(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    campaign = Campaign.get_or_none(Campaign.name == args.name)
    if campaign is None:
        raise CommandError(f"no campaign named {args.name!r}")
    try:
        headers = read_header(args.file, args.encoding)
        mapping = _mapping(headers, dict(args.map))
        plan = columns(headers, mapping)
    except CsvFileError as exc:
        return fail(f"{args.file}: {exc}", 2)
    keys = {header: key for _, header, key in plan.custom}
    width = max(len(h) for h in headers)
    print(f"columns of {args.file.name}:")
    for header, field in plan.mapping.items():
        shown = f"custom, as PBXLINK_COL_{keys[header]}" if header in keys else field
        print(f"  {header or '(no name)':<{width}}  -> {shown}")
    bar = _bar(lambda s: (s.fraction, f"{s.rows:,} rows, {s.rate:,.0f} rows/s"))  # type: ignore[attr-defined]
    row = run_import(
        campaign.id, args.file, mapping, filename=args.file.name, encoding=args.encoding, by=BY,
        rejects_dir=rejects_folder(cfg.data_dir), progress=bar,
    )  # fmt: skip
    _clear_bar()
    if row.status != "done":
        return fail(f"{args.file}: {row.error}", 2)
    where = f"; rejected rows in {row.rejects_path}" if row.rejects_path else ""
    print(
        f"{row.rows:,} rows: {row.accepted:,} imported, {row.rejected:,} rejected, "
        f"{row.duplicates:,} duplicates, {row.dnc:,} on the do-not-call list{where}"
    )
    return 1 if row.rejected else 0


def _mapping(headers: list[str], given: dict[str, str]) -> dict[str, str]:
    """The guessed mapping overridden by `given`; a field given to a column is guessed for no other."""
    guessed = suggest_mapping(headers)
    for header, field in guessed.items():
        if field in FIELDS and field in given.values() and header not in given:
            guessed[header] = "custom"
    return {**guessed, **given}


def _dnc_add(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    try:
        entry, added = dnc.add(args.number, args.reason, BY)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if added:
        print(f"added {entry.number} to the do-not-call list")
    else:
        why = f" ({entry.reason})" if entry.reason else ""
        print(f"{entry.number} is already on the do-not-call list since {local_time(entry.added_at)}{why}")
    return 0


def _dnc_remove(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    try:
        removed = dnc.remove(args.number)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not removed:
        raise CommandError(f"{args.number} is not on the do-not-call list")
    print(f"removed {args.number} from the do-not-call list")
    return 0


def _dnc_import(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    bar = _bar(lambda s: (s.fraction, f"{s.rows:,} lines"))
    try:
        stats: DncImportStats = import_dnc(args.file, args.encoding, BY, bar)
    except CsvFileError as exc:
        _clear_bar()
        return fail(f"{args.file}: {exc}", 2)
    _clear_bar()
    for problem in stats.problems:
        print(problem, file=sys.stderr)
    if stats.rejected > len(stats.problems):
        print(f"… and {stats.rejected - len(stats.problems):,} more", file=sys.stderr)
    print(
        f"{stats.rows:,} lines: {stats.added:,} added, {stats.already:,} already on the list, "
        f"{stats.rejected:,} rejected; {dnc.count():,} numbers on the do-not-call list"
    )
    return 1 if stats.rejected else 0


def _dnc_list(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    entries, total = dnc.page(args.search, args.limit)
    if entries:
        print_table(
            ["NUMBER", "REASON", "ADDED BY", "ADDED"],
            [[e.number, e.reason or "-", e.added_by or "-", local_time(e.added_at)] for e in entries],
        )
    more = " (use --limit N for more)" if total > len(entries) else ""
    print(f"{len(entries)} of {total} entries{more}")
    return 0


def _bar(describe: Callable[[S], tuple[float, str]]) -> Callable[[S], None] | None:
    """A progress callback drawing one line on stderr when it is a terminal (else None: no bar)."""
    if not sys.stderr.isatty():
        return None
    shown = [0.0]

    def draw(stats: S) -> None:
        now = time.monotonic()
        if now - shown[0] >= 0.2:
            shown[0] = now
            fraction, text = describe(stats)
            done = int(fraction * 30)
            line = f"[{'#' * done}{'.' * (30 - done)}] {fraction:4.0%}  {text}"
            print(f"\r\x1b[K{line}", end="", file=sys.stderr, flush=True)

    return draw


def _clear_bar() -> None:
    if sys.stderr.isatty():
        print("\r\x1b[K", end="", file=sys.stderr, flush=True)
