"""One running campaign's dialler: a thread that places its calls at the campaign's pace.

Each turn: the campaign still running and inside its schedule, fewer calls under way than
`max_concurrent`, the pacing slot due (shared by every worker through the database), a
contact whose window is open on their own clock and who is not on the do-not-call list:
claim them with a fresh tag (attempt on record first), then originate. The slot is taken
only when a contact is ready, so an idle campaign does not burn slots; one that fell behind
does not burst (pbxlink.storage.campaigns.take_slot).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import peewee as pw

from pbxlink.domain.campaign import Plan
from pbxlink.domain.phone import PhoneNumbers
from pbxlink.domain.ports import PbxControl
from pbxlink.services.outbox import describe
from pbxlink.storage import campaigns as store
from pbxlink.storage import dnc
from pbxlink.storage.database import drop_connection
from pbxlink.storage.models import Campaign, CampaignContact

log = logging.getLogger(__name__)

IDLE_S = 1.0  # how long a dialler with nobody to call waits before it looks again
FULL_S = 0.05  # how long it waits when all its lines are busy
BATCH = 50  # contacts read per query
#: how long past its ring time a dial's call may take to show up in the call log (and, after a start,
#: how long the adapters get to bring back the calls still up) before the dial counts as lost
MARGIN_S = 15.0


@dataclass
class DialStats:
    """What a dialler did: for the panel's log and the benchmark's jitter (seconds late per dial)."""

    placed: int = 0
    late: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


class Dialer(threading.Thread):
    """Dials campaign `campaign_id` until it is not running (paused, stopped, completed) or `halt()`."""

    def __init__(
        self,
        campaign_id: int,
        controls: Mapping[str, PbxControl],
        phones: PhoneNumbers,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        margin_s: float = MARGIN_S,
        context: str = "pbxlink-campaign",
    ) -> None:
        super().__init__(name=f"campaign-{campaign_id}", daemon=True)
        self.campaign_id = campaign_id
        self.controls = controls
        self.phones = phones
        self.clock = clock
        self.margin_s = margin_s
        self.context = context
        self.stats = DialStats()
        self._halt = threading.Event()
        self._queue: deque[CampaignContact] = deque()

    def halt(self) -> None:
        self._halt.set()

    def run(self) -> None:
        log.info("campaign %d: dialler started", self.campaign_id)
        while not self._halt.is_set():
            try:
                wait = self.turn()
            except pw.PeeweeException as exc:
                log.warning(
                    "campaign %d: database error: %s; trying again in 5 s", self.campaign_id, describe(exc)
                )
                drop_connection()
                wait = 5.0
            except Exception:  # a bug must not stop the campaign for good: say so, and carry on
                log.exception(
                    "campaign %d: unexpected error in the dialler; carrying on in 5 s", self.campaign_id
                )
                wait = 5.0
            if wait is None:
                break
            if wait > 0:
                self._halt.wait(wait)
        log.info("campaign %d: dialler stopped", self.campaign_id)

    def turn(self) -> float | None:
        """Place at most one call; how long to wait before the next turn (None: not running)."""
        c = store.get(self.campaign_id)
        if c is None or c.status != "running":
            return None
        now = self.clock()
        if c.pbx not in self.controls:  # renamed or removed from the config: dialling would fail them all
            store.move(c.id, "paused", now)
            log.error(
                'campaign %s: PBX "%s" is not in the config (any more): campaign paused; add the PBX back, '
                "or edit the campaign's PBX, then resume it",
                c.name,
                c.pbx,
            )
            return None
        plan = Plan(store.settings_of(c))
        if not plan.is_open(now):
            opens = plan.next_open(now)
            return min(60.0, (opens - now).total_seconds()) if opens else 60.0
        if store.in_flight(c.id) >= c.max_concurrent:
            return FULL_S
        slot = store.next_slot(c.id)
        if slot is not None and slot > now:
            return (slot - now).total_seconds()
        contact = self._next_contact(c, plan, now)
        if contact is None:
            if store.complete_if_done(c.id, now):
                log.info("campaign %s: every contact is done; campaign completed", c.name)
                return None
            return IDLE_S
        if not store.take_slot(c.id, plan.interval, now):
            self._queue.appendleft(contact)
            return 0.0  # another worker took this slot
        self._dial(c, plan, contact, slot or now)
        return 0.0

    def _next_contact(self, c: Campaign, plan: Plan, now: datetime) -> CampaignContact | None:
        """The next contact who may be called now; those outside their window wait for it to open."""
        for _ in range(2 * BATCH):
            if not self._queue:
                self._queue.extend(store.due(c.id, now, BATCH))
                if not self._queue:
                    return None
            contact = self._queue.popleft()
            zones = contact.timezones.split(",")
            if not plan.window_open(zones, now):
                store.defer(contact.id, plan.next_window(zones, now))
                continue
            if dnc.blocked(contact.number_key):
                if store.set_aside(contact.id, "dnc", None, now):
                    log.info(
                        "campaign %s: %s is on the do-not-call list; not dialled", c.name, contact.number
                    )
                continue
            return contact
        return None

    def _dial(self, c: Campaign, plan: Plan, contact: CampaignContact, slot: datetime) -> None:
        tag = str(uuid.uuid4())
        now = self.clock()
        attempt = store.claim(contact, tag, now, plan.deadline(now, self.margin_s))
        if attempt is None:
            return  # another worker claimed this contact first
        try:
            self.controls[c.pbx].originate(
                plan.request(contact.number, store.fields_of(contact), tag, self.context)
            )
        except ValueError as exc:  # refused before the wire: no retry can fix it
            store.finish(tag, "failed", None, now, retry_at=None, detail=f"cannot be dialled: {exc}")
            log.warning("campaign %s: %s cannot be dialled: %s", c.name, contact.number, exc)
            return
        except Exception as exc:  # the link is down, the PBX said no: a later attempt may work
            why = f"the PBX did not take the call: {describe(exc)}"
            store.finish(
                tag, "failed", None, now, retry_at=plan.retry("failed", contact.attempts + 1, now), detail=why
            )
            log.warning("campaign %s: %s: %s", c.name, contact.number, why)
            return
        self.stats.placed += 1
        self.stats.late.append(max(0.0, (now - slot).total_seconds()))
        log.debug(
            "campaign %s: dialling %s (attempt %d, tag %s)", c.name, contact.number, contact.attempts + 1, tag
        )
