"""The `[recordings]` config section: the folders recordings may be served from, and the links' lifetime."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxlink.config import RecordingsConfig
from tests.unit.test_config_integrations import error, load


def test_folders_are_absolute_relative_ones_taken_from_the_config_files_folder(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        '[recordings]\nfolders = ["/var/spool/asterisk/monitor/", "rec/../recordings", "/srv/a", "/srv/a"]\n'
        "link_days = 7.5\n",
    )
    assert cfg.recordings == RecordingsConfig(
        folders=(Path("/var/spool/asterisk/monitor"), tmp_path.resolve() / "recordings", Path("/srv/a")),
        link_days=7.5,
    )
    assert all(folder.is_absolute() for folder in cfg.recordings.folders)


def test_left_out_nothing_is_served_and_links_last_30_days(tmp_path: Path) -> None:
    assert load(tmp_path, "").recordings == RecordingsConfig(folders=(), link_days=30.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('folder = ["/x"]', '[recordings]: unknown key "folder" (did you mean "folders"?)'),
        ('folders = "/var/spool"', '[recordings] folders: expected a list of folders like ["/var/spool/'),
        ('folders = ["/x", 3]', "[recordings] folders: expected a list of folders"),
        ('folders = [""]', "[recordings] folders: expected a list of folders"),
        ('folders = ["/srv/../"]', "[recordings] folders: the filesystem root would let a link serve any"),
        ("link_days = 0", "[recordings] link_days: expected days, more than 0 and at most 3650, got 0"),
        ("link_days = -1", "[recordings] link_days: expected days, more than 0 and at most 3650, got -1"),
        ("link_days = 4000", "[recordings] link_days: expected days, more than 0 and at most 3650, got 4000"),
        ('link_days = "30"', '[recordings] link_days: expected days, more than 0 and at most 3650, got "30"'),
        ("link_days = true", "[recordings] link_days: expected days, more than 0 and at most 3650, got true"),
    ],
)
def test_mistakes_are_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    message = error(tmp_path, f"[recordings]\n{text}\n")
    assert message.startswith(f"{tmp_path / 'pbxlink.toml'}: ") and expected in message
    assert "\n" not in message


def test_a_recordings_value_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    assert "[recordings]: expected a table" in error(tmp_path, 'recordings = "/var/spool"\n')
