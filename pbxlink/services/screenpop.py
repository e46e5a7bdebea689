"""CTI screen-pops: the moment an agent's phone rings, their pop page shows who is calling.

One bus subscriber for all agents keeps one pop per (call, agent) in the `PopHub`. A ring
pushes the pop at once with what is known without waiting: the number, the PBX's caller
name, the CRM answer if cached. The CRM lookup (when not cached) and the caller's last
calls from pbxlink's own log are fetched in small thread pools, never on the bus thread,
and complete the pop of every agent rung for the call when they come back. Answers, rings
ending and the call ending update the same pops ("answered by 202", "missed").
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import peewee as pw

from pbxlink.domain.calls import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallRecord,
    CallRingEnded,
    CallRinging,
    CallUpdated,
    iso,
)
from pbxlink.domain.crm import Contact
from pbxlink.domain.phone import MIN_DIGITS
from pbxlink.services.directory import LookupResult
from pbxlink.services.pop_hub import Pop, PopHub
from pbxlink.storage.calls import CallFilter, search_calls
from pbxlink.storage.database import drop_connection

log = logging.getLogger(__name__)

RECENT = 5  # earlier calls shown on a pop
MAX_AGE = 6 * 3600.0  # a call whose end was never seen is forgotten after this
_RECENT_FIELDS = ("started_at", "direction", "agent", "disposition", "miss_reason", "talk_seconds")


class ContactSource(Protocol):
    """What the pops need of the caller directory: `cached` never waits for a CRM, `lookup` may."""

    def cached(self, number: str) -> LookupResult | None: ...

    def lookup(self, number: str) -> LookupResult: ...


#: (number, limit) -> the calls with this number in the call log, newest first, as the API shows them
RecentCalls = Callable[[str, int], list[dict[str, Any]]]


def calls_from_log(number: str, limit: int) -> list[dict[str, Any]]:
    """`RecentCalls` over the call log: one indexed query. The pool thread keeps its connection (opening
    one per pop cost more than the query); a failed one is dropped, the next pop opens anew."""
    try:
        rows, _ = search_calls(CallFilter(number=number), limit=limit)
    except pw.PeeweeException:
        drop_connection()
        raise
    return rows


@dataclass
class _CallPops:
    """One call's pops: what all its agents see alike, and each agent's own state."""

    call: CallRecord
    number: str | None
    lookup: dict[str, Any]
    recent: list[dict[str, Any]] | None = None
    agents: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # agent -> (state, answered_by)
    closed: bool = False
    pending: int = 0  # lookups and history fetches under way
    since: float = 0.0
    campaign: dict[str, Any] | None = None  # the campaign contact pbxlink dialled this call for


class ScreenPops:
    """The bus handler `on_event`; `close()` stops its pools (pending lookups are abandoned)."""

    def __init__(
        self,
        source: ContactSource,
        recent_calls: RecentCalls,
        hub: PopHub,
        *,
        lookup_workers: int = 8,
        history_workers: int = 2,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
        campaign_contact: Callable[[str], dict[str, Any] | None] = lambda tag: None,
    ) -> None:
        self.source, self.recent_calls, self.hub = source, recent_calls, hub
        self.campaign_contact = campaign_contact
        self.max_age, self._clock = max_age, clock
        self._lookups = ThreadPoolExecutor(lookup_workers, thread_name_prefix="pop-lookup")
        self._history = ThreadPoolExecutor(history_workers, thread_name_prefix="pop-history")
        self._calls: dict[tuple[str, str], _CallPops] = {}  # oldest first
        self._lock = threading.Lock()

    def on_event(self, event: CallEvent) -> None:
        if isinstance(event, CallRinging):
            self._ringing(event)
            return
        with self._lock:
            cp = self._calls.get((event.call.pbx, event.call.call_id))
            if cp is None:
                return  # a call that rang no agent (outbound, IVR only): no pop
            cp.call = event.call
            if isinstance(event, CallAnswered):
                for agent in cp.agents:
                    answered = agent == event.agent
                    cp.agents[agent] = ("answered", None) if answered else ("answered_elsewhere", event.agent)
            elif isinstance(event, CallRingEnded) and cp.agents.get(event.agent, ("",))[0] == "ringing":
                cp.agents[event.agent] = ("stopped", None)
            elif isinstance(event, CallEnded):
                self._end(cp, event.call)
            elif not isinstance(event, CallUpdated):
                return
            if not self._renumber(cp):
                self._publish(cp)

    def close(self) -> None:
        self._lookups.shutdown(wait=False, cancel_futures=True)
        self._history.shutdown(wait=False, cancel_futures=True)

    def _ringing(self, event: CallRinging) -> None:
        call = event.call
        with self._lock:
            self._prune()
            key = (call.pbx, call.call_id)
            cp = self._calls.get(key)
            if cp is None:
                cp = self._calls[key] = _CallPops(call, None, {}, since=self._clock())
            if call.origin is not None and cp.campaign is None:
                cp.campaign = self._campaign(call.origin)
            cp.call = call
            cp.agents[event.agent] = ("ringing", None)
            if not self._renumber(cp):
                self._publish(cp, only=event.agent)

    def _renumber(self, cp: _CallPops) -> bool:
        """When the call's number is new (first ring, dialplan rewrite): fetch what the pops show of it.

        Returns whether the pops were published (with the cached answer, or "pending").
        """
        number = customer_number(cp.call) or (cp.campaign or {}).get("number")
        if number == cp.number and cp.lookup:
            return False
        cp.number, cp.lookup, cp.recent = number, {"lookup": "skipped"}, []
        if number and cp.call.direction != "internal" and len(re.sub(r"\D", "", number)) >= MIN_DIGITS:
            hit = self.source.cached(number)
            cp.recent = None
            cp.lookup = lookup_view(hit) if hit is not None else {"lookup": "pending"}
            if hit is None:
                self._submit(self._lookups, cp, "lookup", lambda: lookup_view(self._lookup(number)))
            self._submit(self._history, cp, "recent", lambda: self._recent(cp.call, number))
        self._publish(cp)
        return True

    def _end(self, cp: _CallPops, call: CallRecord) -> None:
        cp.closed = True
        for agent, (state, _) in cp.agents.items():
            if agent in call.agents:
                cp.agents[agent] = ("ended", None)
            elif call.disposition != "answered":
                cp.agents[agent] = ("missed", None)
            elif state != "answered_elsewhere":
                cp.agents[agent] = ("answered_elsewhere", call.agent)
        if not cp.pending:
            self._forget(cp)

    def _submit(self, pool: ThreadPoolExecutor, cp: _CallPops, part: str, get: Callable[[], Any]) -> None:
        cp.pending += 1
        pool.submit(self._fetch, cp, cp.number, part, get)

    def _fetch(self, cp: _CallPops, number: str | None, part: str, get: Callable[[], Any]) -> None:
        """Run `get` (a lookup or the history) in a pool thread, then update every agent's pop of the call."""
        value = get()
        with self._lock:
            cp.pending -= 1
            if cp.number == number:  # else the number changed meanwhile: a newer fetch is under way
                if part == "lookup":
                    cp.lookup = value
                else:
                    cp.recent = value
                self._publish(cp)
            if cp.closed and not cp.pending:
                self._forget(cp)

    def _lookup(self, number: str) -> LookupResult | str:
        try:
            return self.source.lookup(number)
        except Exception:
            log.exception("screen-pop: the lookup of %s failed unexpectedly; its pops say so", number)
            return "the lookup failed unexpectedly: see pbxlink's log"

    def _campaign(self, tag: str) -> dict[str, Any] | None:
        """An agent-first campaign call rings the agent before the contact: the pop names whom it dials."""
        try:
            return self.campaign_contact(tag)
        except Exception as exc:
            log.warning("screen-pop: the campaign contact of dial %s could not be read (%s)", tag, exc)
            return None

    def _recent(self, call: CallRecord, number: str) -> list[dict[str, Any]]:
        try:
            rows = self.recent_calls(number, RECENT + 1)
        except Exception as exc:
            log.warning(
                "screen-pop: the call log failed (%s); the pops of %s show no earlier calls", exc, number
            )
            return []
        others = [r for r in rows if (r.get("pbx"), r.get("call_id")) != (call.pbx, call.call_id)]
        return [{k: r.get(k) for k in _RECENT_FIELDS} for r in others[:RECENT]]

    def _publish(self, cp: _CallPops, only: str | None = None) -> None:
        """Send the pops of `cp` (every agent's, or `only` one's); under the lock, so versions keep order."""
        for agent, (state, by) in cp.agents.items():
            if only is None or agent == only:
                key = f"{cp.call.pbx}/{cp.call.call_id}/{agent}"
                self.hub.publish(key, _pop(cp, key, agent, state, by))

    def _forget(self, cp: _CallPops) -> None:
        self._calls.pop(_ids(cp), None)

    def _prune(self) -> None:
        cutoff = self._clock() - self.max_age
        while self._calls:
            cp = next(iter(self._calls.values()))
            if cp.since > cutoff:
                return
            log.warning("screen-pop: call %s/%s never ended; its pops are forgotten", *_ids(cp))
            self._forget(cp)


