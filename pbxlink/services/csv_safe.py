"""CSV cells that a spreadsheet shows as text, never runs as a formula.

A cell beginning with `=`, `+`, `-` or `@` (or a TAB or CR, which some spreadsheets skip
before looking) is a formula to Excel and LibreOffice: `=cmd|' /C calc'!A0` in a contact's
name, exported and opened by a manager, runs a program. OWASP's advice is to put a `'` before
such a cell, which the spreadsheet then shows as text. A plain number (`+12125550100`,
`-3.5`) cannot carry a formula and is left as it is, so exported phone numbers and amounts
stay usable. `restore` undoes it, for a file of ours that comes back.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r" *[+-]?[0-9]+(?:\.[0-9]+)?")


def safe_cell(value: object) -> str:
    """`value` as CSV cell text, with a `'` first when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    text = str(value)
    if text.lstrip(" ").startswith(_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def restore(cell: str) -> str:
    """The text `safe_cell` was given: a file we wrote (the rejects of an import) can be imported again."""
    if cell.startswith("'") and cell[1:].lstrip(" ").startswith(_TRIGGERS):
        return cell[1:]
    return cell


class SafeWriter:
    """A `csv.writer` whose every cell goes through `safe_cell`."""

    def __init__(self, stream: SupportsWrite[str], **fmtparams: Any) -> None:
        self._writer = csv.writer(stream, **fmtparams)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(stream: SupportsWrite[str], **fmtparams: Any) -> SafeWriter:
    """A CSV writer over `stream` (opened with newline="") that neutralises every cell it writes."""
    return SafeWriter(stream, **fmtparams)
