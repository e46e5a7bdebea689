"""The `pbxlink` command run as an admin runs it: a real process, a real config file, a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pbxlink.cli import main
from pbxlink.config import load_config
from pbxlink.domain.calls import RECORD_FIELDS, CallRecord, Transfer
from pbxlink.storage import users
from pbxlink.storage.calls import save_call
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import MIGRATIONS, migrate
from pbxlink.storage.models import User

PBXLINK = str(Path(sys.executable).parent / "pbxlink")
CONFIG = """
data_dir = "state"
[[pbx]]
name = "main"
host = "127.0.0.1"
username = "pbxlink"
secret = "not-a-real-secret"
"""
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def pbxlink(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PBXLINK_")}
    return subprocess.run(
        [PBXLINK, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        env={**clean, "TZ": "UTC", **(env or {})},
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "pbxlink.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def seeded(config: Path) -> list[CallRecord]:
    """Three calls written through the repository, as the call-log service writes them."""
    db = connect(load_config(config, environ={}).database.url)
    migrate(db)
    answered = CallRecord(
        pbx="main",
        call_id="1736067600.1",
        direction="inbound",
        started_at=T0,
        caller="+15551234567",
        caller_name="Ada",
        callee="8005550100",
        agent="101",
        agents=["101", "102"],
        queue="support",
        answered_at=T0 + timedelta(seconds=8),
        ended_at=T0 + timedelta(seconds=128),
        disposition="answered",
        hangup_by="customer",
        transfers=[Transfer("101", "102", "blind")],
        recording="/rec/1.wav",
        wait_seconds=8.0,
        talk_seconds=120.0,
    )
    missed = CallRecord(
        pbx="main",
        call_id="1736154000.7",
        direction="inbound",
        started_at=T0 + timedelta(days=1),
        caller="5559990000",
        callee="8005550100",
        ended_at=T0 + timedelta(days=1, seconds=30),
        disposition="missed",
        miss_reason="no_answer",
        hangup_by="customer",
        wait_seconds=30.0,
        talk_seconds=0.0,
    )
    live = CallRecord(
        pbx="main", call_id="x.9", direction="outbound", started_at=datetime.now(UTC), caller="101"
    )
    for rec in (answered, missed, live):
        save_call(rec)
    db.close()
    return [answered, missed, live]


def test_initdb_applies_then_reports_up_to_date(config: Path, tmp_path: Path) -> None:
    first = pbxlink("--config", str(config), "initdb")
    assert (first.returncode, first.stderr) == (0, "")
    versions = ", ".join(str(v) for v, _, _ in MIGRATIONS)
    assert versions == "1, 2, 3, 4, 5, 6, 7, 8"
    assert first.stdout == f"sqlite:///{tmp_path}/state/pbxlink.db: applied migrations {versions}\n"
    again = pbxlink("initdb", "--config", str(config))  # the global options work after the command too
    assert again.stdout.endswith(": up to date (schema version 8)\n")
    assert (tmp_path / "state" / "pbxlink.db").is_file()


def test_calls_json_is_every_field_of_every_record(config: Path, seeded: list[CallRecord]) -> None:
    out = pbxlink("--config", str(config), "calls", "--since", "2026-01-01", "--json")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [list(d) for d in lines] == [["id", *RECORD_FIELDS]] * 3
    assert [{k: v for k, v in d.items() if k != "id"} for d in lines] == [
        r.to_dict() for r in reversed(seeded)
    ]


def test_calls_filters(config: Path, seeded: list[CallRecord]) -> None:
    def call_ids(*args: str) -> list[str]:
        out = pbxlink("--config", str(config), "calls", "--json", *args)
        assert out.returncode == 0, out.stderr
        return [json.loads(line)["call_id"] for line in out.stdout.splitlines()]

    assert call_ids("--number", "5551234567") == ["1736067600.1"]
    assert call_ids("--agent", "102", "--disposition", "answered") == ["1736067600.1"]
    assert call_ids("--since", "2026-01-05", "--until", "2026-01-05") == ["1736067600.1"]  # the whole day
    assert call_ids("--since", "2026-01-06T00:00:00Z", "--until", "2026-01-07") == ["1736154000.7"]
    assert call_ids("--since", "today") == ["x.9"]
    assert call_ids("--limit", "1") == ["x.9"]


def test_calls_table_is_readable(config: Path, seeded: list[CallRecord]) -> None:
    out = pbxlink("--config", str(config), "calls", "--limit", "2")
    assert out.returncode == 0, out.stderr
    header, first, second, footer = out.stdout.splitlines()
    assert header.split() == [
        "ID",
        "STARTED",
        "DIRECTION",
        "CALLER",
        "CALLEE",
        "AGENT",
        "RESULT",
        "WAIT",
        "TALK",
    ]
    assert first.split()[0] == "3" and "in progress" in first
    assert second.split() == [
        *("2", "2026-01-06", "09:00:00", "inbound", "5559990000", "8005550100", "-"),
        *("missed", "(no_answer)", "0:30", "0:00"),
    ]
    assert footer == "2 of 3 calls (use --limit N, or --json for all)"


def test_user_add_from_stdin_then_list(config: Path) -> None:
    out = pbxlink(
        "--config", str(config), "user", "add", "alice", "--admin", "--extension", "101", stdin="s3cret-pw\n"
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "added admin alice (extension 101)\n", "")
    short = pbxlink("--config", str(config), "user", "add", "bob", stdin="short\n")
    assert (short.returncode, short.stderr) == (1, "pbxlink: error: password must be at least 8 characters\n")
    listed = pbxlink("--config", str(config), "user", "list")
    assert [line.split()[:4] for line in listed.stdout.splitlines()] == [
        ["USER", "ROLE", "EXTENSION", "ACTIVE"],
        ["alice", "admin", "101", "yes"],
    ]
    token = pbxlink("--config", str(config), "token", "add", "alice", "crm-sync")
    assert token.returncode == 0 and "cannot be shown again" in token.stderr

    db = connect(load_config(config, environ={}).database.url)
    assert users.authenticate("alice", "s3cret-pw") is not None
    assert users.authenticate("alice", "short") is None
    assert users.user_for_token(token.stdout.strip()).username == "alice"  # type: ignore[union-attr]
    assert [u.username for u in User.select()] == ["alice"]
    db.close()


def test_config_from_environment(config: Path) -> None:
    out = pbxlink("initdb", env={"PBXLINK_CONFIG": str(config)})
    assert out.returncode == 0 and "applied migrations 1, 2, 3, 4, 5, 6, 7, 8" in out.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CONFIG.replace('secret = "not-a-real-secret"\n', ""), '[[pbx]] #1 "main": missing key "secret"'),
        (CONFIG + '[web]\nlisten = "127.0.0.1:80x"\n', '[web] listen: "127.0.0.1:80x" is not host:port'),
        (CONFIG.replace('data_dir = "state"', 'data_dir = "pbxlink.toml"'), "cannot create folder"),
        (CONFIG + "[web\n", "TOML syntax error"),
    ],
)
def test_bad_config_or_database_is_one_line_and_exit_2(config: Path, text: str, expected: str) -> None:
    config.write_text(text)
    out = pbxlink("--config", str(config), "calls")
    assert out.returncode == 2
    assert out.stderr.startswith("pbxlink: error: ") and expected in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_missing_config_and_bad_date(tmp_path: Path) -> None:
    out = pbxlink("--config", str(tmp_path / "nope.toml"), "initdb")
    assert (out.returncode, out.stderr) == (
        2,
        f"pbxlink: error: {tmp_path}/nope.toml: cannot read config file: No such file or directory\n",
    )
    assert (
        pbxlink("initdb").stderr
        == "pbxlink: error: no config file: pass --config FILE or set PBXLINK_CONFIG\n"
    )
    bad = pbxlink("calls", "--since", "last week")
    assert bad.returncode == 2 and "'last week' is not a date" in bad.stderr


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    commands = (["run"], ["check"], ["demo"], ["initdb"], ["user", "add"], ["user", "list"], ["token", "add"])
    for command in [*commands, ["calls"]]:
        with pytest.raises(SystemExit) as exit_:
            main([*command, "--help"])
        out = capsys.readouterr().out
        assert exit_.value.code == 0 and out.startswith(f"usage: pbxlink {' '.join(command)}"), command
    for option in (
        "--since",
        "--until",
        "--number",
        "--agent",
        "--disposition",
        "--limit",
        "--json",
        "--config",
    ):
        assert option in out
