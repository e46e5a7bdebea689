"""mod_callcenter's `CUSTOM callcenter::info` events for generated queue calls, as 103/104 show them.

Events about a channel (member-queue-start/end on the customer, bridge-agent-start/end on the
agent) carry its channel data with the CC-* headers last; the others (members-count,
agent-state-change, agent-offering, bridge-agent-fail) carry only CC-* headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pbxlink.esl.simulator.event import Value
from pbxlink.esl.simulator.legs import CallBuilder, Leg

SUBCLASS = "callcenter::info"
_LINES = {
    "member-queue-start": ("callcenter_function", 3113),
    "members-count": ("cc_queue_count", 878),
    "agent-state-change": ("cc_agent_update", 1067),
    "agent-offering": ("outbound_agent_thread_run", 1717),
    "bridge-agent-start": ("outbound_agent_thread_run", 1934),
    "bridge-agent-end": ("outbound_agent_thread_run", 2062),
    "bridge-agent-fail": ("outbound_agent_thread_run", 2200),
}


@dataclass(frozen=True)
class Member:
    """A caller waiting in a queue: mod_callcenter's member record."""

    queue: str  # support@default
    uuid: str  # CC-Member-UUID
    session: Leg
    joined: int  # epoch seconds

    def ids(self) -> list[tuple[str, str]]:
        profile = self.session.profile
        return [
            *[("CC-Member-UUID", self.uuid), ("CC-Member-Session-UUID", self.session.uuid)],
            *[
                ("CC-Member-CID-Name", profile["Caller-ID-Name"]),
                ("CC-Member-CID-Number", profile["Caller-ID-Number"]),
            ],
        ]


def _fire(
    b: CallBuilder,
    action: str,
    headers: Sequence[tuple[str, Value]],
    leg: Leg | None = None,
    where: tuple[str, int] | None = None,
) -> None:
    function, line = where or _LINES[action]
    b.fire("CUSTOM", leg, after=headers, subclass=SUBCLASS, calling=("mod_callcenter.c", function, line))


def member_start(b: CallBuilder, member: Member) -> None:
    action = ("CC-Action", "member-queue-start")
    _fire(b, action[1], [("CC-Queue", member.queue), action, *member.ids()], member.session)


def members_count(b: CallBuilder, queue: str, count: int) -> None:
    headers = [("CC-Queue", queue), ("CC-Action", "members-count")]
    _fire(b, "members-count", [*headers, ("CC-Count", str(count)), ("CC-Selection", "Single-Queue")])


def agent_state(b: CallBuilder, agent: str, state: str) -> None:
    headers = [("CC-Agent", agent), ("CC-Action", "agent-state-change"), ("CC-Agent-State", state)]
    _fire(b, "agent-state-change", headers)


def offering(b: CallBuilder, member: Member, agent: str) -> None:
    headers = [("CC-Queue", member.queue), ("CC-Action", "agent-offering"), ("CC-Agent", agent)]
    headers += [("CC-Agent-Type", "callback"), ("CC-Agent-System", "single_box")]
    _fire(b, "agent-offering", [*headers, *member.ids()])


def bridge_start(b: CallBuilder, member: Member, agent: str, leg: Leg, called: int, answered: int) -> None:
    headers = [("CC-Queue", member.queue), ("CC-Action", "bridge-agent-start"), ("CC-Agent", agent)]
    headers += [("CC-Agent-System", "single_box"), ("CC-Agent-UUID", leg.uuid)]
    headers += [("CC-Agent-Called-Time", str(called)), ("CC-Agent-Answered-Time", str(answered))]
    _fire(
        b, "bridge-agent-start", [*headers, ("CC-Member-Joined-Time", str(member.joined)), *member.ids()], leg
    )


def bridge_end(b: CallBuilder, member: Member, agent: str, leg: Leg, called: int, answered: int) -> None:
    headers = [("CC-Queue", member.queue), ("CC-Action", "bridge-agent-end"), ("CC-Hangup-Cause", "SUCCESS")]
    headers += [("CC-Agent", agent), ("CC-Agent-System", "single_box"), ("CC-Agent-UUID", leg.uuid)]
    headers += [("CC-Agent-Bridged", "true"), ("CC-Agent-Called-Time", str(called))]
    headers += [("CC-Agent-Answered-Time", str(answered)), ("CC-Member-Joined-Time", str(member.joined))]
    _fire(
        b, "bridge-agent-end", [*headers, ("CC-Bridge-Terminated-Time", str(int(b.now))), *member.ids()], leg
    )


def bridge_fail(b: CallBuilder, member: Member, agent: str, cause: str, called: int) -> None:
    headers = [("CC-Queue", member.queue), ("CC-Action", "bridge-agent-fail"), ("CC-Hangup-Cause", cause)]
    headers += [("CC-Agent", agent), ("CC-Agent-System", "single_box"), ("CC-Agent-Called-Time", str(called))]
    headers += [("CC-Agent-Aborted-Time", str(int(b.now))), *member.ids()]
    _fire(b, "bridge-agent-fail", [*headers, ("CC-Member-Joined-Time", str(member.joined))])


def member_answered_end(
    b: CallBuilder, member: Member, agent: str, leg: Leg, called: int, answered: int
) -> None:
    """member-queue-end after a talk: `CC-Cause: Terminated`."""
    headers = [("CC-Queue", member.queue), ("CC-Action", "member-queue-end"), ("CC-Hangup-Cause", "SUCCESS")]
    headers += [("CC-Cause", "Terminated"), ("CC-Agent", agent), ("CC-Agent-System", "single_box")]
    headers += [("CC-Agent-UUID", leg.uuid), ("CC-Agent-Called-Time", str(called))]
    headers += [("CC-Agent-Answered-Time", str(answered)), ("CC-Member-Leaving-Time", str(int(b.now)))]
    headers += [("CC-Member-Joined-Time", str(member.joined)), *member.ids()]
    _fire(b, "member-queue-end", headers, member.session, ("outbound_agent_thread_run", 2098))


def member_cancel_end(b: CallBuilder, member: Member) -> None:
    """member-queue-end when the caller gives up: `CC-Cause: Cancel`, `CC-Cancel-Reason: BREAK_OUT`."""
    headers = [("CC-Queue", member.queue), ("CC-Action", "member-queue-end")]
    headers += [("CC-Member-Leaving-Time", str(int(b.now))), ("CC-Member-Joined-Time", str(member.joined))]
    headers += [("CC-Cause", "Cancel"), ("CC-Cancel-Reason", "BREAK_OUT"), *member.ids()]
    _fire(b, "member-queue-end", headers, member.session, ("callcenter_function", 3274))
