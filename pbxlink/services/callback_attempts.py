"""Placing callback attempts and learning what came of them: a restart neither repeats nor forgets one.

An attempt goes: claimed (in_progress, no tag, leased) → originated → its tag recorded at
once → its call ends (the bus says so, or the call log does after a restart, via
Call.origin) → settled: done, failed, or pending again at the policy's next try. When a
step is cut short, the next scan finds where it stopped:

- claimed, no tag, lease run out: the worker stopped between the originate and recording
  its tag; whether the PBX placed the call is unknown, so the attempt counts as failed and
  the next one waits `retry_after` like any other (never an immediate second call);
- tagged, no outcome: the call log is asked; a call still up extends the wait, no call at
  all by the deadline (ring time + margin) counts as failed;
- outcome recorded, not settled: settled now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import peewee as pw

from pbxlink.domain.callback_policy import CallbackPolicy, Outcome, outcome_of
from pbxlink.domain.calls import CallRecord
from pbxlink.domain.ports import PbxControl
from pbxlink.services.outbox import describe
from pbxlink.storage import callbacks as store
from pbxlink.storage.calls import by_origin
from pbxlink.storage.database import retry_briefly
from pbxlink.storage.models import Callback

log = logging.getLogger(__name__)

WORDS = {"answered": "answered", "no_answer": "no answer", "busy": "busy", "failed": "failed"}
SCHEDULER = "scheduler"


class Attempts:
    """The attempt side of the callback service: `place` a claimed callback, `check` one in progress."""

    def __init__(
        self,
        policies: Mapping[str, CallbackPolicy],
        controls: Mapping[str, PbxControl],
        *,
        margin_s: float = 60.0,
        max_call_s: float = 4 * 3600.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.policies = policies
        self.controls = controls
        self.margin_s = margin_s
        self.max_call_s = max_call_s
        self.clock = clock
        #: no attempt counts as unreported before this: after a start, the adapters' resync may still
        #: bring the calls that went on while pbxlink was down into the call log
        self.patient_until: datetime | None = None

    def place(self, cb: Callback, now: datetime) -> bool:
        """Originate the claimed callback's next attempt and record its tag; whether a call went out."""
        policy, control = self.policies.get(cb.policy), self.controls.get(cb.pbx)
        by = store.requested_by(cb) or SCHEDULER
        if policy is None or control is None:
            missing = f'policy "{cb.policy}"' if policy is None else f'PBX "{cb.pbx}"'
            return self._unplaced(cb, now, by, f"{missing} is not configured (any more)", final=True)
        if by == SCHEDULER and not policy.is_open(now):  # hours changed since it was scheduled
            store.unclaim(cb, policy.next_open(now), now)
            return False
        try:
            req = policy.attempt_request(cb.number, agent=cb.agent)
            handle = control.originate(req)
        except ValueError as exc:  # refused before the wire: no retry can fix it
            return self._unplaced(cb, now, by, f"cannot be dialled: {exc}", final=True)
        except Exception as exc:  # the link is down, the PBX said no: another attempt may work
            return self._unplaced(cb, now, by, f"the PBX did not take the call: {describe(exc)}")
        deadline = now + timedelta(seconds=req.timeout_s + self.margin_s)
        self._record_start(cb, handle.tag, by, now, deadline)
        log.info(
            "callback #%d to %s (policy %s): attempt %d placed on %s (tag %s, by %s)",
            cb.id,
            cb.number,
            cb.policy,
            cb.attempts + 1,
            cb.pbx,
            handle.tag,
            by,
        )
        return True

    def _record_start(self, cb: Callback, tag: str, by: str, now: datetime, deadline: datetime) -> None:
        """Record the tag before anything else: a lost one would make the call unaccountable."""
        what = f"callback #{cb.id}: could not record attempt {tag}"
        try:
            started = retry_briefly(
                lambda: store.start_attempt(cb, tag, by, now=now, deadline=deadline), what, log
            )
        except (pw.OperationalError, pw.InterfaceError) as exc:
            log.error(
                "callback #%d: attempt %s was placed but cannot be recorded (%s); it counts as "
                "failed once its lease runs out and is retried per its policy: check the database",
                cb.id,
                tag,
                describe(exc),
            )
            return
        if not started:
            log.info("callback #%d: cancelled while attempt %s was placed; its call is kept", cb.id, tag)

    def _unplaced(self, cb: Callback, now: datetime, by: str, why: str, *, final: bool = False) -> bool:
        lost = store.unplaced(cb, by, now)
        if lost is not None:
            self.settle(lost, "failed", now, why, final=final)
        return False

    def check(self, cb: Callback, now: datetime) -> None:
        """Move an in-progress callback on if what it waits for is known (see the module's docstring)."""
        if cb.tag is None:
            if cb.claimed_until is not None and cb.claimed_until < now:
                why = "pbxlink stopped while placing this attempt; whether the call went out is unknown"
                self._unplaced(cb, now, SCHEDULER, why)
            return
        attempt = store.attempt_of(cb.tag)
        if attempt is None:
            return
        if attempt.outcome is not None:  # ended before a stop, never settled
            self.settle(cb, attempt.outcome, now)
            return
        calls = by_origin(cb.tag)
        if calls and all(c.ended_at is not None for c in calls):
            self.ended(cb.tag, _best(calls))
            return
        if cb.claimed_until is None or cb.claimed_until >= now or now < (self.patient_until or now):
            return
        if calls and now - attempt.started_at < timedelta(seconds=self.max_call_s):
            store.extend(cb, now + timedelta(seconds=self.margin_s))  # still talking: wait on
            return
        finished = store.finish_attempt(cb.tag, "failed", None, now)
        if finished is not None and finished.tag == cb.tag:
            why = "its call never ended" if calls else "the PBX reported no call for it"
            self.settle(finished, "failed", now, why)

    def ended(self, tag: str, rec: CallRecord) -> Callback | None:
        """The call of the attempt `tag` ended: record its outcome (once) and settle the callback."""
        now = self.clock()
        outcome = outcome_of(rec)
        finished = store.finish_attempt(tag, outcome, rec.call_id, now)
        if finished is not None and finished.tag == tag:
            self.settle(finished, outcome, now)
        return finished

    def settle(
        self,
        cb: Callback,
        outcome: Outcome | str,
        now: datetime,
        why: str | None = None,
        *,
        final: bool = False,
    ) -> None:
        """Done, failed after the last attempt, or pending again at the policy's next try."""
        policy = self.policies.get(cb.policy)
        n, what = cb.attempts, WORDS.get(outcome, outcome) + (f" ({why})" if why else "")
        if outcome == "answered":
            if store.settle(cb, status="done", now=now):
                log.info("callback #%d to %s: answered on attempt %d, done", cb.id, cb.number, n)
            return
        if final or policy is None or n >= policy.settings.max_attempts:
            reason = f"attempt {n}: {what}" if final else f"{n} attempt(s) without an answer; last: {what}"
            if store.settle(cb, status="failed", now=now, reason=reason):
                log.warning(
                    "callback #%d to %s (policy %s) failed: %s; the panel's Callbacks page can call again",
                    cb.id,
                    cb.number,
                    cb.policy,
                    reason,
                )
            return
        due = policy.next_open(now + timedelta(seconds=policy.settings.retry_after))
        reason = f"attempt {n} of {policy.settings.max_attempts}: {what}"
        if store.settle(cb, status="pending", now=now, due_at=due, reason=reason):
            log.info("callback #%d to %s: %s; next try at %s", cb.id, cb.number, reason, when(due))


def _best(calls: list[CallRecord]) -> CallRecord:
    """Of the calls one originate made, the one that says most: an answered one, else the last."""
    return next((c for c in calls if c.disposition == "answered"), calls[-1])


def when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
