"""A tiny builder of FreeSWITCH event sequences on sofia channels, for flows the captures lack."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pbxlink.domain.calls import CallEnded, CallEvent
from pbxlink.esl.tracker import EslTracker

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
_ids = itertools.count(1)


@dataclass
class Leg:
    uuid: str
    name: str
    direction: str
    number: str
    cid_name: str
    dest: str
    other: str = ""

    def headers(self) -> dict[str, str]:
        h = {
            "Unique-ID": self.uuid,
            "Channel-Name": self.name,
            "Call-Direction": self.direction,
            "Caller-Caller-ID-Number": self.number,
            "Caller-Caller-ID-Name": self.cid_name,
            "Caller-Destination-Number": self.dest,
            "variable_uuid": self.uuid,
            "Answer-State": "ringing",
        }
        if self.other:
            h |= {"Other-Leg-Unique-ID": self.other, "Other-Type": "originator"}
            h |= {"variable_originating_leg_uuid": self.other, "Channel-Call-UUID": self.other}
        return h


@dataclass
class Flow:
    events: list[tuple[datetime, dict[str, str]]] = field(default_factory=list)
    t: float = 0.0

    def wait(self, seconds: float) -> Flow:
        self.t += seconds
        return self

    def at(self) -> datetime:
        return T0 + timedelta(seconds=self.t)

    def customer(self, number: str = "+15551112222", did: str = "100") -> Leg:
        uuid = f"00000000-0000-4000-8000-{next(_ids):012d}"
        leg = Leg(uuid, f"sofia/external/{number}@203.0.113.5", "inbound", number, "Ann Caller", did)
        return self.ev("CHANNEL_CREATE", leg) and leg

    def agent(self, ext: str, caller: Leg) -> Leg:
        uuid = f"00000000-0000-4000-8000-{next(_ids):012d}"
        leg = Leg(
            uuid, f"sofia/internal/{ext}@pbx.example.com", "outbound", caller.number, "", ext, caller.uuid
        )
        return self.ev("CHANNEL_CREATE", leg) and leg

    def ev(self, name: str, leg: Leg | None = None, **extra: str) -> Flow:
        self.events.append((self.at(), {"Event-Name": name, **(leg.headers() if leg else {}), **extra}))
        return self

    def bridge(self, a: Leg, b: Leg) -> Flow:
        self.ev("CHANNEL_ANSWER", b, **{"Answer-State": "answered"})
        return self.ev("CHANNEL_BRIDGE", a, **{"Other-Leg-Unique-ID": b.uuid, "Answer-State": "answered"})

    def hangup(self, leg: Leg, cause: str = "NORMAL_CLEARING", disposition: str = "", **extra: str) -> Flow:
        self.ev("CHANNEL_HANGUP", leg, **{"Hangup-Cause": cause}, **extra)
        complete = {"Hangup-Cause": cause, **extra}
        if disposition:
            complete["variable_sip_hangup_disposition"] = disposition
        return self.ev("CHANNEL_HANGUP_COMPLETE", leg, **complete)

    def run(self, tracker: EslTracker | None = None) -> list[CallEvent]:
        tracker = tracker or EslTracker("fs")
        out: list[CallEvent] = []
        for at, event in self.events:
            out += tracker.feed(event, at)
        self.events.clear()
        return out


def ended(events: list[CallEvent]) -> list[dict[str, object]]:
    return [e.call.to_dict() for e in events if isinstance(e, CallEnded)]
