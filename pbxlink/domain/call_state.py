"""The state of one call while it is up, and how it becomes a record: shared by both trackers.

The Asterisk and FreeSWITCH trackers route their PBX's events here in one vocabulary
(ring, answer, transfer, hang-up signal, queue outcome); this module decides what they
mean for the call: who answered, who talked, who hung up, why a call was missed.
Pure: no I/O, no clock.

A campaign's voice broadcast (pbxlink's originate into a context ending in `-broadcast`) is
answered when its contact picks up: nobody else need talk. A customer-first callback rings its
customer the same way but is answered only when an agent takes it: the context tells them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from pbxlink.domain.calls import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallRecord,
    CallRingEnded,
    CallRinging,
    CallTransferred,
    RecordingReady,
    Transfer,
    TransferKind,
    seconds,
)

#: DialStatus values that say why an agent did not take the call, by precedence
_RING_OUTCOMES = {"NOANSWER": "no_answer", "BUSY": "busy", "CHANUNAVAIL": "failed", "CONGESTION": "failed"}
_QUEUE_STATUS = {
    "TIMEOUT": "queue_timeout",
    "FULL": "not_offered",
    "JOINEMPTY": "not_offered",
    "LEAVEEMPTY": "not_offered",
    "JOINUNAVAIL": "not_offered",
    "LEAVEUNAVAIL": "not_offered",
}

#: a campaign's voice broadcast runs in a dialplan context whose name ends so (`pbxlink-campaign-broadcast`)
BROADCAST_SUFFIX = "-broadcast"

#: what pbxlink puts in an originate's tag (a uuid): hex digits and dashes, 8 to 64 characters;
#: anything else is not one of ours
_TAG = re.compile(r"[0-9A-Fa-f][0-9A-Fa-f-]{7,63}")


@dataclass(frozen=True)
class LocalHalf:
    """One half of a two-channel wire: Asterisk `Local/…;1|;2`, FreeSWITCH `loopback/…-a|-b`.

    Half 1 faces whoever created the wire; half 2 runs the wire's dialplan.
    """

    pair: str
    half: int


@dataclass
class Chan:
    """One channel of a call, with what its name and history say about whose it is."""

    uniqueid: str
    name: str
    agent: str | None
    local: LocalHalf | None
    #: the pair was dialled by the PBX (DialBegin with a caller), so its `;2` is the far party's phone
    dialled: bool = False
    #: the pair was created by an Originate (DialBegin without a caller), so its `;1` is the far party
    originated: bool = False
    hangup_requested: bool = False
    #: a leg the PBX makes for its own plumbing (a queue's agent-contact legs): never a party
    helper: bool = False
    context: str = ""
    exten: str = ""

    def is_phone_side(self, half: int | None = None) -> bool:
        """Whether a hang-up starting on this channel (or on `half` of its Local pair) is a person's.

        Local (loopback) pairs are wires: which half stands for the person depends on how
        the pair came to be. An agent's pair rings the phone from `;2`; a pair the PBX dialled
        reaches the far party from `;2`; an originated pair reaches its party from `;1`.
        """
        if self.local is None:
            return True
        half = half or self.local.half
        if self.agent is not None or self.dialled:
            return half == 2
        if self.originated:
            return half == 1
        return False


@dataclass
class CallState:
    record: CallRecord
    origin: str  # uniqueid of the first channel (the Linkedid)
    channels: dict[str, Chan] = field(default_factory=dict)
    caller_uids: set[str] = field(default_factory=set)
    pairs: dict[str, str] = field(default_factory=dict)  # Local pair name -> "dialled" | "originated"
    ringing: dict[str, str] = field(default_factory=dict)  # dest uniqueid -> agent
    talking: list[str] = field(default_factory=list)  # agents on the line now
    talk_since: datetime | None = None
    talk_total: float = 0.0
    offered_at: datetime | None = None
    rang: bool = False
    ring_outcome: str | None = None
    queue_outcome: str | None = None
    hangup_by: str | None = None
    transfer_pending: bool = False
    last_agent: str | None = None  # who talked last: the "from" of a transfer no event announced
    last_at: datetime | None = None
    broadcast: bool = False  # pbxlink's originate into a `-broadcast` context: a campaign's message
    reached_at: datetime | None = None  # when pbxlink's originate reached its first party, no agent

    def placed(self, tag: str) -> None:
        """pbxlink placed this call with an originate tagged `tag`; the first valid tag wins.

        Such a call is outbound; its callee is whom it dials after its first party answered.
        When the originate rang a customer first (a customer-first callback: no agent's channel
        started it), nobody placed it from an extension: no caller.
        """
        rec = self.record
        if rec.origin is not None or _TAG.fullmatch(tag) is None:
            return
        rec.origin = tag
        if rec.direction == "inbound":
            rec.caller = rec.caller_name = None
        elif rec.callee == rec.caller:
            rec.callee = None  # the agent's own extension (or queue) it rings first is not whom it calls
        rec.direction = "outbound"

    # --- a campaign's broadcast ------------------------------------------------------------------

    def reached(self, at: datetime) -> list[CallEvent]:
        """pbxlink's originate reached its first party (not an agent) at `at`: a broadcast's answer."""
        if self.reached_at is None or at < self.reached_at:
            self.reached_at = at
        return self._picked_up()

    def mark_broadcast(self) -> list[CallEvent]:
        """The call is a broadcast (the wire showed its context): the contact's pick-up is its answer."""
        self.broadcast = True
        return self._picked_up()

    def _picked_up(self) -> list[CallEvent]:
        rec, at = self.record, self.reached_at
        if not self.broadcast or at is None:
            return []
        if rec.answered_at is None:
            return self.answer(None, at)
        if at < rec.answered_at:  # learnt late (FreeSWITCH says it at the hang-up): the earlier time wins
            rec.answered_at = at
            rec.wait_seconds = seconds(at - (self.offered_at or rec.started_at))
        return []

    # --- answering and talking -------------------------------------------------------------

    def offer(self, at: datetime) -> None:
        if self.offered_at is None:
            self.offered_at = at

    def ring(self, dest_uid: str, agent: str, at: datetime, *, offer: bool = True) -> list[CallEvent]:
        """An agent's phone rings; `offer` false for the agent pbxlink's originate rings first (agent
        first): that is not the customer waiting, whose wait starts when they are dialled."""
        if offer:
            self.offer(at)
        if dest_uid in self.ringing or self.record.ended_at is not None:
            return []
        self.ringing[dest_uid] = agent
        self.rang = True
        return [CallRinging(at=at, call=self.record.copy(), agent=agent)]

    def ring_ended(self, dest_uid: str, status: str, at: datetime) -> list[CallEvent]:
        agent = self.ringing.pop(dest_uid, None)
        outcome = _RING_OUTCOMES.get(status)
        if outcome is not None:
            self.ring_outcome = outcome
        if agent is None:
            return []
        return [CallRingEnded(at=at, call=self.record.copy(), agent=agent, outcome=outcome or "cancelled")]

    def answer(self, agent: str | None, at: datetime) -> list[CallEvent]:
        """Someone took the call: an agent, or (outbound) the far party, `agent` then being the dialler."""
        rec = self.record
        if agent is not None and agent in self.talking:
            return []
        events: list[CallEvent] = []
        if rec.answered_at is None:
            rec.answered_at = at
            rec.agent = agent
            rec.wait_seconds = seconds(at - (self.offered_at or rec.started_at))
        elif (
            agent is not None
            and self.last_agent not in (None, agent)
            and not self.transfer_pending
            and self.hangup_by != "agent"
        ):
            # A new agent took over without a transfer event and without the last one hanging
            # up: an AMI Redirect or a dialplan move.
            events += self.transfer(self.last_agent, agent, "redirect", at)
        self.transfer_pending = False
        self.hangup_by = None  # whoever hung up before this answer did not end the call
        if agent is not None and rec.agent is None:
            rec.agent = agent  # the first agent of a call its far party answered (a broadcast's press 1)
        if agent is not None and agent not in rec.agents:
            rec.agents.append(agent)
        if agent is not None:
            self.talking.append(agent)
            self.last_agent = agent
        if self.talk_since is None:
            self.talk_since = at
        events.append(CallAnswered(at=at, call=rec.copy(), agent=agent))
        return events

    def transfer(
        self, from_: str | None, to: str | None, kind: TransferKind, at: datetime
    ) -> list[CallEvent]:
        t = Transfer(from_=from_, to=to, kind=kind)
        self.record.transfers.append(t)
        if kind != "redirect":
            self.transfer_pending = True
        if from_ in self.talking:
            self.leave(from_, at)
        return [CallTransferred(at=at, call=self.record.copy(), transfer=t)]

    def leave(self, agent: str, at: datetime) -> None:
        """An agent left the conversation; the talk segment ends when nobody is left talking."""
        if agent in self.talking:
            self.talking.remove(agent)
        if not self.talking and self.talk_since is not None:
            self.talk_total += (at - self.talk_since).total_seconds()
            self.talk_since = None

    # --- hanging up ---------------------------------------------------------------------------

    def hangup_signal(self, chan: Chan, requested: bool) -> None:
        """Note who started the hang-up: the first party-side signal of the last segment decides.

        `requested` is a HangupRequest (the far end of the channel asked: for a Local half,
        its partner half); otherwise a SoftHangupRequest or a Hangup with no request before
        it (Asterisk itself, or for a Local half, the dialplan or party behind it).
        """
        if not self.may_end_call(chan):
            return
        if chan.local is None:
            person = requested
        else:  # a request on a Local half echoes what its partner half did
            half = 3 - chan.local.half if requested else chan.local.half
            person = chan.is_phone_side(half)
            if self.record.origin is not None and chan.originated and chan.agent is None:
                person = half == 2  # pbxlink's own wire: `;2` reaches the party, `;1` runs the dialplan
        self.hung_up(chan, person)

    def may_end_call(self, chan: Chan) -> bool:
        """Whether this channel going away can be what ends the call (no decision made yet).

        A ringing or departed agent leg, or a PBX helper leg, going away does not end it.
        """
        if self.hangup_by is not None or chan.helper:
            return False
        return chan.agent is None or chan.agent in self.talking or chan.uniqueid in self.caller_uids

    def hung_up(self, chan: Chan, person: bool) -> None:
        """The hang-up started on `chan`: by the person behind it, or (`person` false) by the PBX."""
        if not person:
            self.hangup_by = "system"
        elif chan.agent is not None and chan.uniqueid not in self.caller_uids:
            self.hangup_by = "agent"
        elif chan.agent is not None and self.record.direction != "inbound":
            self.hangup_by = "agent"  # the agent who placed the call hung up
        else:
            self.hangup_by = "customer"

    def queue_left(self, abandoned: bool) -> None:
        if self.queue_outcome is None and abandoned:
            self.queue_outcome = "abandoned" if self.hangup_by == "customer" else "queue_timeout"

    def queue_status(self, status: str) -> None:
        outcome = _QUEUE_STATUS.get(status.upper())
        if outcome == "not_offered" and self.rang:
            outcome = "queue_timeout"
        if outcome is not None:
            self.queue_outcome = outcome

    def end(self, at: datetime, *, seen: bool = True, hangup_by: str | None = None) -> list[CallEvent]:
        rec = self.record
        for agent in list(self.talking):
            self.leave(agent, at)
        rec.ended_at = at
        rec.end_seen = seen
        rec.hangup_by = hangup_by or self.hangup_by or ("system" if seen else None)  # type: ignore[assignment]
        if rec.answered_at is not None:
            rec.disposition = "answered"
            rec.miss_reason = None
            rec.talk_seconds = round(self.talk_total, 3)
            if self.broadcast:  # the contact was on the line from the pick-up to the end
                rec.talk_seconds = seconds(at - rec.answered_at)
        else:
            rec.disposition = "missed"
            rec.miss_reason = self._miss_reason()  # type: ignore[assignment]
            rec.wait_seconds = seconds(at - (self.offered_at or rec.started_at))
            rec.talk_seconds = 0.0
        events: list[CallEvent] = [CallEnded(at=at, call=rec.copy())]
        if rec.recording:
            events.append(RecordingReady(at=at, call=rec.copy(), path=rec.recording))
        return events

    def _miss_reason(self) -> str:
        if self.queue_outcome is not None:
            return self.queue_outcome
        if self.ring_outcome in ("no_answer", "busy"):
            return self.ring_outcome
        if self.offered_at is not None and self.hangup_by == "customer":
            return "abandoned"
        if self.ring_outcome is not None:
            return self.ring_outcome
        if self.offered_at is not None:
            return "no_answer"
        return "not_offered" if self.record.direction == "inbound" else "failed"
