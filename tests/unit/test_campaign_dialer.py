"""The dialler and the campaign service on a real database (SQLite and PostgreSQL), a fake PBX that records
every originate, and a clock the tests move: pacing, windows, the do-not-call list, outcomes and retries,
restarts, and two workers sharing one campaign."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pbxlink.domain.calls import CallEnded, CallRecord
from pbxlink.domain.campaign import CampaignSettings, RetryRule
from pbxlink.domain.phone import numbers
from pbxlink.domain.ports import OriginateHandle, OriginateRequest
from pbxlink.services.campaign_dialer import FULL_S, Dialer
from pbxlink.services.campaigns import CampaignService
from pbxlink.storage import campaigns as store
from pbxlink.storage import dnc
from pbxlink.storage.calls import record_from_row, save_call
from pbxlink.storage.campaign_reports import export_rows, progress
from pbxlink.storage.models import Call, Campaign, CampaignAttempt, CampaignContact
from tests.unit.test_storage import db, pg_server  # noqa: F401  (fixtures: each test runs on both)

pytestmark = pytest.mark.usefixtures("db")

# Monday 23 November 2026, 15:00 UTC: 10:00 in New York, 15:00 in London
MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
NY = "+12125550100"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class FakePbx:
    """A PbxControl that records every originate; it can be told to refuse."""

    name = "main"

    def __init__(self) -> None:
        self.originates: list[OriginateRequest] = []
        self.refuse: Exception | None = None

    def originate(self, req: OriginateRequest) -> OriginateHandle:
        if self.refuse is not None:
            raise self.refuse
        self.originates.append(req)
        return OriginateHandle(pbx=self.name, tag=req.the_tag())

    def hangup(self, call_id: str) -> None:
        raise AssertionError("campaigns never hang up")

    def dialled(self) -> list[str]:
        return [r.endpoint for r in self.originates]


def campaign(status: str = "running", **over: object) -> Campaign:
    values: dict[str, object] = {
        "name": "renewals",
        "pbx": "main",
        "mode": "broadcast",
        "timezone": "America/New_York",
        "message": "custom/renewal",
        "days": "*",
        "hours": "00:00-24:00",
        "per_minute": 60.0,
        "max_concurrent": 10,
    }
    c = store.create(CampaignSettings.checked(**(values | over)), "manager")
    Campaign.update(status=status).where(Campaign.id == c.id).execute()
    return Campaign.get_by_id(c.id)


def add(c: Campaign, *numbers_: str, zones: str = "America/New_York", **fields: str) -> list[CampaignContact]:
    phones = numbers()
    return [
        CampaignContact.create(
            campaign=c.id,
            number=n,
            number_key=phones.key(n),
            timezones=zones,
            fields=json.dumps(fields),
            row=i + 2,
        )
        for i, n in enumerate(numbers_)
    ]


def ended(tag: str, call_id: str, at: datetime, **over: object) -> CallRecord:
    rec = CallRecord(
        pbx="main", call_id=call_id, direction="outbound", started_at=at - timedelta(seconds=20), ended_at=at
    )
    rec.origin = tag
    for key, value in over.items():
        setattr(rec, key, value)
    save_call(rec)
    return rec


def finish(service: CampaignService, tag: str, call_id: str, **over: object) -> None:
    """The bus brings the end of dial `tag`'s call (stored in the call log as the adapters do)."""
    now = service.clock()
    service.on_event(CallEnded(at=now, call=ended(tag, call_id, now, **over)))


def dialer(c: Campaign, pbx: FakePbx, clock: Clock) -> Dialer:
    return Dialer(c.id, {"main": pbx}, numbers(), clock=clock)


def run_for(d: Dialer, clock: Clock, seconds: float, step: float = 0.05) -> None:
    end = clock.now + timedelta(seconds=seconds)
    while clock.now < end:
        wait = d.turn()
        assert wait is not None
        clock.tick(max(step, min(wait, 1.0)) if wait > 0 else 0.0)


def test_the_pace_is_one_call_per_interval() -> None:
    c = campaign(per_minute=60, max_concurrent=100)
    add(c, *[f"+1212555{i:04d}" for i in range(100)])
    clock, pbx = Clock(MONDAY), FakePbx()
    run_for(dialer(c, pbx, clock), clock, 30)
    assert 30 <= len(pbx.originates) <= 31
    starts = [a.started_at for a in CampaignAttempt.select().order_by(CampaignAttempt.id)]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 1.0 - 1e-6


