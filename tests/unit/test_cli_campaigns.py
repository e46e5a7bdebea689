"""`pbxlink campaign create|list|start|pause|resume|stop|status|export` as a manager (or cron) runs them,
through `pbxlink.cli.main`: a real config file and database, the exit statuses and one-line errors."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxlink import cli
from pbxlink.config import load_config
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import Campaign, CampaignAttempt, CampaignContact
from tests.unit.test_cli import CONFIG


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pbxlink.toml"
    path.write_text(CONFIG)
    db = connect(load_config(path, environ={}).database.url)
    migrate(db)
    yield path
    db.close()


def run(config: Path, *argv: str) -> int:
    return cli.main([*argv, "--config", str(config)])


CREATE = (
    "campaign",
    "create",
    "renewals",
    "--pbx",
    "main",
    "--message",
    "custom/renewal",
    "--timezone",
    "UTC",
)


def test_create_then_drive_it_like_cron_does(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, *CREATE, "--per-minute", "20", "--retry", "busy=5:4", "--window", "10:00-19:00") == 0
    assert "created campaign renewals (draft)" in capsys.readouterr().out
    c = Campaign.get()
    assert (c.per_minute, c.window_start, c.window_end, json.loads(c.retry_rules)["busy"]) == (
        20.0,
        "10:00",
        "19:00",
        {"after_minutes": 5.0, "max_attempts": 4},
    )
    assert run(config, "campaign", "start", "renewals") == 0
    assert "campaign renewals: running" in capsys.readouterr().out
    assert run(config, "campaign", "pause", "renewals") == 0
    assert run(config, "campaign", "start", "renewals") == 1
    assert "campaign renewals is paused: resume it" in capsys.readouterr().err
    assert run(config, "campaign", "resume", "renewals") == 0
    assert run(config, "campaign", "stop", "renewals") == 0
    assert run(config, "campaign", "resume", "renewals") == 1
    assert "is stopped, not paused: nothing to resume" in capsys.readouterr().err
    assert Campaign.get().status == "stopped"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (("--per-minute", "0"), "per_minute: must be between 0.1 and 6000 calls a minute"),
        (("--retry", "answered=5:1"), "--retry 'answered=5:1': the outcome is one of busy, no_answer"),
        (("--retry", "busy=soon"), "--retry 'busy=soon': expected OUTCOME=MINUTES:ATTEMPTS"),
        (("--days", "someday"), "days: must be weekdays"),
        (("--mode", "agent_first", "--queue", "support"), "queue: must be on Asterisk, the number"),
    ],
)
def test_a_bad_setting_is_one_line_and_nothing_is_created(
    config: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], error: str
) -> None:
    assert run(config, *CREATE, *extra) == 1
    err = capsys.readouterr().err
    assert err.startswith("pbxlink: error: ") and error in err and err.count("\n") == 1
    assert Campaign.select().count() == 0


def test_an_unknown_pbx_or_campaign_is_said_plainly(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "campaign", "create", "x", "--pbx", "nope", "--message", "m", "--timezone", "UTC") == 1
    assert "no [[pbx]] named 'nope' in the config (main)" in capsys.readouterr().err
    assert run(config, "campaign", "status", "ghost") == 1
    assert "no campaign named 'ghost' (see `pbxlink campaign list`)" in capsys.readouterr().err


def test_status_list_and_export(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, *CREATE) == 0
    c = Campaign.get()
    done = CampaignContact.create(
        campaign=c, number="+12125550100", number_key="+12125550100", name="=cmd|' /C calc'!A0",
        timezones="UTC", status="done", attempts=1, last_outcome="answered",
    )  # fmt: skip
    CampaignContact.create(campaign=c, number="+12125550111", number_key="+12125550111", timezones="UTC")
    CampaignAttempt.create(
        campaign=c, contact=done, tag="t1", started_at=c.created_at, deadline=c.created_at,
        ended_at=c.created_at, outcome="answered", talk_seconds=64.0,
    )  # fmt: skip
    capsys.readouterr()
    assert run(config, "campaign", "status", "renewals") == 0
    out = capsys.readouterr().out
    assert "contacts 2: 1 done, 1 waiting" in out
    assert "dialled 1: 1 answered (100.0%)" in out and "average talk 1:04" in out
    assert run(config, "campaign", "status", "renewals", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["name"], status["progress"]["remaining"], status["progress"]["answered"]) == (
        "renewals",
        1,
        1,
    )
    assert run(config, "campaign", "list") == 0
    assert "renewals  draft   broadcast  main  1/2   100.0%" in capsys.readouterr().out
    out_file = tmp_path / "export.csv"
    assert run(config, "campaign", "export", "renewals", "-o", str(out_file)) == 0
    rows = list(csv.reader(out_file.open(encoding="utf-8")))
    assert rows[0][:4] == ["contact_id", "number", "name", "status"]
    assert rows[1][2] == "'=cmd|' /C calc'!A0" and rows[1][10] == "answered"
    assert rows[2][1] == "+12125550111" and rows[2][7] == ""
    assert "2 rows written to" in capsys.readouterr().err
