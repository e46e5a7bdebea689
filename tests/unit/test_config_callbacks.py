"""The `[[callback_policy]]` config tables: defaults, every key, and one-line errors naming the key."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pbxlink.config import DEFAULT_HOURS, MISS_REASONS, CallbackPolicyConfig
from tests.unit.test_config_integrations import error, load

PBXES = """
[[pbx]]
name = "main"
host = "127.0.0.1"
username = "pbxlink"
secret = "s"
[[pbx]]
name = "branch"
type = "freeswitch"
host = "127.0.0.2"
username = "pbxlink"
secret = "s"
"""
Q = 'queue = "600"\n'


def policy(tmp_path: Path, body: str, env: dict[str, str] | None = None) -> CallbackPolicyConfig:
    cfg = load(tmp_path, f'{PBXES}[[callback_policy]]\nname = "p"\n{body}\n', env)
    assert len(cfg.callback_policies) == 1
    return cfg.callback_policies[0]


def policy_error(tmp_path: Path, body: str) -> str:
    message = error(tmp_path, f'{PBXES}[[callback_policy]]\nname = "p"\n{body}\n')
    assert message.startswith(f"{tmp_path / 'pbxlink.toml'}: ") and "\n" not in message
    return message


def test_defaults_ring_the_queue_on_weekdays_nine_to_five(tmp_path: Path) -> None:
    p = policy(tmp_path, 'queue = "600"', env={"TZ": "Europe/Paris"})
    assert p == CallbackPolicyConfig(name="p", pbx="main", timezone="Europe/Paris", queue="600")
    assert (p.dids, p.queues, p.source, p.reasons) == ((), (), "missed_call", MISS_REASONS)
    assert (p.min_wait, p.delay, p.max_attempts, p.retry_after) == (5.0, 60.0, 3, 600.0)
    assert (p.order, p.ring, p.context, p.holidays) == ("agent_first", "queue", "pbxlink-callback", ())
    assert p.hours == DEFAULT_HOURS
    assert DEFAULT_HOURS[0] == ((540, 1020),) and DEFAULT_HOURS[5] == DEFAULT_HOURS[6] == ()


def test_without_tz_the_servers_zone_is_taken_by_its_name(tmp_path: Path) -> None:
    zone = policy(tmp_path, 'queue = "600"').timezone
    assert zone == "UTC" or "/" in zone  # an IANA name (DST-aware), never a fixed offset like "+02:00"


def test_every_key(tmp_path: Path) -> None:
    p = policy(
        tmp_path,
        """