def test_no_more_calls_than_max_concurrent() -> None:
    c = campaign(per_minute=600, max_concurrent=3)
    add(c, *[f"+1212555{i:04d}" for i in range(10)])
    clock, pbx = Clock(MONDAY), FakePbx()
    d = dialer(c, pbx, clock)
    run_for(d, clock, 5)
    assert len(pbx.originates) == 3 and store.in_flight(c.id) == 3
    assert d.turn() == FULL_S
    ended(pbx.originates[0].tag or "", "c1", clock.now, disposition="answered", answered_at=clock.now)
    CampaignService({"main": pbx}, clock=clock).settle(pbx.originates[0].tag or "", store_call("c1"))
    run_for(d, clock, 1)
    assert len(pbx.originates) == 4


def store_call(call_id: str) -> CallRecord:
    return record_from_row(Call.get(Call.call_id == call_id))


def test_nobody_is_called_outside_their_own_window() -> None:
    c = campaign(window_start="09:00", window_end="20:00")
    early = MONDAY.replace(hour=13, minute=30)  # 08:30 in New York, 13:30 in London
    (ny,) = add(c, NY)
    (uk,) = add(c, "+442071838750", zones="Europe/London")
    clock, pbx = Clock(early), FakePbx()
    run_for(dialer(c, pbx, clock), clock, 10)
    assert pbx.dialled() == ["+442071838750"]
    assert CampaignContact.get_by_id(ny.id).next_at == MONDAY.replace(hour=14, minute=0)
    clock.now = MONDAY.replace(hour=14, minute=0)
    run_for(dialer(c, pbx, clock), clock, 2)
    assert pbx.dialled() == ["+442071838750", NY]
    del uk


def test_the_schedule_holds_the_dialler_until_it_opens() -> None:
    c = campaign(days="mon-fri", hours="11:00-17:00")  # New York time: opens at 16:00 UTC
    add(c, NY)
    clock, pbx = Clock(MONDAY), FakePbx()
    d = dialer(c, pbx, clock)
    assert d.turn() == 60.0 and pbx.originates == []
    clock.now = MONDAY.replace(hour=16)
    d.turn()
    assert pbx.dialled() == [NY]


def test_a_number_put_on_the_do_not_call_list_after_the_import_is_never_dialled() -> None:
    c = campaign()
    blocked, free = add(c, "+12125550111", "+12125550122")
    dnc.add("(212) 555-0111", "asked on the phone", "supervisor")
    clock, pbx = Clock(MONDAY), FakePbx()
    run_for(dialer(c, pbx, clock), clock, 5)
    assert pbx.dialled() == ["+12125550122"]
    assert CampaignContact.get_by_id(blocked.id).status == "dnc"
    del free


def test_outcomes_move_contacts_on_by_the_rules_and_the_campaign_completes() -> None:
    rules = {"busy": RetryRule(10, 2), "no_answer": RetryRule(60, 1)}
    c = campaign(retries=rules)
    a, b, k = add(c, "+12125550111", "+12125550122", "+12125550133")
    clock, pbx = Clock(MONDAY), FakePbx()
    d, service = dialer(c, pbx, clock), CampaignService({"main": pbx}, clock=clock)
    run_for(d, clock, 4)
    tags = {r.endpoint: r.tag or "" for r in pbx.originates}
    finish(service, tags[a.number], "1", disposition="answered", answered_at=clock.now, talk_seconds=42.0)
    finish(service, tags[b.number], "2", disposition="missed", miss_reason="busy")
    finish(service, tags[k.number], "3", disposition="missed", miss_reason="no_answer")
    assert [CampaignContact.get_by_id(x.id).status for x in (a, b, k)] == ["done", "pending", "done"]
    assert CampaignContact.get_by_id(b.id).next_at == clock.now + timedelta(minutes=10)
    run_for(d, clock, 5)
    assert len(pbx.originates) == 3  # the busy one waits its ten minutes
    clock.tick(600)
    run_for(d, clock, 2)
    assert pbx.dialled()[-1] == b.number
    finish(service, pbx.originates[-1].tag or "", "4", disposition="missed", miss_reason="busy")
    assert CampaignContact.get_by_id(b.id).status == "done"  # two busy dials: the rule's maximum
    assert d.turn() is None and Campaign.get_by_id(c.id).status == "completed"
    report = progress(Campaign.get_by_id(c.id), clock.now)
    counts = [report[k] for k in ("dialled", "answered", "busy", "no_answer", "remaining")]
    assert counts == [4, 1, 2, 1, 0]
    assert report["answer_rate"] == 0.25 and report["average_talk_seconds"] == 42.0


