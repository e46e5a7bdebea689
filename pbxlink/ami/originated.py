"""Calls an Originate made: the tag pbxlink put on its own, and how the originate reaches its first party.

pbxlink's Originates set the channel variable PBXLINK_TAG and the ActionID
`pbxlink-originate-<tag>`; the call learns its tag from whichever comes first: the VarSet of
the variable, a `ChanVariable` header (manager.conf `channelvars = PBXLINK_TAG`) or the
OriginateResponse, whose Uniqueid names the originated channel. Anything else is not ours.

pbxlink's `Originate Channel: Local/<endpoint>@<context>` makes a Local pair: its far half
(`;2`) rings the first party (an agent, a queue's members, or for a customer-first callback the
customer); once someone answers there, the near half (`;1`) runs the originate's Context/Exten.
Reaching the first party is not the call's answer: that is the second party (the customer an
agent calls, the agent a waiting customer reaches) answering; except in a campaign's broadcast,
whose contact is the only party (the OriginateResponse's Context, ending in `-broadcast`, says so).
Other Originates keep the plain reading (the captures inject their callers that way: their `;2`
is the caller's side).
"""

from __future__ import annotations

from datetime import datetime

from pbxlink.ami.channels import local_half
from pbxlink.ami.control import ORIGINATE_ACTION, TAG_VARIABLE
from pbxlink.ami.resync import Resync
from pbxlink.domain.agent_map import AgentMap
from pbxlink.domain.call_state import BROADCAST_SUFFIX, CallState, Chan
from pbxlink.domain.calls import CallEvent
from pbxlink.domain.headers import Event, field

#: the ActionID of pbxlink's Originates is this and the originate's tag (pbxlink.ami.control)
#: what the far half of an originated Local pair does to reach the originate's first party
ENDPOINT_EVENTS = frozenset(
    {
        "DialBegin",
        "DialEnd",
        "QueueCallerJoin",
        "QueueCallerAbandon",
        "AgentCalled",
        "AgentConnect",
        "AgentRingNoAnswer",
    }
)
_CHANVAR_PREFIX = f"{TAG_VARIABLE}="
#: AMD()'s AMDSTATUS -> CallRecord.amd (HANGUP: the caller hung up before it could tell)
AMD_STATUS = {"HUMAN": "human", "MACHINE": "machine", "NOTSURE": "notsure"}


def rings_endpoint(state: CallState, chan: Chan) -> bool:
    """The far half of the Local pair one of pbxlink's Originates made: it rings the first party.

    Only for pbxlink's own: other Originates (a test harness faking a caller, say) run anything there.
    """
    return (
        state.record.origin is not None
        and chan.originated
        and chan.local is not None
        and chan.local.half == 2
    )


def runs_broadcast(state: CallState, chan: Chan) -> bool:
    """`;1` of pbxlink's originate runs a broadcast context (after our restart, the one sign left)."""
    return (
        state.record.origin is not None
        and chan.uniqueid in state.caller_uids
        and chan.context.endswith(BROADCAST_SUFFIX)
    )


def chanvar_tag(event: Event) -> str | None:
    """PBXLINK_TAG from `ChanVariable: PBXLINK_TAG=<tag>` (or a `ChanVariable(PBXLINK_TAG)` header)."""
    named = event.get(f"ChanVariable({TAG_VARIABLE})")
    if isinstance(named, str):
        return named
    values = event.get("ChanVariable")
    for item in [values] if isinstance(values, str) else values or ():
        if item.startswith(_CHANVAR_PREFIX):
            return item[len(_CHANVAR_PREFIX) :]
    return None


