"""A campaign's rules without a clock or a PBX: settings checks, schedule and calling windows, retries,
the originates asked for, and outcomes read from call records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pbxlink.domain.calls import CallRecord
from pbxlink.domain.campaign import CampaignSettings, Plan, RetryRule, check_for_pbx, outcome_of, parse_days

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")


def settings(**over: object) -> CampaignSettings:
    values: dict[str, object] = {
        "name": "renewals",
        "pbx": "main",
        "mode": "broadcast",
        "timezone": "America/New_York",
        "message": "custom/renewal",
    }
    return CampaignSettings.checked(**(values | over))


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"name": "bad\nname"}, "name: must be"),
        ({"mode": "robocall"}, "mode: must be broadcast or agent_first"),
        ({"timezone": "Mars/Olympus"}, "timezone: must be"),
        ({"message": None}, "message: must be set"),
        ({"mode": "agent_first", "queue": None}, "queue: must be set"),
        ({"message": "../../etc/passwd\n"}, "message: must be a sound file name"),
        ({"caller_id": "555\r\nAction: Command"}, "caller_id: must be a phone number"),
        ({"days": "mon-funday"}, "days: must be weekdays"),
        ({"hours": "18:00-09:00"}, "hours: must be a range"),
        ({"window_start": "21:00", "window_end": "20:00"}, "window_end: must be later"),
        ({"per_minute": 0}, "per_minute: must be between"),
        ({"max_concurrent": 0}, "max_concurrent: must be between"),
        ({"retries": {"answered": RetryRule(1, 2)}}, "retries: must be rules for busy"),
        ({"retries": {"busy": RetryRule(1, 0)}}, "retries.busy: must be 1 to 20"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(over: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        settings(**over)


def test_days_read_like_cron() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("sat,sun") == frozenset({5, 6})
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})
    assert parse_days("*") == frozenset(range(7))


def test_the_schedule_opens_on_its_days_and_hours_in_its_zone() -> None:
    plan = Plan(settings(days="mon-fri", hours="09:00-17:30"))
    friday_5pm = datetime(2026, 11, 20, 17, 0, tzinfo=NEW_YORK)
    assert plan.is_open(friday_5pm)
    assert not plan.is_open(friday_5pm + timedelta(minutes=30))
    assert plan.next_open(friday_5pm + timedelta(minutes=30)) == datetime(2026, 11, 23, 9, 0, tzinfo=NEW_YORK)


def test_the_window_is_the_contacts_own_clock() -> None:
    plan = Plan(settings(window_start="09:00", window_end="20:00"))
    # 14:00 UTC: 09:00 in New York, 14:00 in London; 13:59 UTC is 08:59 in New York.
    at = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    assert plan.window_open(["America/New_York"], at)
    assert not plan.window_open(["America/New_York"], at - timedelta(minutes=1))
    assert plan.window_open(["Europe/London"], at - timedelta(minutes=1))
    assert plan.next_window(["America/New_York"], at - timedelta(hours=3)) == at


def test_a_number_spanning_zones_is_called_only_when_open_on_every_clock() -> None:
    plan = Plan(settings(window_start="09:00", window_end="20:00"))
    zones = ["America/New_York", "America/Los_Angeles"]
    ten_in_new_york = datetime(2026, 11, 23, 10, 0, tzinfo=NEW_YORK)  # 07:00 in Los Angeles
    assert not plan.window_open(zones, ten_in_new_york)
    assert plan.next_window(zones, ten_in_new_york) == datetime(2026, 11, 23, 12, 0, tzinfo=NEW_YORK)


def test_the_window_keeps_its_wall_clock_across_dst() -> None:
    plan = Plan(settings(window_start="09:00", window_end="20:00"))
    saturday_night = datetime(2026, 3, 28, 22, 0, tzinfo=LONDON)  # the clocks go forward on Sunday 01:00
    assert plan.next_window(["Europe/London"], saturday_night) == datetime(2026, 3, 29, 9, 0, tzinfo=LONDON)
    assert plan.next_window(["Europe/London"], saturday_night).astimezone(UTC).hour == 8


def test_unknown_zones_fall_back_to_the_campaigns() -> None:
    plan = Plan(settings(timezone="Europe/London"))
    at = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    assert plan.window_open(["Nowhere/Atlantis"], at) is False
    assert plan.window_open(["Nowhere/Atlantis"], at + timedelta(minutes=30))


def test_retries_follow_the_rule_of_each_outcome() -> None:
    rules = {"busy": RetryRule(10, 3), "no_answer": RetryRule(60, 2), "failed": RetryRule(5, 1)}
    plan = Plan(settings(retries=rules))
    now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert plan.retry("busy", 1, now) == now + timedelta(minutes=10)
    assert plan.retry("busy", 3, now) is None
    assert plan.retry("no_answer", 1, now) == now + timedelta(hours=1)
    assert plan.retry("no_answer", 2, now) is None
    assert plan.retry("failed", 1, now) is None
    assert plan.retry("answered", 1, now) is None


def test_a_broadcast_rings_the_contact_with_the_message_and_the_custom_columns() -> None:
    plan = Plan(settings(queue="sales", amd=True, caller_id="+12125550100"))
    tag = "0b0c6c8e-54f4-4a59-9d7e-1f1fa1a3e0d1"
    req = plan.request("+12125550123", {"DUE_DATE": "2026-12-01"}, tag)
    assert (req.endpoint, req.exten, req.context, req.tag) == (
        "+12125550123",
        "s",
        "pbxlink-campaign-broadcast",
        tag,
    )
    assert req.variables == {
        "PBXLINK_COL_DUE_DATE": "2026-12-01",
        "PBXLINK_MESSAGE": "custom/renewal",
        "PBXLINK_QUEUE": "sales",
        "PBXLINK_AMD": "1",
    }
    assert req.caller_id == "+12125550100" and req.the_tag() == tag


def test_agent_first_rings_the_queue_then_the_contact() -> None:
    plan = Plan(settings(mode="agent_first", queue="sales", message=None))
    req = plan.request("+12125550123", {}, "0b0c6c8e-54f4-4a59-9d7e-1f1fa1a3e0d1")
    assert (req.endpoint, req.exten, req.context) == ("sales", "+12125550123", "pbxlink-campaign-agent-first")
    assert req.variables == {"PBXLINK_CUSTOMER": "+12125550123"}
    assert plan.deadline(datetime(2026, 1, 1, tzinfo=UTC), 60) == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)


def test_a_tag_that_is_not_a_uuid_is_refused() -> None:
    req = Plan(settings()).request("+12125550123", {}, "x\r\nAction: Command")
    with pytest.raises(ValueError, match="not a lowercase UUID"):
        req.the_tag()


def _rec(**over: object) -> CallRecord:
    rec = CallRecord(
        pbx="main", call_id="1", direction="outbound", started_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    for key, value in over.items():
        setattr(rec, key, value)
    return rec


def test_outcomes_from_the_call_record() -> None:
    assert outcome_of(_rec(disposition="answered"), "broadcast") == "answered"
    assert outcome_of(_rec(disposition="answered", amd="machine"), "broadcast") == "machine"
    assert outcome_of(_rec(disposition="answered", amd="human"), "broadcast") == "answered"
    assert outcome_of(_rec(disposition="missed", miss_reason="busy"), "broadcast") == "busy"
    assert outcome_of(_rec(disposition="missed", miss_reason="failed"), "broadcast") == "failed"
    assert outcome_of(_rec(disposition="missed", miss_reason="no_answer"), "broadcast") == "no_answer"
    # agent first: no agent took it, the contact was never rung
    assert outcome_of(_rec(disposition="missed", miss_reason="no_answer"), "agent_first") is None
    rang = _rec(disposition="missed", miss_reason="no_answer", caller="201")
    assert outcome_of(rang, "agent_first") == "no_answer"


def test_agent_first_on_asterisk_needs_the_queues_number() -> None:
    s = settings(mode="agent_first", queue="support", message=None)
    with pytest.raises(ValueError, match="queue: must be on Asterisk, the number that reaches the queue"):
        check_for_pbx(s, "asterisk")
    assert check_for_pbx(s, "freeswitch") is s
    assert check_for_pbx(settings(mode="agent_first", queue="600", message=None), "asterisk").queue == "600"


def test_agent_first_presents_the_campaigns_caller_id_to_the_contact() -> None:
    plan = Plan(settings(mode="agent_first", queue="600", message=None, caller_id="+12125550100"))
    req = plan.request("+12125550123", {}, "0b0c6c8e-54f4-4a59-9d7e-1f1fa1a3e0d1")
    assert req.variables["PBXLINK_PRESENT"] == "+12125550100" and req.caller_id == "+12125550100"
