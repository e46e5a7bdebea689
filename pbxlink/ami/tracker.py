"""The AMI call tracker: raw Asterisk events in, normalized call events out.

Pure and synchronous (no sockets, no clock, no database): the client feeds it one
event at a time with the event's time, which is what lets the tests replay a real
capture byte for byte. One call per Linkedid; channels join a call by Uniqueid. The calls
pbxlink's own Originates make carry their tag (see pbxlink.ami.originated).

A campaign's broadcast is answered when its contact picks up (the DialEnd ANSWER of the Local
pair's `;2`), known to be a broadcast by the Context (ending in `-broadcast`) of its
OriginateResponse or of its `;1`; a customer-first callback, whose customer is reached the same
way, stays unanswered until an agent takes it. AMD()'s verdict is the AMDSTATUS VarSet on any
channel of the call (HUMAN, MACHINE, NOTSURE; HANGUP says nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pbxlink.ami.channels import agent_map, local_half, looks_external
from pbxlink.ami.control import TAG_VARIABLE
from pbxlink.ami.originated import (
    AMD_STATUS,
    ENDPOINT_EVENTS,
    ORIGINATE_ACTION,
    Originated,
    chanvar_tag,
    rings_endpoint,
    runs_broadcast,
)
from pbxlink.domain.agent_map import AgentMap
from pbxlink.domain.call_state import CallState, Chan
from pbxlink.domain.calls import CallEvent, CallRecord, CallStarted, CallUpdated
from pbxlink.domain.headers import Event, field

log = logging.getLogger(__name__)

_UNKNOWN = {"", "<unknown>", "<Unknown>"}
#: the only channel variables that change a record
_VARIABLES = {"MIXMONITOR_FILENAME", "QUEUESTATUS", "AMDSTATUS", TAG_VARIABLE}


def _known(value: str) -> str | None:
    return None if value in _UNKNOWN else value


class AmiTracker(Originated):
    def __init__(self, pbx: str, agents: AgentMap | None = None) -> None:
        self.pbx = pbx
        self.agents = agents or agent_map(None)
        super().__init__()
        self._handlers: dict[str, Callable[[CallState, Chan, Event, datetime], list[CallEvent]]] = {
            "Newchannel": self._on_newchannel,
            "NewCallerid": self._on_newcallerid,
            "Newstate": self._on_location,
            "BridgeEnter": self._on_location,  # a channel bridged into an older call takes its Linkedid
            "VarSet": self._on_varset,
            "DialBegin": self._on_dial_begin,
            "DialEnd": self._on_dial_end,
            "QueueCallerJoin": self._on_queue_join,
            "QueueCallerAbandon": self._on_queue_abandon,
            "AgentCalled": self._on_agent_called,
            "AgentConnect": self._on_agent_connect,
            "AgentRingNoAnswer": self._on_agent_noanswer,
            "HangupRequest": self._on_hangup_request,
            "SoftHangupRequest": self._on_hangup_request,
            "Hangup": self._on_hangup,
        }

    @property
    def interest(self) -> dict[str, tuple[str, ...]]:
        """The events `feed` uses (name -> a substring one of which the frame must hold; () = any).

        The protocol parser drops every other frame before building it: most of the stream is
        events no record needs (RTCP, Cdr, device states, dialplan steps). A handler added here
        must be covered, or its events never arrive.
        """
        names = {*self._handlers, "DialBegin", "BlindTransfer", "AttendedTransfer", "Shutdown"}
        interest: dict[str, tuple[str, ...]] = dict.fromkeys(names, ())
        interest["VarSet"] = tuple(f"Variable: {v}" for v in sorted(_VARIABLES))
        interest["OriginateResponse"] = (f"ActionID: {ORIGINATE_ACTION}",)
        return interest

    # --- the event stream ----------------------------------------------------------------------

    def feed(self, event: Event, at: datetime) -> list[CallEvent]:
        """One AMI event; a malformed one is logged and skipped, never fatal."""
        name = field(event, "Event")
        try:
            if name == "BlindTransfer":
                return self._on_blind_transfer(event, at)
            if name == "AttendedTransfer":
                return self._on_attended_transfer(event, at)
            if name == "DialBegin" and not field(event, "Channel"):
                return self._on_originate_dial(event)
            if name == "OriginateResponse":
                return self._on_originate_response(event)
            if name == "Shutdown":
                return self._end_all(at, seen=True, hangup_by="system")
            handler = self._handlers.get(name)
            if handler is None or (name == "VarSet" and field(event, "Variable") not in _VARIABLES):
                return []
            located = self._locate(name, event, at)
            if located is None:
                return []
            state, chan, started = located
            if state.record.origin is None and (tag := chanvar_tag(event)):
                state.placed(tag)
            if not state.broadcast and runs_broadcast(state, chan):
                started += state.mark_broadcast()
            if name in ENDPOINT_EVENTS and rings_endpoint(state, chan):
                return started + self._on_endpoint(state, chan, event, at)
            return started + handler(state, chan, event, at)
        except Exception:
            log.exception(
                "AMI %s: could not make sense of a %s event; skipped it", self.pbx, name or "nameless"
            )
            return []

    def _locate(
        self, name: str, event: Event, at: datetime
    ) -> tuple[CallState, Chan, list[CallEvent]] | None:
        """The call and channel an event is about, creating them when the event shows a new one."""
        uid, linkedid, channel = field(event, "Uniqueid"), field(event, "Linkedid"), field(event, "Channel")
        if not uid or not channel:
            return None
        if not linkedid:
            linkedid = self._chan_call.get(uid, "")
            if not linkedid:
                log.warning("AMI %s: %s for %s carries no Linkedid; skipped", self.pbx, name, channel)
                return None
        if linkedid in self._ended:
            return None
        started: list[CallEvent] = []
        known = self._chan_call.get(uid)
        if known is not None and known != linkedid and linkedid in self._calls:
            started += self._move(uid, known, linkedid, at)  # bridged into an older call (attended transfer)
        state = self._calls.get(linkedid) or self._calls.get(self._chan_call.get(uid, ""))
        if state is None:
            if name in ("Hangup", "HangupRequest", "SoftHangupRequest"):
                return None
            state = self._new_call(linkedid, event, at)
            started.append(CallStarted(at=at, call=state.record.copy()))
        chan = state.channels.get(uid)
        if chan is None:
            if name == "Hangup":
                return None
            chan = self._add_channel(state, uid, channel, event)
        chan.context = field(event, "Context") or chan.context
        chan.exten = field(event, "Exten") or chan.exten
        state.last_at = at
        return state, chan, started

    def _new_call(self, linkedid: str, event: Event, at: datetime) -> CallState:
        channel, exten = field(event, "Channel"), field(event, "Exten")
        agent = self.agents.agent(channel)
        if agent is None:
            direction, caller = "inbound", _known(field(event, "CallerIDNum"))
        else:
            direction, caller = ("outbound" if looks_external(exten) else "internal"), agent
        record = CallRecord(
            pbx=self.pbx,
            call_id=linkedid,
            direction=direction,  # type: ignore[arg-type]
            started_at=at,
            caller=caller,
            caller_name=_known(field(event, "CallerIDName")) if agent is None else None,
            callee=_known(exten) if exten != "s" else None,
        )
        state = CallState(record=record, origin=field(event, "Uniqueid"))
        self._calls[linkedid] = state
        return state

    def _add_channel(self, state: CallState, uid: str, name: str, event: Event) -> Chan:
        local = local_half(name)
        chan = Chan(uniqueid=uid, name=name, agent=self.agents.agent(name), local=local)
        if local is not None:
            how = state.pairs.get(local.pair)
            chan.dialled, chan.originated = how == "dialled", how == "originated"
            if any(
                c.local is not None and c.local.pair == local.pair and c.uniqueid in state.caller_uids
                for c in state.channels.values()
            ):
                state.caller_uids.add(uid)
        if uid == state.origin:
            state.caller_uids.add(uid)
        state.channels[uid] = chan
        self._chan_call[uid] = state.record.call_id
        return chan

    def _move(self, uid: str, old: str, new: str, at: datetime) -> list[CallEvent]:
        """A channel now belongs to another call; the call it leaves ends if it was its last."""
        self._chan_call[uid] = new
        source = self._calls.get(old)
        if source is None or uid not in source.channels:
            return []
        chan = source.channels.pop(uid)
        self._calls[new].channels[uid] = chan
        if chan.agent is not None:
            source.leave(chan.agent, at)
        return [] if source.channels else self._finish(source, at)

    # --- handlers ----------------------------------------------------------------------------

    def _on_newchannel(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        return []

    def _on_newcallerid(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        rec = state.record
        if (
            rec.direction != "inbound"
            or rec.answered_at is not None
            or chan.uniqueid not in state.caller_uids
        ):
            return []
        number, name = _known(field(event, "CallerIDNum")), _known(field(event, "CallerIDName"))
        if (number or rec.caller, name or rec.caller_name) == (rec.caller, rec.caller_name):
            return []
        rec.caller, rec.caller_name = number or rec.caller, name or rec.caller_name
        return [CallUpdated(at=at, call=rec.copy())]

    def _on_location(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        rec = state.record
        if rec.origin is not None:
            return []  # pbxlink's own call: its callee is whom it dials, never where its wire runs
        if rec.callee is None and chan.uniqueid in state.caller_uids and chan.exten not in ("", "s"):
            rec.callee = chan.exten
        return []

    def _on_varset(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        variable, value = field(event, "Variable"), field(event, "Value")
        if variable == "MIXMONITOR_FILENAME" and value:
            state.record.recording = value
        elif variable == "QUEUESTATUS" and value and not rings_endpoint(state, chan):
            state.queue_status(value)
        elif variable == TAG_VARIABLE:
            state.placed(value)
        elif variable == "AMDSTATUS" and value in AMD_STATUS:
            state.record.amd = AMD_STATUS[value]  # type: ignore[assignment]
        return []

    def _on_dial_begin(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        dest_uid, dest = field(event, "DestUniqueid"), field(event, "DestChannel")
        self._mark_pair(state, dest, "dialled")
        dest_agent = self.agents.agent(dest)
        rec = state.record
        if chan.agent is not None and chan.uniqueid in state.caller_uids and rec.answered_at is None:
            rec.direction = "internal" if dest_agent is not None else "outbound"
            dialled = chan.exten if looks_external(chan.exten) else field(event, "DestExten")
            rec.callee = dest_agent or _known(dialled) or rec.callee
        state.offer(at)
        if dest_agent is not None and dest_uid:
            return state.ring(dest_uid, dest_agent, at)
        return []

    def _on_dial_end(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        dest_uid, dest, status = (
            field(event, "DestUniqueid"),
            field(event, "DestChannel"),
            field(event, "DialStatus"),
        )
        dest_agent = self.agents.agent(dest)
        if status != "ANSWER":
            return state.ring_ended(dest_uid, status, at)
        state.ringing.pop(dest_uid, None)
        if dest_agent is not None:
            rec = state.record
            if rec.direction == "internal" and chan.agent is not None and chan.agent not in rec.agents:
                rec.agents.append(chan.agent)  # both extensions of an internal call talked
            return state.answer(dest_agent, at)
        if state.record.direction != "inbound":
            return state.answer(chan.agent, at)  # the far party of an outbound call answered
        return state.answer(None, at)  # forwarded outside, answered there

    def _on_queue_join(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        state.record.queue = state.record.queue or field(event, "Queue")
        state.offer(at)
        return []

    def _on_queue_abandon(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        state.queue_left(abandoned=True)
        return []

    def _on_agent_called(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        state.record.queue = state.record.queue or field(event, "Queue")
        agent = self.agents.agent(field(event, "DestChannel")) or self._member_agent(event)
        dest_uid = field(event, "DestUniqueid")
        return state.ring(dest_uid, agent, at) if agent and dest_uid else []

    def _on_agent_connect(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        state.record.queue = state.record.queue or field(event, "Queue")
        state.ringing.pop(field(event, "DestUniqueid"), None)
        agent = self.agents.agent(field(event, "DestChannel")) or self._member_agent(event)
        return state.answer(agent, at)

    def _on_agent_noanswer(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        return state.ring_ended(field(event, "DestUniqueid"), "NOANSWER", at)

    def _on_hangup_request(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        chan.hangup_requested = True
        state.hangup_signal(chan, requested=field(event, "Event") == "HangupRequest")
        return []

    def _on_hangup(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        if not chan.hangup_requested:
            state.hangup_signal(chan, requested=False)
        del state.channels[chan.uniqueid]
        self._chan_call.pop(chan.uniqueid, None)
        state.ringing.pop(chan.uniqueid, None)
        if chan.agent is not None and not any(c.agent == chan.agent for c in state.channels.values()):
            state.leave(chan.agent, at)
        if state.channels:
            return []
        return self._finish(state, at)

    def _on_blind_transfer(self, event: Event, at: datetime) -> list[CallEvent]:
        state = self._calls.get(field(event, "TransfererLinkedid") or field(event, "TransfereeLinkedid"))
        if state is None or field(event, "Result") != "Success":
            return []
        transferer = field(event, "TransfererChannel")
        from_ = self.agents.agent(transferer) or _known(field(event, "TransfererCallerIDNum"))
        return state.transfer(from_, _known(field(event, "Extension")), "blind", at)

    def _on_attended_transfer(self, event: Event, at: datetime) -> list[CallEvent]:
        state = self._calls.get(field(event, "OrigTransfererLinkedid"))
        if state is None or field(event, "Result") != "Success":
            return []
        from_ = self.agents.agent(field(event, "OrigTransfererChannel"))
        target = field(event, "TransferTargetChannel")
        to = self.agents.agent(target) or _known(field(event, "SecondTransfererConnectedLineNum"))
        events = state.transfer(from_, to, "attended", at)
        if to is not None and self.agents.agent(target) is not None:
            events += state.answer(to, at)
        return events