def customer_number(call: CallRecord) -> str | None:
    """The other party's number as the pop shows it: who called in, or whom the agent called."""
    return call.callee if call.direction == "outbound" else call.caller


def lookup_view(result: LookupResult | str) -> dict[str, Any]:
    """A lookup as the pop carries it; `errors` are for admins (the web strips them for agents)."""
    if isinstance(result, str):
        return {"lookup": "error", "errors": [result]}
    best = result.best
    view: dict[str, Any] = {"errors": list(result.errors)}
    if best is not None:
        return {**view, "lookup": "found", "contact": contact_view(best), "more": len(result.contacts) - 1}
    return {**view, "lookup": "error" if result.errors else "none"}


def contact_view(contact: Contact) -> dict[str, Any]:
    """What a pop shows of a contact; a link only when it is http(s) (a CRM could hand us `javascript:`)."""
    deals = [{**vars(d), "url": safe_url(d.url)} for d in contact.deals]
    return {
        "crm": contact.crm,
        "id": contact.id,
        "name": contact.name,
        "company": contact.company,
        "owner": contact.owner,
        "url": safe_url(contact.url),
        "kind": contact.kind,
        "deals": deals,
    }


def safe_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def _pop(cp: _CallPops, key: str, agent: str, state: str, by: str | None) -> Pop:
    call = cp.call
    return {
        "key": key,
        "agent": agent,
        "state": state,
        "answered_by": by,
        "closed": cp.closed,
        "call": {
            "pbx": call.pbx,
            "call_id": call.call_id,
            "number": cp.number,
            "caller_name": call.caller_name,
            "queue": call.queue,
            "direction": call.direction,
            "started_at": iso(call.started_at),
        },
        "errors": [],
        "contact": None,
        "more": 0,
        **cp.lookup,
        "recent": cp.recent,
        "campaign": cp.campaign,
    }


def _ids(cp: _CallPops) -> tuple[str, str]:
    return cp.call.pbx, cp.call.call_id