class Originated(Resync):
    """The tracker's Originate half; AmiTracker supplies the rest of the event stream."""

    agents: AgentMap

    def _on_originate_dial(self, event: Event) -> list[CallEvent]:
        """An Originate ringing its first leg: an agent's phone for click-to-call, or a Local wire."""
        state = self._calls.get(field(event, "DestLinkedid"))
        if state is None:
            return []
        dest = field(event, "DestChannel")
        self._mark_pair(state, dest, "originated")
        if field(event, "DestUniqueid") == state.origin and self.agents.agent(dest) is not None:
            state.record.direction = "outbound"  # click-to-call: the agent's phone is rung first
        return []

    def _on_originate_response(self, event: Event) -> list[CallEvent]:
        """How one of pbxlink's Originates went: the call of the channel it made carries its tag.

        A failure before any channel existed (Uniqueid `<null>`) makes no call and so no record.
        """
        action = field(event, "ActionID")
        if not action.startswith(ORIGINATE_ACTION):
            return []
        uid, channel = field(event, "Uniqueid"), field(event, "Channel")
        state = self._calls.get(self._chan_call.get(uid) or self._call_of_channel(channel) or "")
        if state is None:
            return []
        state.placed(action[len(ORIGINATE_ACTION) :])
        return state.mark_broadcast() if field(event, "Context").endswith(BROADCAST_SUFFIX) else []

    def _call_of_channel(self, name: str) -> str | None:
        for state in self._calls.values():
            if any(c.name == name for c in state.channels.values()):
                return state.record.call_id
        return None

    def _on_endpoint(self, state: CallState, chan: Chan, event: Event, at: datetime) -> list[CallEvent]:
        """The far half of an originated pair rings the first party: not the call's answer.

        An agent rung there rings (their screen-pop, the call's tag on it); one who answers places
        the rest of the call; a first party that does not answer (busy, no answer) says why the
        call was missed; a contact who answers there answers a broadcast. A queue rung there is
        the call's queue.
        """
        name, dest = field(event, "Event"), field(event, "DestChannel")
        dest_uid = field(event, "DestUniqueid")
        agent = self.agents.agent(dest) or (self._member_agent(event) if name.startswith("Agent") else None)
        if name in ("QueueCallerJoin", "AgentCalled"):
            state.record.queue = state.record.queue or field(event, "Queue")
        if name in ("DialBegin", "AgentCalled") and agent is not None and dest_uid:
            self._mark_pair(state, dest, "dialled")
            return state.ring(dest_uid, agent, at, offer=False)  # the agent's screen-pop, tag and all
        if name == "DialBegin":
            self._mark_pair(state, dest, "dialled")
        elif name == "AgentRingNoAnswer":
            return state.ring_ended(dest_uid, "NOANSWER", at)
        elif name in ("DialEnd", "AgentConnect"):
            status = "ANSWER" if name == "AgentConnect" else field(event, "DialStatus")
            if status != "ANSWER":
                return state.ring_ended(dest_uid, status, at)
            state.ringing.pop(dest_uid, None)
            if agent is not None:
                self._answered_by(state, chan, agent)
            else:
                return state.reached(at)
        return []

    @staticmethod
    def _answered_by(state: CallState, wire: Chan, agent: str) -> None:
        """`agent` took the originate (a queue's member, or the agent rung): the pair stands for them now."""
        assert wire.local is not None
        for c in state.channels.values():
            if c.local is not None and c.local.pair == wire.local.pair:
                c.agent = agent
        if state.record.answered_at is None:
            state.record.caller = agent

    @staticmethod
    def _mark_pair(state: CallState, channel: str, how: str) -> None:
        """Remember how a Local pair came to be: that says which half stands for a person."""
        local = local_half(channel)
        if local is None:
            return
        state.pairs[local.pair] = how
        for chan in state.channels.values():
            if chan.local is not None and chan.local.pair == local.pair:
                chan.dialled, chan.originated = how == "dialled", how == "originated"

    def _member_agent(self, event: Event) -> str | None:
        """A queue member's extension from its Interface (`PJSIP/201`, `Local/201@from-queue/n`)."""
        interface = field(event, "Interface")
        return self.agents.agent(f"{interface}-0;2") or self.agents.agent(f"{interface}-0") or None
