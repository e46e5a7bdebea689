"""What a generated call is: its events on a timeline, and the outcome a tracker must derive from them.

Field names and values mirror pbxlink.domain.calls.CallRecord (and the AMI simulator's
ExpectedCall), so the same assertions run over both adapters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pbxlink.esl.simulator.event import EslEvent


@dataclass(frozen=True)
class ExpectedCall:
    """What a tracker must derive from a generated call (names as in pbxlink.domain.calls.CallRecord)."""

    call_id: str  # the customer leg's (or, for click-to-call, the agent leg's) Unique-ID
    direction: str
    caller: str
    caller_name: str | None
    callee: str | None
    agent: str | None
    agents: list[str]
    queue: str | None
    disposition: str  # answered / missed
    miss_reason: str | None  # no_answer / busy / abandoned
    hangup_by: str | None  # customer / agent / system; None while the call is up
    wait_seconds: float
    talk_seconds: float | None  # None while the call is up
    recording: str | None
    started_at: float
    ended: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CallTimeline:
    """One call: `events` are (seconds since `start`, event); `expected` is its outcome."""

    start: float
    events: list[tuple[float, EslEvent]]
    expected: ExpectedCall
    uuids: frozenset[str]  # every channel of the call, so a hangup from outside can stop the rest

    @property
    def call_id(self) -> str:
        return self.expected.call_id


@dataclass(frozen=True)
class Caller:
    number: str
    name: str


@dataclass(frozen=True)
class Answer:
    """How an answered call goes: ring before answer, talk (None: kept up), who hangs up."""

    ring: float
    talk: float | None
    agent_hangs_up: bool


@dataclass(frozen=True)
class Site:
    """The switch the calls run on: its sofia profiles, addresses, queues and recordings folder."""

    queues: dict[str, list[str]]
    domain: str = "default"
    agent_profile: str = "internal"
    trunk_profile: str = "external"
    switch_ip: str = "192.0.2.2"
    trunk_ip: str = "203.0.113.5"
    recordings: str = "/opt/fs/recordings"

    def agent_contact(self, agent: str) -> tuple[str, int]:
        """Where the agent's phone registered: one address per extension, port 5060."""
        return f"192.0.2.{(int(agent) % 200) + 20}" if agent.isdigit() else "192.0.2.250", 5060