def test_a_replayed_end_changes_nothing() -> None:
    c = campaign()
    add(c, NY)
    clock, pbx = Clock(MONDAY), FakePbx()
    run_for(dialer(c, pbx, clock), clock, 1)
    service = CampaignService({"main": pbx}, clock=clock)
    rec = ended(pbx.originates[0].tag or "", "1", clock.now, disposition="answered", answered_at=clock.now)
    assert service.settle(rec.origin or "", rec) is not None
    assert service.settle(rec.origin or "", rec) is None
    assert CampaignAttempt.select().count() == 1


def test_a_dial_whose_call_never_shows_up_fails_and_is_retried_by_the_rule() -> None:
    c = campaign(retries={"failed": RetryRule(30, 2)})
    (k,) = add(c, NY)
    clock, pbx = Clock(MONDAY), FakePbx()
    service = CampaignService({"main": pbx}, clock=clock)
    run_for(dialer(c, pbx, clock), clock, 1)
    clock.tick(30 + 60 + 1)
    service.follow()
    attempt = CampaignAttempt.get()
    assert attempt.outcome == "failed" and "no call" in attempt.detail
    assert CampaignContact.get_by_id(k.id).next_at == clock.now + timedelta(minutes=30)


def test_after_a_restart_a_dial_that_left_no_trace_is_never_dialled_again() -> None:
    c = campaign()
    (k,) = add(c, NY)
    clock, pbx = Clock(MONDAY), FakePbx()
    run_for(dialer(c, pbx, clock), clock, 1)  # then pbxlink is killed
    clock.tick(300)
    restarted = CampaignService({"main": pbx}, clock=clock)  # started_at: now
    restarted.follow()
    assert CampaignAttempt.get().outcome is None  # the adapters' resync gets its margin first
    clock.tick(61)
    restarted.follow()
    assert CampaignAttempt.get().outcome == "unknown"
    assert CampaignContact.get_by_id(k.id).status == "done"
    assert dialer(c, pbx, clock).turn() is None  # nobody left: the campaign is completed
    assert pbx.dialled() == [NY] and Campaign.get_by_id(c.id).status == "completed"


def test_after_a_restart_a_dial_whose_call_ended_meanwhile_is_settled_from_the_call_log() -> None:
    c = campaign()
    (k,) = add(c, NY)
    clock, pbx = Clock(MONDAY), FakePbx()
    run_for(dialer(c, pbx, clock), clock, 1)
    ended(pbx.originates[0].tag or "", "9", clock.tick(40), disposition="answered", answered_at=clock.now)
    clock.tick(120)
    CampaignService({"main": pbx}, clock=clock).follow()
    assert CampaignAttempt.get().outcome == "answered" and CampaignContact.get_by_id(k.id).status == "done"


def test_two_workers_share_the_pace_and_never_dial_a_contact_twice() -> None:
    c = campaign(per_minute=120, max_concurrent=100)
    add(c, *[f"+1212555{i:04d}" for i in range(40)])
    clock, pbx = Clock(MONDAY), FakePbx()
    first, second = dialer(c, pbx, clock), dialer(c, pbx, clock)
    end = clock.now + timedelta(seconds=10)
    while clock.now < end:
        first.turn()
        second.turn()
        clock.tick(0.05)
    assert 20 <= len(pbx.originates) <= 21  # 120 a minute for 10 s, not twice that
    assert len(set(pbx.dialled())) == len(pbx.originates)


def test_a_contact_is_claimed_once() -> None:
    c = campaign()
    (k,) = add(c, NY)
    first = store.claim(k, str(uuid.uuid4()), MONDAY, MONDAY + timedelta(minutes=2))
    second = store.claim(k, str(uuid.uuid4()), MONDAY, MONDAY + timedelta(minutes=2))
    assert first is not None and second is None


def test_a_refusing_pbx_fails_the_dial_and_a_bad_value_never_reaches_it() -> None:
    c = campaign(retries={"failed": RetryRule(5, 3)})
    good, bad = add(c, "+12125550111", "+12125550122")
    CampaignContact.update(fields=json.dumps({"bad key": "x"})).where(CampaignContact.id == bad.id).execute()
    clock, pbx = Clock(MONDAY), FakePbx()
    pbx.refuse = RuntimeError("AMI main: Originate refused: link down")
    run_for(dialer(c, pbx, clock), clock, 3)
    attempts = {a.contact_id: a for a in CampaignAttempt.select()}
    assert "the PBX did not take the call" in attempts[good.id].detail
    assert CampaignContact.get_by_id(good.id).status == "pending"  # tried again in 5 minutes
    assert "cannot be dialled" in attempts[bad.id].detail
    assert CampaignContact.get_by_id(bad.id).status == "done"


