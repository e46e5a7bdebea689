"""The ESL call tracker: FreeSWITCH events in, the same normalized call events as for Asterisk out.

Pure and synchronous: the client feeds it one decoded event (plain or json, the same dict)
with its `Event-Date-Timestamp`. A call is the customer's leg and every leg that joins it
through `Other-Leg-Unique-ID`, `originating_leg_uuid`, a loopback twin, or mod_callcenter's
member session; its id is that leg's uuid (FreeSWITCH's call UUID). Events of a leg may come
before its CHANNEL_CREATE: every channel event carries enough to place the leg.

A call pbxlink's `originate` made carries its tag: the `pbxlink_tag` variable on its legs, or the
`+OK <uuid>` of the BACKGROUND_JOB whose Job-UUID is the tag. The phones one originate rings at
once (a queue's members) share the tag and are one call; the ones that lose the race end nothing.

A campaign's broadcast is answered when its contact picks up; a customer-first callback, whose
customer is rung first the same way, only when an agent takes it: the context the originate sent
the contact's leg to (`*-broadcast`) tells them apart. That, and mod_avmd's verdict (CallRecord.amd),
are read by pbxlink.esl.broadcast.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pbxlink.domain.agent_map import AgentMap
from pbxlink.domain.call_state import CallState, Chan
from pbxlink.domain.calls import CallEvent, CallRecord, CallStarted
from pbxlink.domain.headers import Event, field
from pbxlink.esl.broadcast import AVMD_EVENTS, on_avmd, on_leg
from pbxlink.esl.channels import DIAL_STATUS, agent_map, loopback_half
from pbxlink.esl.control import TAG_VARIABLE
from pbxlink.esl.queue import on_callcenter
from pbxlink.esl.resync import Resync

log = logging.getLogger(__name__)

#: the legs a new leg may hang off, most specific first
_REFS = (
    "variable_cc_member_session_uuid",
    "Other-Leg-Unique-ID",
    "variable_originating_leg_uuid",
    "variable_originator",
    "variable_other_loopback_leg_uuid",
    "Channel-Call-UUID",
    "variable_bridge_uuid",
)
_ORIGINATOR = ("variable_originating_leg_uuid", "variable_originator")
_UNKNOWN = {"", "unknown", "0000000000"}
#: the customer leg's DIALSTATUS when its bridge failed: why the call was missed
_FAILED_DIALS = {"NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION"}
#: pbxlink's originates set this channel variable to their tag (pbxlink.esl.control)
_TAG = f"variable_{TAG_VARIABLE}"


def _known(value: str) -> str | None:
    return None if value in _UNKNOWN else value


def _is_external(number: str) -> bool:
    digits = number.lstrip("+")
    return number.startswith("+") or (digits.isdigit() and len(digits) >= 7)


class EslTracker(Resync):
    def __init__(self, pbx: str, agents: AgentMap | None = None) -> None:
        super().__init__()
        self.pbx = pbx
        self.agents = agents or agent_map(None)
        self._waiting: dict[str, tuple[Event, datetime]] = {}  # loopback halves waiting for their twin
        self._first_hangup: dict[str, str] = {}  # call id -> the sofia leg whose hang-up came first
        self._handlers: dict[str, Callable[[CallState, Chan, Event, datetime], list[CallEvent]]] = {
            "CHANNEL_BRIDGE": self._on_bridge,
            "CHANNEL_HANGUP": self._on_hangup,
            "CHANNEL_HANGUP_COMPLETE": self._on_gone,
            "CHANNEL_DESTROY": self._on_gone,
            "RECORD_START": self._on_record,
            "RECORD_STOP": self._on_record,
        }

    @property
    def event_names(self) -> tuple[str, ...]:
        """What to subscribe to: CHANNEL_CREATE and the like only place legs, which any event does."""
        return (
            "CHANNEL_CREATE",
            *self._handlers,
            "SHUTDOWN",
            "BACKGROUND_JOB",
            "HEARTBEAT",
            "CUSTOM",
            "callcenter::info",
            *AVMD_EVENTS,
        )

    # --- the event stream ----------------------------------------------------------------------

    def feed(self, event: Event, at: datetime) -> list[CallEvent]:
        """One decoded ESL event; a malformed one is logged and skipped, never fatal."""
        name = field(event, "Event-Name")
        try:
            if name == "SHUTDOWN":
                return self._end_all(at, seen=True, hangup_by="system")
            if name == "BACKGROUND_JOB":
                return self._on_job(event)
            if name == "CUSTOM":
                return self._on_custom(event, at)
            located = self._locate(name, event, at)
            if located is None:
                return []
            state, chan, started = located
            if state.record.origin is None and (tag := field(event, _TAG)):
                state.placed(tag)
            if state.record.origin is not None:
                # the contact's leg (the call's own), or either half of the loopback that reaches them
                first = chan.uniqueid == state.origin or chan.uniqueid in state.caller_uids
                started += on_leg(state, event, first and chan.agent is None)
            handler = self._handlers.get(name)
            return started + (handler(state, chan, event, at) if handler else [])
        except Exception:
            log.exception(
                "ESL %s: could not make sense of a %s event; skipped it", self.pbx, name or "nameless"
            )
            return []

    def _locate(
        self, name: str, event: Event, at: datetime
    ) -> tuple[CallState, Chan, list[CallEvent]] | None:
        """The call and leg an event is about, placing a leg seen for the first time.

        Only an event that carries the channel's variables can place a leg (the first
        events of a leg may not). A loopback half whose twin is not known yet waits for it:
        which of the two is the call's own leg shows only once both are there.
        """
        uuid = field(event, "Unique-ID")
        call_id = self._chan_call.get(uuid)
        if call_id is not None:
            state = self._calls[call_id]
            return state, state.channels[uuid], []
        if (
            not uuid
            or uuid in self._ended  # a straggler of a leg that is gone
            or field(event, "Answer-State") == "hangup"
            or not field(event, "variable_uuid")
            or uuid in self._waiting
        ):
            return None
        refs = [r for r in (field(event, k) for k in _REFS) if r and r != uuid]
        if any(r in self._ended for r in refs):
            return None  # a straggler of a call that has ended
        twin = field(event, "variable_other_loopback_leg_uuid")
        joined = next((self._calls[self._chan_call[r]] for r in refs if r in self._chan_call), None)
        if joined is None and (joined := self._tagged(field(event, _TAG))) is not None:
            joined.caller_uids.add(uuid)  # one originate ringing several phones at once: one call
        if joined is not None:
            chan, events = self._join(joined, uuid, event, at)
            if twin in self._waiting:
                twin_event, twin_at = self._waiting.pop(twin)
                events += self._join(joined, twin, twin_event, twin_at)[1]
            return joined, chan, events
        if twin and twin not in self._waiting:
            self._waiting[uuid] = (event, at)
            return None
        first, first_at = self._waiting.pop(twin, (event, at))
        pair = sorted([(event, at), (first, first_at)], key=lambda e: field(e[0], "Channel-Name")[-2:])
        if first is event:
            pair = pair[:1]
        # the call's own leg: not the far party's handset; of two others, the `-a` half
        (own, own_at), *rest = sorted(pair, key=lambda e: self._is_handset(e[0]))
        state = self._new_call(field(own, "Unique-ID"), own, own_at)
        events: list[CallEvent] = []
        for leg, leg_at in ((own, own_at), *rest):
            events += self._join(state, field(leg, "Unique-ID"), leg, leg_at)[1]
        return state, state.channels[uuid], [CallStarted(at=own_at, call=state.record.copy()), *events]

    def _is_handset(self, event: Event) -> bool:
        """An API-originated loopback `-a` leg that is no agent: the simulated far party's phone."""
        name = field(event, "Channel-Name")
        originated = not any(field(event, k) for k in (*_ORIGINATOR, "Other-Leg-Unique-ID"))
        return (
            name.endswith("-a")
            and name.startswith("loopback/")
            and originated
            and not (self.agents.agent(name) or field(event, "variable_cc_side"))
        )

    def _new_call(self, uuid: str, event: Event, at: datetime) -> CallState:
        agent = self.agents.agent(field(event, "Channel-Name"))
        dest = field(event, "Caller-Destination-Number")
        if agent is None:
            direction, caller = "inbound", _known(field(event, "Caller-Caller-ID-Number"))
            name = _known(field(event, "Caller-Caller-ID-Name"))
        else:
            direction, caller, name = ("outbound" if _is_external(dest) else "internal"), agent, None
        record = CallRecord(
            pbx=self.pbx,
            call_id=uuid,
            direction=direction,  # type: ignore[arg-type]
            started_at=at,
            caller=caller,
            caller_name=name,
            callee=_known(dest) if dest != agent else None,
        )
        state = CallState(record=record, origin=uuid)
        state.caller_uids.add(uuid)
        state.placed(field(event, _TAG))
        self._calls[uuid] = state
        return state

    def _on_custom(self, event: Event, at: datetime) -> list[CallEvent]:
        """mod_callcenter's queue events, and mod_avmd's verdict on a leg (neither carries channel data)."""
        subclass = field(event, "Event-Subclass")
        uuid = field(event, "CC-Member-Session-UUID" if subclass == "callcenter::info" else "Unique-ID")
        state = self._calls.get(self._chan_call.get(uuid, ""))
        if state is None:
            return []
        if subclass in AVMD_EVENTS:
            on_avmd(state, event)
        return on_callcenter(state, event, at) if subclass == "callcenter::info" else []

    def _on_job(self, event: Event) -> list[CallEvent]:
        """pbxlink's `bgapi originate` done: `+OK <uuid>` names the leg it made; its call gets the tag.

        The Job-UUID is the tag only when the job is an originate carrying it as `pbxlink_tag`
        (pbxlink.esl.control); a `-ERR` made no leg, so no record.
        """
        job, result = field(event, "Job-UUID"), field(event, "_body").strip()
        ours = f"{TAG_VARIABLE}={job}" in field(event, "Job-Command-Arg")
        if field(event, "Job-Command") != "originate" or not ours or not result.startswith("+OK "):
            return []
        state = self._calls.get(self._chan_call.get(result[4:].strip(), ""))
        if state is not None:
            state.placed(job)
        return []

    def _tagged(self, tag: str) -> CallState | None:
        """The open call pbxlink's originate tagged `tag` placed, if any."""
        if not tag:
            return None
        return next((s for s in self._calls.values() if s.record.origin == tag), None)

    def _join(self, state: CallState, uuid: str, event: Event, at: datetime) -> tuple[Chan, list[CallEvent]]:
        """Add a leg to a call: a ring when it rings an agent, the callee when an agent dials out."""
        name = field(event, "Channel-Name")
        twin = field(event, "variable_other_loopback_leg_uuid")
        local = loopback_half(name, uuid, twin)
        chan = Chan(uniqueid=uuid, name=name, agent=self.agents.agent(name), local=local)
        chan.helper = field(event, "variable_cc_side") == "agent" and chan.agent is None
        dialled = any(field(event, k) for k in _ORIGINATOR)
        if local is not None:
            how = state.pairs.setdefault(local.pair, "dialled" if dialled else "originated")
            chan.dialled, chan.originated = how == "dialled", how == "originated"
        if twin in state.caller_uids:
            state.caller_uids.add(uuid)
        state.channels[uuid] = chan
        self._chan_call[uuid] = state.record.call_id
        if uuid in state.caller_uids and chan.agent and state.record.origin and not state.record.answered_at:
            # an agent pbxlink's originate rings first: their screen-pop, the call's tag on it
            return chan, state.ring(f"agent:{chan.agent}", chan.agent, at, offer=False)
        if uuid in state.caller_uids or chan.helper or not dialled:
            return chan, []
        rec = state.record
        if _dialler(state) is not None and rec.answered_at is None:  # an agent's own call reaching someone
            rec.direction = "internal" if chan.agent else "outbound"
            rec.callee = chan.agent or _known(field(event, "Caller-Destination-Number")) or rec.callee
            state.offer(at)
        if chan.agent is None:
            return chan, []
        return chan, state.ring(f"agent:{chan.agent}", chan.agent, at)

    # --- handlers ----------------------------------------------------------------------------

    def _on_bridge(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        other = state.channels.get(field(event, "Other-Leg-Unique-ID"))
        if other is None or (chan.helper and other.helper):
            return []
        legs = (chan, other)
        callee = next((c for c in legs if c.agent and c.uniqueid not in state.caller_uids), None)
        dialler = _dialler(state)
        rec = state.record
        if callee is not None:
            if rec.direction == "internal" and dialler and dialler not in rec.agents:
                rec.agents.append(dialler)  # both extensions of an internal call talked
            state.ringing.pop(f"agent:{callee.agent}", None)
            return state.answer(callee.agent, at)
        if rec.direction != "inbound":
            if rec.answered_at is None and dialler:
                rec.caller = dialler  # of the phones an originate rang at once, the one that answered
            return state.answer(dialler, at)  # the far party of an agent's call answered
        if any(c.uniqueid in state.caller_uids for c in legs) and not any(c.helper for c in legs):
            return state.answer(None, at)  # forwarded outside, answered there
        return []

    def _on_hangup(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        cause = field(event, "Hangup-Cause")
        events: list[CallEvent] = []
        if chan.agent is not None and chan.agent not in state.talking:
            events = state.ring_ended(f"agent:{chan.agent}", DIAL_STATUS.get(cause, "CANCEL"), at)
        elif _first_party_unreached(state, chan, event):  # pbxlink's originate rang a customer in vain
            state.ring_ended("", DIAL_STATUS.get(cause, "CHANUNAVAIL"), at)
        if cause == "LOSE_RACE":  # another phone rung at once answered first: this leg ends nothing
            chan.hangup_requested = True
            return events
        if cause == "SYSTEM_SHUTDOWN" and state.may_end_call(chan):
            state.hung_up(chan, person=False)
        elif chan.local is not None:
            state.hangup_signal(chan, requested=False)  # a loopback half: its side tells who
        elif state.may_end_call(chan):
            # Whether the person or FreeSWITCH hung up shows only in this leg's HANGUP_COMPLETE.
            self._first_hangup.setdefault(state.record.call_id, chan.uniqueid)
        chan.hangup_requested = True
        if chan.agent is not None and not any(
            c.agent == chan.agent and not c.hangup_requested for c in state.channels.values()
        ):
            state.leave(chan.agent, at)
        return events

    def _on_gone(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        dial_status = field(event, "variable_DIALSTATUS")
        if chan.uniqueid in state.caller_uids and dial_status in (
            "NOANSWER",
            "BUSY",
            "CHANUNAVAIL",
            "CONGESTION",
        ):
            state.ring_ended("", dial_status, at)  # why the bridge failed, not the leg's own cause
        if self._first_hangup.get(state.record.call_id) == chan.uniqueid and state.hangup_by is None:
            disposition = field(event, "variable_sip_hangup_disposition")
            state.hung_up(chan, person=not disposition or disposition.startswith("recv_"))
        events = [] if chan.hangup_requested else self._on_hangup(state, chan, event, at)
        del state.channels[chan.uniqueid]
        self._chan_call.pop(chan.uniqueid, None)
        self._ended[chan.uniqueid] = None  # the leg's stragglers must not start a call
        if state.channels:
            return events
        self._first_hangup.pop(state.record.call_id, None)
        return events + self._finish(state, at)

    def _on_record(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        path = field(event, "Record-File-Path") or field(event, "variable_recording_file")
        if path:
            state.record.recording = path
        return []


def _dialler(state: CallState) -> str | None:
    """The agent who placed the call, when an agent did (of phones rung at once, one still up)."""
    return next(
        (
            c.agent
            for c in state.channels.values()
            if c.agent and c.uniqueid in state.caller_uids and not c.hangup_requested
        ),
        None,
    )


def _first_party_unreached(state: CallState, chan: Chan, event: Event) -> bool:
    """The leg pbxlink's originate rang first (a customer, no agent) hangs up without having answered."""
    return (
        state.record.origin is not None
        and chan.uniqueid == state.origin
        and field(event, "Caller-Channel-Answered-Time") in ("", "0")
    )
