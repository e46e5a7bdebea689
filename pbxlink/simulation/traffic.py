"""The mix of generated calls both simulators draw from."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class TrafficMix:
    """Relative weights of call kinds, and the shares that shape answered calls."""

    answered: float = 4.0
    no_answer: float = 1.0
    busy: float = 1.0
    queue_answered: float = 3.0
    queue_abandoned: float = 1.0
    agent_hangs_up: float = 0.5  # share of answered calls the agent ends (else the customer)
    recorded: float = 0.5  # share of direct calls recorded (MixMonitor, record_session)
    ring: tuple[float, float] = (1.0, 8.0)
    talk: tuple[float, float] = (5.0, 60.0)

    @classmethod
    def parse(cls, text: str) -> TrafficMix:
        """`answered=5,busy=0,…` (weights and shares by field name), for the CLI."""
        known = {f.name for f in fields(cls)} - {"ring", "talk"}
        values: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = item.partition("=")
            if name not in known:
                raise ValueError(f"unknown mix entry {name!r}; known: {', '.join(sorted(known))}")
            values[name] = float(value)
        return cls(**values)  # type: ignore[arg-type]

    def kinds(self) -> tuple[list[str], list[float]]:
        names = ["answered", "no_answer", "busy", "queue_answered", "queue_abandoned"]
        return names, [getattr(self, name) for name in names]
