"""Importing contact lists into a campaign on a real database: what is imported, what is refused and why,
and that the file is streamed (a 10 MB line, a 200,000-row file) with its progress reported."""

from __future__ import annotations

import csv
import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest

from pbxlink.services import contact_batches
from pbxlink.services.contact_import import (
    ImportStats,
    read_header,
    run_import,
    start_import,
    suggest_mapping,
)
from pbxlink.storage import dnc
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import Campaign, CampaignContact, CampaignImport
from tests.unit.test_storage import db, pg_server  # noqa: F401  (fixtures: both databases)

FORMULA = "=cmd|' /C calc'!A0"


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[pw.Database]:
    database = connect(f"sqlite:///{tmp_path}/state/pbxlink.db")
    migrate(database)
    yield database
    database.close()


def campaign(zone: str = "America/New_York", name: str = "renewals") -> Campaign:
    return Campaign.create(name=name, pbx="pbx1", mode="broadcast", timezone=zone)


def write(tmp_path: Path, text: str | bytes, name: str = "list.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def imported(c: Campaign, path: Path, mapping: dict[str, str] | None = None, **kw: object) -> CampaignImport:
    kw.setdefault("rejects_dir", path.parent / "rejects")
    return run_import(c.id, path, mapping, filename=path.name, **kw)  # type: ignore[arg-type]


def contacts(c: Campaign) -> dict[str, CampaignContact]:
    return {k.number: k for k in CampaignContact.select().where(CampaignContact.campaign == c.id)}


def rejects(row: CampaignImport) -> dict[int, list[str]]:
    """The rejects file by line number: the original cells, then the reason."""
    assert row.rejects_path is not None
    with open(row.rejects_path, encoding="utf-8-sig", newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[-2:] == ["line", "reason"]
    return {int(r[-2]): [*r[:-2], r[-1]] for r in rows}


def totals(row: CampaignImport) -> tuple[int, int, int, int, int]:
    return (row.rows, row.accepted, row.rejected, row.duplicates, row.dnc)


# --- columns and fields ---------------------------------------------------------------------------


@pytest.mark.usefixtures("sqlite")
def test_columns_in_any_order_are_found_by_name_and_the_rest_become_dialplan_variables(
    tmp_path: Path,
) -> None:
    c = campaign(zone="Europe/Berlin")
    path = write(
        tmp_path,
        "Due date, Amount ,Full Name,TZ,Mobile\n"
        "2026-12-01,120.50,Ann Lee,,(212) 555-0100\n"
        "2026-12-02,80,Bob,,+44 20 7946 0958\n"
        "2026-12-03,15,Chloé,europe/paris,+1 312 555 0100\n"
        "2026-12-04,1,Toll free,,+1 800 555 0100\n",
    )
    assert read_header(path) == ["Due date", "Amount", "Full Name", "TZ", "Mobile"]
    assert suggest_mapping(read_header(path)) == {
        "Due date": "custom", "Amount": "custom", "Full Name": "name", "TZ": "timezone", "Mobile": "number",
    }  # fmt: skip
    row = imported(c, path, by="alice")
    assert (row.status, row.error, row.started_by, row.rejects_path) == ("done", None, "alice", None)
    assert totals(row) == (4, 4, 0, 0, 0)
    assert json.loads(row.mapping)["Mobile"] == "number"
    got = contacts(c)
    ann = got["+12125550100"]
    assert (ann.number_key, ann.name, ann.row, ann.status, ann.next_at) == (
        "+12125550100", "Ann Lee", 2, "pending", None,
    )  # fmt: skip
    assert json.loads(ann.fields) == {"DUE_DATE": "2026-12-01", "AMOUNT": "120.50"}
    assert ann.timezones == "America/New_York"  # from the number
    assert got["+442079460958"].timezones == "Europe/London"
    assert got["+13125550100"].timezones == "Europe/Paris"  # the column wins, in its canonical spelling
    assert got["+13125550100"].name == "Chloé"
    assert got["+18005550100"].timezones == "Europe/Berlin"  # no place of its own: the campaign's zone


@pytest.mark.usefixtures("sqlite")
def test_a_given_mapping_picks_the_columns_and_ignores_what_it_is_told_to(tmp_path: Path) -> None:
    c = campaign()
    path = write(tmp_path, "Client;Tel;Internal note;Branch\nAnn;2125550100;owes us;Queens\n")
    row = imported(c, path, {"Tel": "number", "Client": "name", "Internal note": "ignore"})
    assert row.status == "done"
    assert json.loads(row.mapping) == {
        "Client": "name", "Tel": "number", "Internal note": "ignore", "Branch": "custom",
    }  # fmt: skip
    (ann,) = contacts(c).values()
    assert (ann.number, ann.name, json.loads(ann.fields)) == ("+12125550100", "Ann", {"BRANCH": "Queens"})


@pytest.mark.parametrize(
    ("text", "mapping", "encoding", "error"),
    [
        (
            "Name,Email\nAnn,a@example.com\n",
            None,
            "utf-8",
            "no column holds the phone number: map one of Name",
        ),
        (
            "Phone,Mobile\n1,2\n",
            {"Phone": "number", "Mobile": "number"},
            "utf-8",
            "'Phone' and 'Mobile' both",
        ),
        ("Phone,Name,Name\n1,a,b\n", None, "utf-8", "two columns are named 'Name'"),
        (
            "Phone,Due date,due-date\n1,a,b\n",
            None,
            "utf-8",
            "would both be the dialplan variable PBXLINK_COL_DUE",
        ),
        ("Phone,€\n1,a\n", None, "utf-8", "column '€' gives no variable name"),
        ("Phone\n1\n", {"Telephone": "number"}, "utf-8", "no column 'Telephone' in the file"),
        ("Phone\n1\n", {"Phone": "mobile"}, "utf-8", "'mobile' is not one of number, name"),
        ("Phone\n1\n", None, "klingon-8", "unknown encoding 'klingon-8'"),
        ("", None, "utf-8", "the file is empty"),
        ("PK\x03\x04\x14\x00\x06\x00", None, "utf-8", "spreadsheet workbook (.xlsx), not a CSV"),
        ("Phone\x00\x01\x02\n", None, "utf-8", "this is not a CSV file"),
        ("Na\xefme,Phone\n", None, "utf-8", "the header line is not valid UTF-8"),
    ],
)
@pytest.mark.usefixtures("sqlite")
def test_a_file_that_cannot_be_imported_fails_its_row_with_the_reason(
    tmp_path: Path, text: str, mapping: dict[str, str] | None, encoding: str, error: str
) -> None:
    c = campaign()
    raw = text.encode("latin-1") if "\xef" in text else text.encode()
    row = imported(c, write(tmp_path, raw), mapping, encoding=encoding)
    assert row.status == "failed" and row.finished_at is not None
    assert error in row.error
    assert CampaignImport.get_by_id(row.id).error == row.error
    assert not contacts(c)


# --- rows refused, and why --------------------------------------------------------------------------


@pytest.mark.usefixtures("sqlite")
def test_each_bad_row_is_refused_with_its_reason_and_the_import_goes_on(tmp_path: Path) -> None:
    c = campaign()
    lines = [
        "Phone,Name,Timezone,Note",
        "+1 212 555 0100,Ann,,ok",  # 2
        ",Nobody,,",  # 3
        "hello,Bad number,,",  # 4
        "+1 900 555 0100,Premium,,",  # 5
        "911,Emergency,,",  # 6
        "+1 212 555 0101,Too,many,cells,here",  # 7
        "+1 212 555 0102,Mars,Mars/Olympus,",  # 8
        f"+1 212 555 0103,Long note,,{'x' * 201}",  # 9
        '+1 212 555 0104,Comma,,"a,b"',  # 10
        "+1 212 555 0105,Pipe,,a|b",  # 11
        f"+1 212 555 0106,{'N' * 129},,",  # 12
        '+1 212 555 0107,"Unclosed,,',  # 13
        "+1 212 555\x000108,Nul,,",  # 14
        "+1 212 555 0109,Ann\x07Bell,,",  # 15
        "",  # a blank line is no row
        "+1 212 555 0110,Last,,fine",  # 17
    ]
    row = imported(c, write(tmp_path, "\r\n".join(lines) + "\r\n"))
    assert row.status == "done"
    assert totals(row) == (15, 2, 13, 0, 0)
    assert sorted(contacts(c)) == ["+12125550100", "+12125550110"]
    reasons = {line: cells[-1] for line, cells in rejects(row).items()}
    assert reasons == {
        3: "no phone number",
        4: "number 'hello': a phone number holds only digits, spaces and + ( ) - . /",
        5: "number '+1 900 555 0100': premium-rate numbers cannot be dialled",
        6: "number '911': short codes, service and emergency numbers cannot be dialled",
        7: "5 cells where the header has 4",
        8: "time zone 'Mars/Olympus' is not a zone name such as Europe/Paris or America/Chicago",
        9: "column 'Note' is 201 characters, over the 200 allowed",
        10: "column 'Note' holds a , or | or a line break, which cannot reach the dialplan "
        "(the AMI splits variables on them)",
        11: "column 'Note' holds a , or | or a line break, which cannot reach the dialplan "
        "(the AMI splits variables on them)",
        12: "the name is 129 characters, over the 128 allowed",
        13: "quote that is never closed (a quoted cell must end on its own line)",
        14: "number '+1 212 555\\x000108': the number may not contain line breaks or control characters",
        15: "the name holds control characters (a line break, a tab, NUL …)",
    }
    assert rejects(row)[4][:3] == ["hello", "Bad number", ""]  # the original cells come first
    # A line that could not be split comes whole; starting with + it is neutralised for spreadsheets.
    assert rejects(row)[13][0] == "'+1 212 555 0107,\"Unclosed,,"


@pytest.mark.usefixtures("sqlite")
def test_a_windows_1252_file_is_refused_line_by_line_as_utf8_and_imported_whole_with_its_encoding(
    tmp_path: Path,
) -> None:
    c = campaign()
    text = "Phone,Name\r\n+1 212 555 0100,José\r\n+1 212 555 0101,Ann\r\n+1 212 555 0102,Zoë\r\n"
    path = write(tmp_path, text, encoding="cp1252")
    row = imported(c, path)
    assert totals(row) == (3, 1, 2, 0, 0)
    why = "not valid UTF-8 (byte 0xE9); re-import choosing the file's encoding, e.g. windows-1252"
    assert rejects(row)[2] == ["'+1 212 555 0100", "Jos\ufffd", why]
    assert rejects(row)[4][-1].startswith("not valid UTF-8 (byte 0xEB)")
    again = imported(campaign(name="second"), path, encoding="windows-1252")
    assert totals(again) == (3, 3, 0, 0, 0)
    assert sorted(k.name for k in contacts(Campaign.get(Campaign.name == "second")).values()) == [
        "Ann", "José", "Zoë",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        ("\ufeffPhone,Name\r\n+1 212 555 0100,José\r\n".encode(), "utf-8"),
        ("Phone;Name\r\n+1 212 555 0100;José\r\n".encode("cp1252"), "cp1252"),  # Europe's Excel
        ("Phone\tName\n+1 212 555 0100\tJosé\n".encode(), "utf-8"),
        ("Phone,Name\r\n+1 212 555 0100,José\r\n".encode("utf-16"), "utf-16"),  # with its byte order mark
        ("Phone,Name\r+1 212 555 0100,José\r".encode(), "UTF8"),  # old Mac line ends
    ],
)
@pytest.mark.usefixtures("sqlite")
def test_byte_order_marks_delimiters_and_line_ends_are_understood(
    tmp_path: Path, raw: bytes, encoding: str
) -> None:
    c = campaign()
    row = imported(c, write(tmp_path, raw), encoding=encoding)
    assert (row.status, totals(row)) == ("done", (1, 1, 0, 0, 0))
    assert contacts(c)["+12125550100"].name == "José"


@pytest.mark.usefixtures("sqlite")
def test_ten_megabytes_on_one_line_are_skipped_in_bounded_memory(tmp_path: Path) -> None:
    c = campaign()
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("Phone,Name\n+1 212 555 0100,Ann\n")
        f.write("+1 212 555 0101," + "x" * (10 * 1024 * 1024 - 16) + "\n")
        f.write("+1 212 555 0102,Bob\n")
    tracemalloc.start()
    try:
        row = imported(c, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert totals(row) == (3, 2, 1, 0, 0)
    assert rejects(row)[3][-1] == "line 3 is 10,485,760 bytes, over the 65,536 allowed"
    assert sorted(contacts(c)) == ["+12125550100", "+12125550102"]
    assert peak < 2 * 1024 * 1024, f"{peak:,} bytes held for a 10 MB line"


@pytest.mark.usefixtures("sqlite")
def test_a_formula_is_stored_as_text_in_a_name_refused_in_a_variable_and_neutralised_in_the_rejects(
    tmp_path: Path,
) -> None:
    c = campaign()
    path = write(
        tmp_path, f'Phone,Name,Ref\n+1 212 555 0100,"{FORMULA}",A1\n+1 212 555 0101,Bob,"{FORMULA}"\n'
    )
    row = imported(c, path)
    assert totals(row) == (2, 1, 1, 0, 0)
    assert contacts(c)["+12125550100"].name == FORMULA  # the panel shows it as text; exports neutralise it
    with open(row.rejects_path, encoding="utf-8-sig", newline="") as f:
        _, refused = list(csv.reader(f))
    assert refused[2] == "'" + FORMULA
    assert "(the AMI splits variables on them)" in refused[-1]


@pytest.mark.usefixtures("sqlite")
def test_the_rejects_file_once_corrected_imports_again(tmp_path: Path) -> None:
    c = campaign()
    row = imported(c, write(tmp_path, "Phone,Name,Note\n+1 212 555 0100,=SUM(A1),a|b\n"))
    assert totals(row) == (1, 0, 1, 0, 0)
    text = Path(row.rejects_path).read_text(encoding="utf-8-sig")
    assert text.startswith("Phone,Name,Note,line,reason\n'+1 212 555 0100,'=SUM(A1),a|b,2,")
    fixed = write(tmp_path, text.replace("a|b", "a b"), "fixed.csv")
    assert suggest_mapping(read_header(fixed))["reason"] == "ignore"
    again = imported(c, fixed)
    assert totals(again) == (1, 1, 0, 0, 0)
    (ann,) = contacts(c).values()
    assert (ann.number, ann.name, json.loads(ann.fields)) == ("+12125550100", "=SUM(A1)", {"NOTE": "a b"})


# --- duplicates and the do-not-call list --------------------------------------------------------------


@pytest.mark.usefixtures("db")
def test_duplicates_in_the_file_and_in_the_campaign_and_dnc_numbers_are_counted_and_listed(
    tmp_path: Path,
) -> None:
    """On SQLite and PostgreSQL: the insert is written by hand, so both dialects are run."""
    c = campaign()
    assert totals(imported(c, write(tmp_path, "Phone\n+1 415 555 0100\n", "first.csv"))) == (1, 1, 0, 0, 0)
    dnc.add("312-555-0100", "asked", None)
    lines = [
        "Phone,Name",
        "(212) 555-0100,Ann",
        "+12125550100,Ann again",
        "415 555 0100,Known",
        "+1 312 555 0100,Dnc",
    ]
    lines += [f"+1 646 555 {n:04d},Filler" for n in range(600)]  # the next one lands in another batch
    lines.append("212.555.0100,Ann once more")
    row = imported(c, write(tmp_path, "\n".join(lines) + "\n"))
    assert totals(row) == (605, 601, 0, 3, 1)
    reasons = {line: cells[-1] for line, cells in rejects(row).items()}
    assert reasons == {
        3: "duplicate of line 2",
        4: "already in the campaign",
        5: "on the do-not-call list",
        606: "duplicate of line 2",
    }
    assert len(contacts(c)) == 602
    assert CampaignContact.get(CampaignContact.number == "+12125550100").name == "Ann"


# --- progress and streaming -------------------------------------------------------------------------


@pytest.mark.usefixtures("sqlite")
def test_a_200k_row_file_is_streamed_with_progress_reaching_the_totals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 dialable rows among 200,000 (the rest have no number, which is cheap to refuse)."""
    monkeypatch.setattr(contact_batches, "REPORT_EVERY", 0.0)  # report after every batch
    c = campaign()
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("Phone,Name,Ref\n")
        for n in range(200_000):
            f.write(f"+1 212 555 {n // 100:04d},Person {n},R{n}\n" if n % 100 == 0 else f",Person {n},R{n}\n")
    seen: list[tuple[int, int, int, int]] = []

    def progress(s: ImportStats) -> None:
        saved = CampaignImport.get()
        assert (saved.rows, saved.read_bytes) == (s.rows, s.read_bytes)  # the panel's bar sees the same
        seen.append((s.read_bytes, s.rows, s.accepted, s.rejected))

    row = imported(c, path, progress=progress)
    assert totals(row) == (200_000, 2_000, 198_000, 0, 0)
    assert (row.read_bytes, row.total_bytes) == (path.stat().st_size,) * 2
    assert len(seen) >= 400 and seen == sorted(seen)
    assert 0 < seen[len(seen) // 2][0] < path.stat().st_size
    assert seen[-1] == (path.stat().st_size, 200_000, 2_000, 198_000)
    assert CampaignContact.select().count() == 2_000


@pytest.mark.usefixtures("sqlite")
def test_an_import_started_in_the_background_is_polled_to_its_end(tmp_path: Path) -> None:
    c = campaign()
    path = write(tmp_path, "Phone\n+1 212 555 0100\n+1 212 555 0100\nnope\n")
    import_id = start_import(c.id, path, None, filename="upload.csv", by="alice", rejects_dir=tmp_path)
    deadline = time.monotonic() + 60
    while (row := CampaignImport.get_by_id(import_id)).status == "running":
        assert time.monotonic() < deadline, "the import never finished"
        time.sleep(0.05)
    assert (row.status, row.filename, row.started_by, totals(row)) == (
        "done",
        "upload.csv",
        "alice",
        (3, 1, 1, 1, 0),
    )
    assert Path(row.rejects_path).name == f"campaign-{c.id}-import-{import_id}-rejected.csv"
    failing = start_import(
        c.id, write(tmp_path, "Name\nAnn\n", "names.csv"), None, filename="names.csv", rejects_dir=tmp_path
    )
    while (row := CampaignImport.get_by_id(failing)).status == "running":
        assert time.monotonic() < deadline, "the import never finished"
        time.sleep(0.05)
    assert row.status == "failed" and row.error.startswith("no column holds the phone number")
