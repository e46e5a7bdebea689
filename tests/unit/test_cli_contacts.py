"""`pbxlink campaign import` and `pbxlink dnc …` as an admin runs them: a real config file, a real database.

Through `pbxlink.cli.main`, so the commands are tested with main's own error handling and exit statuses.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxlink import cli
from pbxlink.config import load_config
from pbxlink.storage import dnc
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import Campaign, CampaignContact
from tests.unit.test_cli import CONFIG


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "pbxlink.toml"
    path.write_text(CONFIG)
    db = connect(load_config(path, environ={}).database.url)
    migrate(db)
    Campaign.create(name="renewals", pbx="main", mode="broadcast", timezone="America/New_York")
    yield path
    db.close()


def run(config: Path, *argv: str) -> int:
    return cli.main([*argv[:2], "--config", str(config), *argv[2:]])


def write(tmp_path: Path, text: str, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_import_shows_its_mapping_and_a_summary(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, "Phone,Name,Due date\n+1 212 555 0100,Ann,2026-12-01\n+1 312 555 0100,Bob,2026-12-02\n"
    )
    assert run(config, "campaign", "import", "renewals", str(path)) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "columns of list.csv:",
        "  Phone     -> number",
        "  Name      -> name",
        "  Due date  -> custom, as PBXLINK_COL_DUE_DATE",
        "2 rows: 2 imported, 0 rejected, 0 duplicates, 0 on the do-not-call list",
    ]
    assert err == ""  # no bar when stderr is no terminal
    assert CampaignContact.select().count() == 2


def test_rejected_rows_exit_1_and_name_the_rejects_file(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dnc.add("+1 415 555 0100", None, None)
    path = write(tmp_path, "Phone\n+1 212 555 0100\n212-555-0100\nnope\n+1 415 555 0100\n")
    assert run(config, "campaign", "import", "renewals", str(path)) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    rejects = tmp_path / "state" / "campaign-imports" / "campaign-1-import-1-rejected.csv"
    assert last == (
        f"4 rows: 1 imported, 1 rejected, 1 duplicates, 1 on the do-not-call list; rejected rows in {rejects}"
    )
    assert rejects.read_text(encoding="utf-8-sig").count("\n") == 4  # header and the three not imported


def test_map_options_choose_the_columns_over_the_guess(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "Phone,Mobile,Who\n+1 212 555 0199,+1 212 555 0100,Ann\n")
    code = run(
        config, "campaign", "import", "renewals", str(path), "--map", "Mobile=number", "--map", "Who=name"
    )
    assert code == 0, capsys.readouterr()
    assert "  Phone   -> custom, as PBXLINK_COL_PHONE" in capsys.readouterr().out
    contact = CampaignContact.get()
    assert (contact.number, contact.name, contact.fields) == (
        "+12125550100",
        "Ann",
        '{"PHONE": "+1 212 555 0199"}',
    )


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        ("Name\nAnn\n", [], "list.csv: no column holds the phone number: map one of Name to number"),
        ("Phone\n1\n", ["--encoding", "klingon"], "list.csv: unknown encoding 'klingon'"),
        ("Phone\n1\n", ["--map", "Tel=number"], "list.csv: no column 'Tel' in the file"),
    ],
)
def test_a_file_that_cannot_be_imported_exits_2_with_one_line(
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    extra: list[str],
    message: str,
) -> None:
    path = write(tmp_path, text)
    assert run(config, "campaign", "import", "renewals", str(path), *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pbxlink: error: {path}: ") and message in err and err.count("\n") == 1


def test_a_bad_map_option_or_an_unknown_campaign_is_refused(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "Phone\n+1 212 555 0100\n")
    assert run(config, "campaign", "import", "nope", str(path)) == 1
    assert capsys.readouterr().err == "pbxlink: error: no campaign named 'nope'\n"
    with pytest.raises(SystemExit) as exit:
        run(config, "campaign", "import", "renewals", str(path), "--map", "Phone")
    assert exit.value.code == 2
    assert (
        "expected HEADER=FIELD, FIELD one of number, name, timezone, custom, ignore"
        in capsys.readouterr().err
    )


def test_on_a_terminal_the_import_draws_a_progress_bar(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    path = write(tmp_path, "Phone\n+1 212 555 0100\n")
    assert run(config, "campaign", "import", "renewals", str(path)) == 0
    assert "[##############################] 100%  1 rows" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\x1b[K")  # the bar is wiped before the summary


def test_dnc_add_remove_and_list(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "dnc", "add", "(212) 555-0100", "--reason", "asked on the phone") == 0
    assert capsys.readouterr().out == "added +12125550100 to the do-not-call list\n"
    assert run(config, "dnc", "add", "+1 212 555 0100") == 0
    assert "+12125550100 is already on the do-not-call list since " in capsys.readouterr().out
    assert run(config, "dnc", "add", "+1 312 555 0100") == 0
    assert run(config, "dnc", "add", "12345") == 1
    assert "pbxlink: error: '12345' is not a phone number" in capsys.readouterr().err
    assert run(config, "dnc", "list", "--search", "phone") == 0
    header, row, footer = capsys.readouterr().out.splitlines()
    assert header.split() == ["NUMBER", "REASON", "ADDED", "BY", "ADDED"]
    assert row.startswith("+12125550100  asked on the phone  cli") and footer == "1 of 1 entries"
    assert run(config, "dnc", "list", "--limit", "1") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 of 2 entries (use --limit N for more)"
    assert run(config, "dnc", "remove", "212.555.0100") == 0
    assert capsys.readouterr().out == "removed 212.555.0100 from the do-not-call list\n"
    assert run(config, "dnc", "remove", "212.555.0100") == 1
    assert "is not on the do-not-call list" in capsys.readouterr().err
    assert dnc.count() == 1


def test_dnc_import_reads_a_csv_with_reasons_and_says_what_it_refused(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dnc.add("+1 415 555 0100", None, None)
    path = write(tmp_path, "Reason;Telephone\ncomplaint;212 555 0100\n;415-555-0100\nx;not a number\n")
    assert run(config, "dnc", "import", str(path)) == 1
    out, err = capsys.readouterr()
    assert err == "line 4: 'not a number' is not a phone number (it needs at least 7 digits)\n"
    assert out == "3 lines: 1 added, 1 already on the list, 1 rejected; 2 numbers on the do-not-call list\n"
    assert dnc.page("212", 10)[0][0].reason == "complaint"


def test_dnc_import_reads_bare_numbers_and_refuses_a_file_without_numbers(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "+1 212 555 0100\n+1 312 555 0100\n\n+1 212 555 0100\n", "numbers.txt")
    assert run(config, "dnc", "import", str(path)) == 0
    assert (
        capsys.readouterr().out
        == "3 lines: 2 added, 1 already on the list, 0 rejected; 2 numbers on the do-not-call list\n"
    )
    path = write(tmp_path, "Name,Email\nAnn,a@example.com\n")
    assert run(config, "dnc", "import", str(path)) == 2
    assert "no column holds the phone number (name it Phone or Number)" in capsys.readouterr().err


def test_every_command_and_option_has_help() -> None:
    top = cli.build_parser()
    (commands,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    for top_name, group in commands.choices.items():
        subs = [a for a in group._actions if isinstance(a, argparse._SubParsersAction)]
        leaves = subs[0].choices.items() if subs else [(top_name, group)]
        for name, command in leaves:
            assert command.description, name
            for action in command._actions:
                assert action.help, f"{name} {action.dest}"
