"""Outbound campaigns: start, pause, resume, stop; a dialler per running campaign; what each dial came to.

- The panel and `pbxlink campaign start|pause|resume|stop NAME` only change the campaign's
  status in the database; the service of every `pbxlink run`/worker notices within a second
  (`supervise`) and starts or stops its dialler thread (pbxlink.services.campaign_dialer).
- An APScheduler cron trigger per running campaign fires when its schedule opens (its days,
  at the start of its hours, in its zone): the morning start is logged and the dialler woken.
- Outcomes come from the call tracker: the bus's `CallEnded` carries the originate's tag as
  `origin`; a dial whose call never showed up is found in the call log by its tag, or
  counted failed by its deadline. A dial placed before pbxlink restarted whose call cannot
  be found at all is recorded as `unknown` and not retried: it may have rung, and nobody is
  called twice by mistake.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee as pw

from pbxlink.domain.calls import CallEnded, CallEvent, CallRecord
from pbxlink.domain.campaign import Plan, outcome_of
from pbxlink.domain.phone import PhoneNumbers, numbers
from pbxlink.domain.ports import PbxControl
from pbxlink.services.campaign_dialer import MARGIN_S, Dialer
from pbxlink.services.outbox import describe
from pbxlink.services.ticker import every
from pbxlink.storage import campaigns as store
from pbxlink.storage.calls import by_origin
from pbxlink.storage.database import drop_connection, retry_briefly
from pbxlink.storage.models import Campaign, CampaignAttempt

log = logging.getLogger(__name__)

EXECUTOR = "campaigns"
NO_AGENT_RETRY = timedelta(seconds=30)  # an agent-first dial no agent took is tried again this soon
MAX_CALL = timedelta(hours=4)
VERBS = {"start": "running", "pause": "paused", "resume": "running", "stop": "stopped"}


class CampaignService:
    """The campaigns of one pbxlink process: its diallers, and the outcomes of every dial it sees end."""

    def __init__(
        self,
        controls: Mapping[str, PbxControl],
        phones: PhoneNumbers | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_s: float = 1.0,
        margin_s: float = MARGIN_S,
        context: str = "pbxlink-campaign",
    ) -> None:
        self.controls = controls
        self.phones = phones or numbers()
        self.clock = clock
        self.poll_s = poll_s
        self.margin_s = margin_s
        self.context = context
        self.dialers: dict[int, Dialer] = {}
        self.started_at = clock()
        self._crons: dict[int, str] = {}
        self._scheduler: Any = None

    # --- what the panel and the CLI ask --------------------------------------------------------

    @staticmethod
    def command(campaign: Campaign, verb: str, now: datetime | None = None) -> str:
        """Start, pause, resume or stop `campaign`; the result in words. ValueError when it cannot."""
        to = VERBS[verb]
        if verb == "resume" and campaign.status != "paused":
            raise ValueError(f"campaign {campaign.name} is {campaign.status}, not paused: nothing to resume")
        if verb == "start" and campaign.status == "paused":
            raise ValueError(f"campaign {campaign.name} is paused: resume it")
        if not store.move(campaign.id, to, now):
            raise ValueError(f"campaign {campaign.name} is {campaign.status}: it cannot be {verb}ed")
        log.info("campaign %s: %s (was %s)", campaign.name, to, campaign.status)
        return f"campaign {campaign.name}: {to}"

    # --- what the PBX tells us -----------------------------------------------------------------

    def on_event(self, ev: CallEvent) -> None:
        """The bus handler: a campaign dial's call ended, so its contact moves on."""
        if not isinstance(ev, CallEnded) or ev.call.origin is None:
            return
        tag = ev.call.origin
        what = f"campaigns: could not record the end of call {ev.call.pbx}/{ev.call.call_id}"
        retry_briefly(lambda: self.settle(tag, ev.call), what, log)

    def settle(self, tag: str, rec: CallRecord, now: datetime | None = None) -> CampaignAttempt | None:
        """Record what dial `tag`'s call came to and when its contact is called again, if ever."""
        found = store.contact_of(tag)
        if found is None:
            return None
        campaign, contact = found
        now = now or self.clock()
        plan = Plan(store.settings_of(campaign))
        outcome = outcome_of(rec, plan.s.mode)
        if not rec.end_seen and outcome != "answered":
            # pbxlink was down when it ended: whether the phone rang, or the line was busy, is not
            # known; it may have rung, so it is not dialled again
            why = "the call ended while pbxlink was not connected: its outcome is not known"
            done = store.finish(tag, "unknown", rec, now, retry_at=None, detail=why)
        elif outcome is None:
            done = store.finish(tag, "no_agent", rec, now, retry_at=now + NO_AGENT_RETRY, counted=False)
        else:
            retry_at = plan.retry(outcome, contact.attempts, now)
            if retry_at is not None:  # and inside the contact's window
                retry_at = plan.next_window(contact.timezones.split(","), retry_at)
            done = store.finish(tag, outcome, rec, now, retry_at=retry_at)
        if done is not None:
            again = store.get_contact(contact.id)
            log.info(
                "campaign %s: %s %s (attempt %d, call %s)%s",
                campaign.name,
                contact.number,
                done.outcome,
                contact.attempts,
                rec.call_id,
                f"; again after {again.next_at:%Y-%m-%d %H:%M} UTC" if again and again.next_at else "",
            )
            store.complete_if_done(campaign.id, now)
        return done

    def follow(self, now: datetime | None = None) -> None:
        """Dials past their deadline: settled from the call log, extended while up, else failed."""
        now = now or self.clock()
        for attempt in store.open_attempts():
            if attempt.deadline > now:
                continue
            calls = by_origin(attempt.tag)
            if calls and all(c.ended_at is not None for c in calls):
                self.settle(attempt.tag, _best(calls), now)
            elif calls and now - attempt.started_at < MAX_CALL:
                store.extend(attempt.tag, now + timedelta(seconds=self.margin_s))
            elif now >= self.started_at + timedelta(seconds=self.margin_s):
                self._lost(attempt, now)

    def _lost(self, attempt: CampaignAttempt, now: datetime) -> None:
        if attempt.started_at < self.started_at:  # placed before a restart: it may have rung
            why = "pbxlink restarted while this dial was under way and no call of it was reported"
            store.finish(attempt.tag, "unknown", None, now, retry_at=None, detail=why)
            log.warning("campaign dial %s: %s; not dialled again", attempt.tag, why)
            return
        found = store.contact_of(attempt.tag)
        if found is None:
            return
        campaign, contact = found
        plan = Plan(store.settings_of(campaign))
        why = "the PBX reported no call for this dial (check the dialplan context and the trunk)"
        store.finish(
            attempt.tag, "failed", None, now, retry_at=plan.retry("failed", contact.attempts, now), detail=why
        )
        log.warning("campaign %s: %s: %s", campaign.name, contact.number, why)

    # --- the diallers ----------------------------------------------------------------------------

    def supervise(self) -> None:
        """A dialler for each running campaign, none for the others; cron wake-ups for their schedules."""
        self.follow()
        running = {c.id: c for c in store.running()}
        for cid, dialer in list(self.dialers.items()):
            if not dialer.is_alive():
                del self.dialers[cid]
        for cid, c in running.items():
            if cid not in self.dialers:
                self._wake(cid)
            self._cron(c)
        for cid in [cid for cid in self._crons if cid not in running]:
            self._unschedule(cid)

    def _wake(self, campaign_id: int) -> None:
        if campaign_id in self.dialers and self.dialers[campaign_id].is_alive():
            return
        dialer = Dialer(
            campaign_id,
            self.controls,
            self.phones,
            clock=self.clock,
            margin_s=self.margin_s,
            context=self.context,
        )
        self.dialers[campaign_id] = dialer
        dialer.start()

    def _cron(self, c: Campaign) -> None:
        """The campaign's opening as an APScheduler cron trigger (replaced when the schedule changes)."""
        if self._scheduler is None:
            return
        from apscheduler.triggers.cron import CronTrigger

        key = f"{c.days}|{c.hours}|{c.timezone}"
        if self._crons.get(c.id) == key:
            return
        start = c.hours.split("-", 1)[0]
        trigger = CronTrigger(
            day_of_week=c.days, hour=int(start[:2]), minute=int(start[3:5]), timezone=c.timezone
        )
        self._scheduler.add_job(
            self._opened,
            trigger,
            args=[c.id],
            id=f"campaign-{c.id}",
            replace_existing=True,
            executor=EXECUTOR,
        )
        self._crons[c.id] = key

    def _unschedule(self, campaign_id: int) -> None:
        self._crons.pop(campaign_id, None)
        if self._scheduler is not None:
            with contextlib.suppress(LookupError):  # JobLookupError: already gone
                self._scheduler.remove_job(f"campaign-{campaign_id}")

    def _opened(self, campaign_id: int) -> None:
        c = store.get(campaign_id)
        if c is not None and c.status == "running":
            log.info("campaign %s: its hours open (%s %s, %s): dialling", c.name, c.days, c.hours, c.timezone)
            self._wake(campaign_id)

    def start(self) -> None:
        """Supervise every `poll_s` from now on (not at once: the PBX links are still coming up)."""
        self.started_at = self.clock()
        self._scheduler = every(EXECUTOR, self.poll_s, self._tick)

    def stop(self) -> None:
        """Stop the diallers (a dial under way finishes recording itself first) and the scheduler."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        for dialer in self.dialers.values():
            dialer.halt()
        for dialer in self.dialers.values():
            dialer.join(timeout=5)
        self.dialers.clear()

    def _tick(self) -> None:
        try:
            self.supervise()
        except pw.PeeweeException as exc:
            log.warning(
                "campaigns: cannot read the campaigns: %s; trying again in %g s", describe(exc), self.poll_s
            )
            drop_connection()
        except Exception:  # a bug must not stop the campaigns for good: say so, and carry on
            log.exception("campaigns: unexpected error; carrying on in %g s", self.poll_s)


def _best(calls: list[CallRecord]) -> CallRecord:
    """Of the calls a dial made, the one that says most: an answered one, else the last."""
    return next((c for c in calls if c.disposition == "answered"), calls[-1])
