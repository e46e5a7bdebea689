"""A CSV file read one line at a time, in bounded memory, each bad line reported instead of fatal.

Lists come from Excel, CRMs and scripts: in windows-1252 as often as UTF-8, with `;` where
Europe's Excel writes them, sometimes with a stray quote or a megabyte pasted into one cell.
Python's csv reader stops at the first undecodable byte and lets an unclosed quote swallow
the rest of the file. Here each physical line is one record: a line with bytes the encoding
cannot decode, an unclosed quote, the wrong number of cells or more than MAX_LINE bytes is
given back with the reason (the long one is skipped in pieces, never held whole), and the
reading goes on with the next line. A cell therefore never spans lines, which no field of a
contact may do anyway.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

MAX_LINE = 65_536  # bytes
_SNIFF = 8192
_MARK = "pbxlink-mark-undecodable"
_MARKED = re.compile("[\udc00-\udcff]")
_ENDS = ("\n", "\r")
_BINARY = "this is not a CSV file: it holds binary data (or it is UTF-16: choose that encoding)"


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Each bad byte becomes a lone surrogate U+DC00+byte (which no valid text holds), to be found later."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "".join(chr(0xDC00 + b) for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error(_MARK, _mark_undecodable)


class CsvFileError(ValueError):
    """The file as a whole cannot be imported; the message says why, for the person who chose it."""


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # the line's number in the file, the header being line 1
    cells: list[str]  # as read; for a line that could not be split, its text as one cell (or none)
    problem: str | None = None  # why the line cannot be used


def check_encoding(encoding: str) -> str:
    """The codec's canonical name; CsvFileError for a name Python does not know, or no text codec."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise CsvFileError(
            f"unknown encoding {encoding!r}: use a name such as utf-8, windows-1252, iso-8859-1 or utf-16"
        )
    return info.name


class CsvLines:
    """The lines of a CSV file after its header; `read_bytes` / `total_bytes` say how far the reading is."""

    def __init__(self, path: Path, encoding: str = "utf-8") -> None:
        codec = check_encoding(encoding)
        self.encoding = codec
        self._label = codec.upper() if codec.startswith("utf") else codec
        try:
            self._binary = io.BufferedReader(io.FileIO(path, "rb"))
        except OSError as exc:
            raise CsvFileError(f"cannot read {path.name}: {exc.strerror}") from None
        try:
            self.total_bytes = path.stat().st_size
            self._check_kind(self._binary.peek(_SNIFF)[:_SNIFF], codec)
            self._text = io.TextIOWrapper(
                self._binary, encoding="utf-8-sig" if codec == "utf-8" else codec, errors=_MARK, newline=""
            )
            self.header, self.delimiter = self._read_header()
        except BaseException:
            self._binary.close()
            raise
        self._number = 1

    def _check_kind(self, head: bytes, codec: str) -> None:
        if not head:
            raise CsvFileError("the file is empty")
        if head.startswith(b"PK\x03\x04"):
            raise CsvFileError("this is a spreadsheet workbook (.xlsx), not a CSV file: save it as CSV first")
        if head.count(b"\x00") * 100 > len(head) and not codec.startswith(("utf-16", "utf-32")):
            raise CsvFileError(_BINARY)

    def _read_header(self) -> tuple[list[str], str]:
        text = self._text.readline(MAX_LINE + 1).lstrip("\ufeff")
        line = text.rstrip("\r\n")
        if self._size(text) > MAX_LINE:
            raise CsvFileError(f"the header line is over {MAX_LINE:,} bytes: this is not a CSV list")
        if _MARKED.search(line):
            raise CsvFileError(f"the header line is {self._undecodable(line)}")
        if not line.strip():
            raise CsvFileError("the first line is empty: it must name the columns")
        if "\x00" in line:
            raise CsvFileError(_BINARY)
        delimiter = next((d for d in (",", ";", "\t") if d in line), ",")
        cells = self._split(line, delimiter)
        if isinstance(cells, str):
            raise CsvFileError(f"the header line has a {cells}")
        return [c.strip() for c in cells], delimiter

    @property
    def read_bytes(self) -> int:
        return self._binary.tell()

    def __iter__(self) -> Iterator[Line]:
        width = len(self.header)
        readline = self._text.readline
        while text := readline(MAX_LINE + 1):
            self._number += 1
            if self._size(text) > MAX_LINE:
                yield Line(self._number, [], self._too_long(text))
                continue
            line = text.rstrip("\r\n")
            if not line.strip():  # a blank line keeps its number, but is no row
                continue
            if not line.isascii() and _MARKED.search(line):
                shown = _MARKED.sub("\ufffd", line)
                cells = self._split(shown, self.delimiter)
                yield Line(
                    self._number, [shown] if isinstance(cells, str) else cells, self._undecodable(line)
                )
                continue
            cells = self._split(line, self.delimiter)
            if isinstance(cells, str):
                yield Line(self._number, [line], cells)
            elif len(cells) != width:
                if any(c.strip() for c in cells):  # a row of empty cells (a spreadsheet's tail) is no row
                    yield Line(self._number, cells, f"{len(cells)} cells where the header has {width}")
            elif any(cells):
                yield Line(self._number, cells)

    def _size(self, text: str) -> int:
        """The line's length in bytes, worked out only when it may be near the limit."""
        if len(text) <= MAX_LINE // 4:
            return len(text)
        return len(text.rstrip("\r\n").encode(self.encoding, "replace"))

    def _too_long(self, start: str) -> str:
        """Skip the rest of an over-long line piece by piece; the reason, with its full size."""
        size = 0
        piece = start
        while True:
            size += len(piece.rstrip("\r\n").encode(self.encoding, "replace"))
            if piece.endswith(_ENDS) or not piece:
                break
            piece = self._text.readline(MAX_LINE)
        return f"line {self._number} is {size:,} bytes, over the {MAX_LINE:,} allowed"

    def _undecodable(self, line: str) -> str:
        byte = ord(_MARKED.search(line).group()) - 0xDC00  # type: ignore[union-attr]
        hint = "e.g. windows-1252" if self.encoding == "utf-8" else "e.g. utf-8 or windows-1252"
        return f"not valid {self._label} (byte 0x{byte:02X}); re-import choosing the file's encoding, {hint}"

    @staticmethod
    def _split(line: str, delimiter: str) -> list[str] | str:
        """The cells of one line, or what is wrong with its quoting."""
        if '"' not in line:
            return line.split(delimiter)
        try:
            return next(csv.reader([line], delimiter=delimiter, strict=True))
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                return "quote that is never closed (a quoted cell must end on its own line)"
            return f"badly quoted cell ({exc})"

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> CsvLines:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