pbx = "branch"
match = { dids = ["+1 555 123 0000", "5551230001"], queues = ["sales", "600"] }
reasons = ["abandoned", "queue_timeout", "abandoned"]
min_wait = 0
delay = 120.5
timezone = "America/New_York"
hours = { mon = "08:30-12:00", tue = ["13:00-17:30", "08:00-12:00"], sat = [], sun = "10:00-24:00" }
holidays = [2026-12-25, "2026-12-24", 2026-12-25]
max_attempts = 5
retry_after = 900
order = "customer_first"
queue = "sales"
present_number = "+15551230000"
message = "custom/callback-intro"
context = "my-callbacks"
""",
    )
    assert p.pbx == "branch" and p.timezone == "America/New_York"
    assert p.dids == ("+1 555 123 0000", "5551230001") and p.queues == ("sales", "600")
    assert p.reasons == ("abandoned", "queue_timeout") and (p.min_wait, p.delay) == (0.0, 120.5)
    assert p.hours == (((510, 720),), ((480, 720), (780, 1050)), (), (), (), (), ((600, 1440),))
    assert p.holidays == (date(2026, 12, 24), date(2026, 12, 25))
    assert (p.max_attempts, p.retry_after, p.order, p.queue) == (5, 900.0, "customer_first", "sales")
    assert (p.present_number, p.message, p.context) == (
        "+15551230000",
        "custom/callback-intro",
        "my-callbacks",
    )


def test_agent_first_ringing_the_agent_needs_no_queue(tmp_path: Path) -> None:
    p = policy(tmp_path, 'ring = "agent"')
    assert (p.order, p.ring, p.queue) == ("agent_first", "agent", None)


def test_one_website_policy_and_the_others_for_missed_calls(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        PBXES
        + '[[callback_policy]]\nname = "misses"\nqueue = "600"\n'
        + '[[callback_policy]]\nname = "website"\nmatch = { source = "web" }\nqueue = "600"\n',
    )
    assert [(p.name, p.source) for p in cfg.callback_policies] == [
        ("misses", "missed_call"),
        ("website", "web"),
    ]
    assert load(tmp_path, PBXES).callback_policies == ()


def test_a_second_website_policy_is_refused(tmp_path: Path) -> None:
    web = 'match = { source = "web" }\nqueue = "600"\n'
    message = error(
        tmp_path, PBXES + f'[[callback_policy]]\nname = "a"\n{web}[[callback_policy]]\nname = "b"\n{web}'
    )
    assert '[[callback_policy]] "b" match.source: "a" already takes website requests' in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (Q + 'rign = "agent"', 'unknown key "rign" (did you mean "ring"?)'),
        (Q + 'pbx = "nope"', 'pbx: "nope" is not a [[pbx]] name (known: main, branch)'),
        (Q + 'match = ["sales"]', 'match: expected a table like { queues = ["sales"] }'),
        (
            'queue = "600"\nmatch = { queue = ["sales"] }',
            'match: unknown key "queue" (did you mean "queues"?)',
        ),
        (Q + 'match = { dids = "5551230000" }', "match.dids: expected a list like"),
        (Q + 'match = { dids = ["555\\n123"] }', "match.dids: expected a list like"),
        (Q + 'match = { queues = ["sales team"] }', "match.queues: expected a list like"),
        (Q + 'match = { source = "email" }', 'match.source: "email" is not "web"'),
        (Q + 'match = { source = "web", queues = ["a"] }', "match.source: website requests come"),
        (Q + "reasons = []", "reasons: expected a list from no_answer, busy, abandoned"),
        (Q + 'reasons = ["failed"]', "reasons: expected a list from no_answer"),
        (Q + "min_wait = -1", "min_wait: expected seconds, 0 to 2.592e+06 (30 days), got -1"),
        (Q + 'delay = "60"', 'delay: expected seconds, 0 to 2.592e+06 (30 days), got "60"'),
        (Q + "retry_after = 10", "retry_after: expected seconds, 60 to 2.592e+06"),
        (Q + 'timezone = "Mars/Olympus"', 'timezone: "Mars/Olympus" is not a time zone like'),
        (Q + 'timezone = "../../etc/passwd"', "timezone: "),
        (Q + 'hours = "9-5"', 'hours: expected a table like { mon = "09:00-17:00"'),
        (Q + 'hours = { monday = "09:00-17:00" }', 'hours: unknown key "monday"'),
        (Q + 'hours = { mon = "9:00-17:00" }', 'hours.mon: "9:00-17:00" is not a range like'),
        (Q + 'hours = { mon = "17:00-09:00" }', 'hours.mon: "17:00-09:00" is not a range'),
        (Q + 'hours = { mon = "09:00-24:30" }', "hours.mon: "),
        (Q + 'hours = { mon = "09:60-10:00" }', "hours.mon: "),
        (Q + "hours = { mon = 9 }", 'hours.mon: expected "09:00-17:00" or a list of such ranges'),
        (Q + 'hours = { tue = ["09:00-12:00", "11:00-13:00"] }', "hours.tue: ranges overlap"),
        (Q + "hours = { sat = [] }", "hours: every day is closed"),
        (
            'queue = "600"\nholidays = ["25.12.2026"]',
            'holidays: expected a list of dates like ["2026-12-25"]',
        ),
        (Q + "holidays = [2026-12-25T10:00:00]", "holidays: expected a list of dates"),
        (Q + 'holidays = "2026-12-25"', "holidays: expected a list of dates"),
        (Q + 'holidays = ["2026-02-30"]', "holidays: expected a list of dates"),
        (Q + "max_attempts = 0", "max_attempts: expected a number of attempts 1-10, got 0"),
        (Q + "max_attempts = 2.5", "max_attempts: expected a number of attempts 1-10, got 2.5"),
        (
            'queue = "600"\norder = "agent-first"',
            'order: "agent-first" is not one of "agent_first", "customer',
        ),
        (Q + 'ring = "everyone"', 'ring: "everyone" is not one of "queue", "agent"'),
        (Q + 'order = "customer_first"\nring = "agent"', 'ring: only for order = "agent_first"'),
        (Q + 'message = "intro"', 'message: only for order = "customer_first"'),
        ('order = "customer_first"', 'missing key "queue": the queue to connect the customer to'),
        ("", 'missing key "queue": the queue to ring'),
        ('ring = "agent"\nmatch = { source = "web" }', 'missing key "queue": the queue to ring'),
        ('queue = "600,1"', 'queue: "600,1" is not a queue name or number'),
        (Q + 'present_number = "+1 555"', 'present_number: "+1 555" is not a phone number'),
        (Q + 'present_number = "555\\r\\nAction: Command"', "present_number: "),
        ('queue = "6"\norder = "customer_first"\nmessage = "../../etc/x"', "message: "),
        ('queue = "6"\norder = "customer_first"\nmessage = "a,b"', 'message: "a,b" is not a sound file'),
        (Q + 'context = "from internal"', 'context: "from internal" is not a dialplan context'),
        (Q + 'context = "' + "c" * 49 + '"', "context: "),
    ],
)
def test_mistakes_are_one_line_naming_the_key(tmp_path: Path, body: str, expected: str) -> None:
    message = policy_error(tmp_path, body)
    assert '[[callback_policy]] #1 "p"' in message and expected in message


def test_a_policy_needs_a_pbx_to_place_its_calls(tmp_path: Path) -> None:
    message = error(tmp_path, '[[callback_policy]]\nname = "p"\nqueue = "600"\n')
    assert '[[callback_policy]] #1 "p" pbx: needs a [[pbx]] to place its calls through' in message


def test_names_are_required_and_unique(tmp_path: Path) -> None:
    twice = (
        PBXES + '[[callback_policy]]\nname = "p"\nqueue = "1"\n[[callback_policy]]\nname = "p"\nqueue = "1"\n'
    )
    assert 'a second [[callback_policy]] is "p": names must differ' in error(tmp_path, twice)
    assert 'missing key "name"' in error(tmp_path, PBXES + '[[callback_policy]]\nqueue = "1"\n')
    assert "expected [[callback_policy]] tables" in error(tmp_path, 'callback_policy = "x"\n' + PBXES)
