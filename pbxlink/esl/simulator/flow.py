"""What a generated call is: its events on a timeline, and the outcome a tracker must derive from them.

Field names and values mirror pbxlink.domain.calls.CallRecord (and the AMI simulator's
ExpectedCall), so the same assertions run over both adapters.
"""

from __future__ import annotations

from dataclasses import dataclass


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
