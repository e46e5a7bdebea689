"""`[[retention_policy]]` tables and `[recordings] retention_time`: what the file may say, and the one-line
message naming the key when it says something else."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxlink.config import RetentionPolicyConfig
from tests.unit.test_config_integrations import error, load


def test_a_full_policy_and_a_bare_one_previewing_only(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        '[recordings]\nretention_time = "01:15"\n'
        '[[retention_policy]]\nname = "sales"\nkeep_days = 90\nqueues = ["sales", "sales"]\n'
        'direction = ["inbound", "outbound"]\ncampaigns = ["spring"]\nenabled = true\n'
        'transcode = "opus"\ntranscode_after_days = 7.5\n'
        '[[retention_policy]]\nname = "all"\nkeep_days = 365\n',
    )
    assert cfg.recordings.retention_time == "01:15"
    assert cfg.retention_policies == (
        RetentionPolicyConfig(
            name="sales",
            keep_days=90.0,
            queues=("sales",),
            directions=("inbound", "outbound"),
            campaigns=("spring",),
            enabled=True,
            transcode="opus",
            transcode_after_days=7.5,
        ),
        RetentionPolicyConfig(name="all", keep_days=365.0),
    )
    bare = cfg.retention_policies[1]
    assert not bare.enabled and bare.transcode == "none" and bare.queues == bare.directions == ()


def test_one_direction_as_a_string_and_the_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[[retention_policy]]\nname = "int"\nkeep_days = 1\ndirection = "internal"\n')
    assert cfg.retention_policies[0].directions == ("internal",)
    assert cfg.recordings.retention_time == "03:30"
    assert load(tmp_path, "").retention_policies == ()


P = '[[retention_policy]]\nname = "p"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (P, '[[retention_policy]] #1 "p": missing key "keep_days"'),
        (P + "keep_days = 0", '[[retention_policy]] #1 "p" keep_days: expected days, more than 0'),
        (P + "keep_days = -3", '"p" keep_days: expected days, more than 0 and at most 36500, got -3'),
        (P + 'keep_days = "30"', '"p" keep_days: expected days, more than 0 and at most 36500, got "30"'),
        (P + "keep_days = true", '"p" keep_days: expected days, more than 0 and at most 36500, got true'),
        (P + "keep_days = 1\nkeep = 3", '"p": unknown key "keep" (did you mean "keep_days"?)'),
        (P + 'keep_days = 1\ndirection = "sideways"', '"p" direction: "sideways" is not one of "inbound"'),
        (P + "keep_days = 1\ndirection = [1]", '"p" direction: [1] is not one of "inbound", "outbound"'),
        (P + 'keep_days = 1\nqueues = "sales"', '"p" queues: expected a list of names like ["sales"]'),
        (P + 'keep_days = 1\ncampaigns = [""]', '"p" campaigns: expected a list of names'),
        (P + 'keep_days = 1\nenabled = "yes"', '"p" enabled: expected true or false, got "yes"'),
        (P + 'keep_days = 1\ntranscode = "flac"', '"p" transcode: "flac" is not one of "none", "mp3"'),
        (P + "keep_days = 1\ntranscode_after_days = 3", '"p" transcode_after_days: has no effect without'),
        (
            P + 'keep_days = 1\ntranscode = "mp3"\ntranscode_after_days = -1',
            '"p" transcode_after_days: expected days, 0 or more and at most 36500, got -1',
        ),
        (P + "keep_days = 1\n" + P + "keep_days = 2", '"p" name: a second [[retention_policy]] is "p"'),
        ('[recordings]\nretention_time = "3:30"', "[recordings] retention_time: expected a time of day"),
        ('[recordings]\nretention_time = "24:00"', "[recordings] retention_time: expected a time of day"),
        ("[recordings]\nretention_time = 330", "[recordings] retention_time: expected a time of day"),
    ],
)
def test_mistakes_are_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    message = error(tmp_path, text + "\n")
    assert message.startswith(f"{tmp_path / 'pbxlink.toml'}: ") and expected in message
    assert "\n" not in message
