"""Callback-on-miss and "call me back" from the website: what happens to a missed call.

- A missed inbound call that a `[[callback_policy]]` covers becomes one pending callback,
  due after the policy's delay, at an opening (`on_event`). One per customer and policy:
  the same customer missing us again keeps the callback already waiting.
- The customer reached another way (they call again and an agent answers, or an agent calls
  them and they answer) cancels their open callbacks, saying why.
- Every few seconds (an APScheduler job that only wakes this service; the state is in the
  tables) `run_due` places what is due through the policy's PBX, and follows the attempts
  under way (pbxlink.services.callback_attempts). Claims are atomic in the database, so
  several workers, or a restarted one, never place the same attempt twice.
- `request_from_web` checks a website visitor's number and name and schedules their callback
  under the website's policy.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee as pw

from pbxlink.config import Config
from pbxlink.domain.callback_policy import CallbackPolicy, match_policy
from pbxlink.domain.calls import CallEnded, CallEvent, CallRecord, CallRinging
from pbxlink.domain.phone import PhoneNumbers, numbers
from pbxlink.domain.ports import PbxControl
from pbxlink.services.callback_attempts import Attempts, when
from pbxlink.services.callback_input import web_name, web_number
from pbxlink.services.crm_sync import customer_number
from pbxlink.services.outbox import describe
from pbxlink.services.ticker import every
from pbxlink.storage import callbacks as store
from pbxlink.storage.database import drop_connection, retry_briefly
from pbxlink.storage.models import Callback

log = logging.getLogger(__name__)

MAX_AHEAD = timedelta(days=30)  # a website visitor may ask for a time this far ahead at most
MAX_RUNG = 10_000  # calls whose last rung agent is remembered until they end
EXECUTOR = "callbacks"


class CallbackService:
    """Schedules, places and follows callbacks; `policies` in the config's order (the first match wins)."""

    def __init__(
        self,
        policies: Sequence[CallbackPolicy],
        controls: Mapping[str, PbxControl],
        phones: PhoneNumbers | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_s: float = 5.0,
        lease_s: float = 60.0,
        batch: int = 20,
        margin_s: float = 60.0,
    ) -> None:
        self.policies = {p.name: p for p in policies}
        self.web_policy = next((p for p in policies if p.web), None)
        self.phones = phones or numbers()
        self.clock = clock
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.batch = batch
        self.attempts = Attempts(self.policies, controls, margin_s=margin_s, clock=clock)
        self._rung: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._scheduler: Any = None

    @classmethod
    def from_config(cls, cfg: Config, controls: Mapping[str, PbxControl]) -> CallbackService:
        """The service for `cfg`'s `[[callback_policy]]` tables, placing calls through `controls` (by PBX)."""
        phones = numbers()
        return cls([CallbackPolicy(p, phones) for p in cfg.callback_policies], controls, phones)

    # --- what the PBX tells us ---------------------------------------------------------------

    def on_event(self, ev: CallEvent) -> None:
        """The bus handler: missed calls schedule, attempts' calls settle, a reached customer cancels."""
        key = (ev.call.pbx, ev.call.call_id)
        if isinstance(ev, CallRinging):
            self._rung[key] = ev.agent
            self._rung.move_to_end(key)
            while len(self._rung) > MAX_RUNG:
                self._rung.popitem(last=False)
            return
        if not isinstance(ev, CallEnded):
            return
        rung = self._rung.pop(key, None)
        # Everything below is idempotent (a replayed end changes nothing), so a database blip is retried.
        what = f"callbacks: could not handle the end of call {ev.call.pbx}/{ev.call.call_id}"
        retry_briefly(lambda: self._ended(ev.call, rung), what, log)

    def _ended(self, rec: CallRecord, rung: str | None) -> None:
        own = None
        if rec.origin is not None and (own := store.by_tag(rec.origin)) is not None:
            self.attempts.ended(rec.origin, rec)
        if rec.disposition == "answered":
            self._reached(rec, own)
        elif rec.origin is None and (policy := match_policy(self.policies.values(), rec)):
            self._schedule_missed(policy, rec, rec.agent or rung)

    def _schedule_missed(self, policy: CallbackPolicy, rec: CallRecord, agent: str | None) -> None:
        s = policy.settings
        ended = rec.ended_at or rec.started_at
        due = policy.next_open(ended + timedelta(seconds=s.delay))
        cb, created = store.schedule(
            s.name,
            s.pbx,
            rec.caller or "",
            source="missed_call",
            due_at=due,
            missed_call=f"{rec.pbx}:{rec.call_id}",
            queue=rec.queue or rec.callee,
            agent=agent,
            now=self.clock(),
        )
        if created:
            log.info(
                "missed call %s/%s from %s (%s): callback #%d scheduled under policy %s for %s",
                rec.pbx,
                rec.call_id,
                cb.number,
                rec.miss_reason,
                cb.id,
                s.name,
                when(due),
            )
        else:
            log.info(
                "missed call %s/%s from %s: callback #%d already %s under policy %s",
                rec.pbx,
                rec.call_id,
                cb.number,
                cb.id,
                cb.status,
                s.name,
            )

    def _reached(self, rec: CallRecord, own: Callback | None) -> None:
        """The customer talked to us: their other open callbacks are not needed any more."""
        key = self.phones.key(customer_number(rec))
        if key is None:
            return
        agent = rec.agents[-1] if rec.agents else rec.agent
        if own is not None:
            reason = f"reached by callback #{own.id}"
        elif rec.direction == "inbound":
            reason = f"called again, answered by {agent}" if agent else "called again and was answered"
        else:
            reason = (
                f"reached by agent {agent} on an outbound call" if agent else "reached on an outbound call"
            )
        ended = rec.ended_at or rec.started_at
        for cb in store.open_for(key):
            if (own is not None and cb.id == own.id) or cb.created_at > ended:
                continue  # its own attempt settles it; a call that ended before it existed is a replay
            if store.cancel(cb.id, reason, store.SYSTEM, now=self.clock()):
                log.info("callback #%d to %s cancelled: %s (call %s)", cb.id, cb.number, reason, rec.call_id)

    # --- the website -------------------------------------------------------------------------

    def request_from_web(
        self, number: str, name: str | None, preferred_at: datetime | None
    ) -> tuple[Callback, bool]:
        """Schedule a website visitor's callback: (the open callback for that number, created?).

        Raises ValueError with a message fit for the visitor for a bad number, name or time;
        RuntimeError when no policy takes website requests. A naive `preferred_at` is the
        business's local time (the policy's zone).
        """
        policy = self.web_policy
        if policy is None:
            raise RuntimeError('no [[callback_policy]] takes website requests (match = { source = "web" })')
        dial, clean = web_number(number, self.phones), web_name(name)
        now = self.clock()
        at = now
        if preferred_at is not None:
            wanted = preferred_at if preferred_at.tzinfo else preferred_at.replace(tzinfo=policy.zone)
            if wanted - now > MAX_AHEAD:
                raise ValueError(f"the preferred time is more than {MAX_AHEAD.days} days ahead")
            at = max(now, wanted.astimezone(UTC))
        s = policy.settings
        cb, created = store.schedule(
            s.name, s.pbx, dial, source="web", due_at=policy.next_open(at), name=clean, queue=s.queue, now=now
        )
        if created:
            log.info("website request: callback #%d to %s scheduled for %s", cb.id, dial, when(cb.due_at))
        return cb, created

    # --- placing what is due -----------------------------------------------------------------

    def run_due(self, now: datetime | None = None) -> int:
        """Follow the attempts under way, then place the callbacks due by `now`; how many calls went out."""
        now = now or self.clock()
        self.follow(now)
        return sum(
            self._each(self.attempts.place, cb, now) for cb in store.claim_due(now, self.lease_s, self.batch)
        )

    def follow(self, now: datetime | None = None) -> None:
        """Move on the attempts under way whose outcome is known (from the bus, or the call log)."""
        now = now or self.clock()
        for cb in store.in_progress():
            self._each(self.attempts.check, cb, now)

    @staticmethod
    def _each(step: Callable[[Callback, datetime], bool | None], cb: Callback, now: datetime) -> bool:
        """One callback's step; a bug in it must not hold up the others (the database's errors go up)."""
        try:
            return bool(step(cb, now))
        except pw.PeeweeException:
            raise
        except Exception:
            log.exception("callback #%d: unexpected error; it is looked at again at the next scan", cb.id)
            return False

    def start(self) -> None:
        """Settle now what a previous run left in progress (from the call log); place what is due every
        poll_s from then on (not at once: the PBX links are still coming up, an originate would fail)."""
        self.attempts.patient_until = self.clock() + timedelta(seconds=self.attempts.margin_s)
        self._guarded(self.follow)
        self._scheduler = every(EXECUTOR, self.poll_s, self._tick)

    def stop(self) -> None:
        """Stop scanning, after the scan running now (its attempts are recorded before it returns)."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)

    def _tick(self) -> None:
        self._guarded(self.run_due)

    def _guarded(self, step: Callable[[], object]) -> None:
        try:
            step()
        except pw.PeeweeException as exc:
            log.warning(
                "callbacks: cannot read the callbacks table: %s; trying again in %g s (is the database up?)",
                describe(exc),
                self.poll_s,
            )
            drop_connection()
        except Exception:  # a bug must not stop callbacks for good: say so, and carry on
            log.exception("callbacks: unexpected error; carrying on in %g s", self.poll_s)