def test_pause_stop_and_resume() -> None:
    c = campaign(status="draft")
    add(c, NY, "+12125550122")
    assert CampaignService.command(c, "start") == "campaign renewals: running"
    with pytest.raises(ValueError, match="nothing to resume"):
        CampaignService.command(Campaign.get_by_id(c.id), "resume")
    CampaignService.command(Campaign.get_by_id(c.id), "pause")
    clock, pbx = Clock(MONDAY), FakePbx()
    assert dialer(c, pbx, clock).turn() is None and pbx.originates == []
    CampaignService.command(Campaign.get_by_id(c.id), "resume")
    run_for(dialer(c, pbx, clock), clock, 1)
    CampaignService.command(Campaign.get_by_id(c.id), "stop")
    assert [k.status for k in CampaignContact.select().order_by(CampaignContact.id)] == ["dialing", "stopped"]
    with pytest.raises(ValueError, match="cannot be started"):
        CampaignService.command(Campaign.get_by_id(c.id), "start")


def test_the_export_lists_every_dial_with_the_custom_columns() -> None:
    c = campaign()
    add(c, NY, DUE="2026-12-01", NOTE="=HYPERLINK(1)")
    add(c, "+12125550122", DUE="2027-01-01", NOTE="")
    clock, pbx = Clock(MONDAY), FakePbx()
    run_for(dialer(c, pbx, clock), clock, 0.5)
    rows = list(export_rows(c))
    assert rows[0][-2:] == ["DUE", "NOTE"]
    assert [r[1] for r in rows[1:]] == [NY, "+12125550122"]
    assert rows[1][7] == 1 and rows[2][7] is None  # the second contact was not dialled yet
    assert rows[1][-1] == "=HYPERLINK(1)"  # raw here: the CSV writer neutralises it


def test_a_call_that_ended_while_pbxlink_was_down_is_not_dialled_again_unless_known_answered() -> None:
    c = campaign(retries={"no_answer": RetryRule(1, 3)})
    rang, talked = add(c, "+12125550111", "+12125550122")
    clock, pbx = Clock(MONDAY), FakePbx()
    run_for(dialer(c, pbx, clock), clock, 1.5)
    service = CampaignService({"main": pbx}, clock=clock)
    tags = {r.endpoint: r.tag or "" for r in pbx.originates}
    finish(service, tags[rang.number], "1", disposition="missed", miss_reason="no_answer", end_seen=False)
    finish(service, tags[talked.number], "2", disposition="answered", answered_at=clock.now, end_seen=False)
    outcomes = {a.contact_id: (a.outcome, a.detail) for a in CampaignAttempt.select()}
    assert outcomes[rang.id] == (
        "unknown",
        "the call ended while pbxlink was not connected: its outcome is not known",
    )
    assert outcomes[talked.id][0] == "answered"
    assert {k.status for k in CampaignContact.select()} == {"done"}


def test_a_campaign_whose_pbx_left_the_config_pauses_instead_of_failing_everyone() -> None:
    c = campaign(pbx="old-pbx")
    add(c, NY)
    clock, pbx = Clock(MONDAY), FakePbx()
    assert dialer(c, pbx, clock).turn() is None
    assert Campaign.get_by_id(c.id).status == "paused" and CampaignAttempt.select().count() == 0
    assert CampaignContact.get().status == "pending"


def test_a_running_campaign_gets_a_cron_trigger_at_its_opening_and_loses_it_when_it_stops() -> None:
    c = campaign(days="mon-fri", hours="09:30-17:00", timezone="Europe/Berlin")
    service = CampaignService({"main": FakePbx()}, poll_s=3600)
    service.start()
    try:
        service._cron(c)  # what supervise does for each running campaign (it also starts the dialler)
        job = service._scheduler.get_job(f"campaign-{c.id}")
        opening = job.trigger.get_next_fire_time(
            None, datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
        )  # a Saturday
        assert opening == datetime(2026, 11, 23, 9, 30, tzinfo=ZoneInfo("Europe/Berlin"))
        service._unschedule(c.id)  # what supervise does once it is not running
        assert service._scheduler.get_job(f"campaign-{c.id}") is None
    finally:
        service.stop()
