"""A tiny builder of Asterisk 22 event sequences (PJSIP-style), for call flows the captures lack."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pbxlink.ami.tracker import AmiTracker
from pbxlink.domain.calls import CallEnded, CallEvent

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@dataclass
class Ch:
    name: str
    uniqueid: str
    linkedid: str
    number: str
    cid_name: str = ""
    context: str = "from-trunk"
    exten: str = "100"
    state: str = "Ring"

    def fields(self) -> dict[str, str]:
        return {
            "Channel": self.name,
            "ChannelStateDesc": self.state,
            "CallerIDNum": self.number,
            "CallerIDName": self.cid_name,
            "Context": self.context,
            "Exten": self.exten,
            "Uniqueid": self.uniqueid,
            "Linkedid": self.linkedid,
        }


@dataclass
class Flow:
    """Events with their times; `t` advances with `wait`."""

    events: list[tuple[datetime, dict[str, str]]] = field(default_factory=list)
    t: float = 0.0
    _seq: int = 0

    def wait(self, seconds: float) -> Flow:
        self.t += seconds
        return self

    def at(self) -> datetime:
        return T0 + timedelta(seconds=self.t)

    def new(
        self,
        endpoint: str,
        number: str,
        *,
        linkedid: str | None = None,
        exten: str = "100",
        context: str = "from-trunk",
        name: str = "",
        channel: str | None = None,
    ) -> Ch:
        """A new channel: `PJSIP/<endpoint>-<seq>` unless `channel` names it."""
        uid = f"1795440000.{self._seq}"
        channel = channel or f"PJSIP/{endpoint}-{self._seq:08x}"
        chan = Ch(channel, uid, linkedid or uid, number, name, context, exten)
        self._seq += 1
        self.ev("Newchannel", chan)
        return chan

    def ev(self, event: str, chan: Ch | None = None, **extra: str) -> Flow:
        fields = {"Event": event, **(chan.fields() if chan else {}), **extra}
        self.events.append((self.at(), fields))
        return self

    def dest(self, event: str, caller: Ch, dest: Ch, **extra: str) -> Flow:
        d = {f"Dest{k}": v for k, v in dest.fields().items()}
        return self.ev(event, caller, **d, **extra)

    def ring(self, caller: Ch, dest: Ch) -> Flow:
        self.dest("DialBegin", caller, dest)
        dest.state = "Ringing"
        return self.ev("Newstate", dest)

    def answer(self, caller: Ch, dest: Ch) -> Flow:
        dest.state = caller.state = "Up"
        self.ev("Newstate", dest).dest("DialEnd", caller, dest, DialStatus="ANSWER")
        return self.ev("BridgeEnter", dest, BridgeUniqueid="b1").ev(
            "BridgeEnter", caller, BridgeUniqueid="b1"
        )

    def bye(self, chan: Ch, *others: Ch) -> Flow:
        """`chan`'s far end hangs up (SIP BYE/CANCEL); Asterisk then hangs up the others."""
        self.ev("HangupRequest", chan, Cause="16").ev("Hangup", chan, Cause="16")
        for other in others:
            self.ev("SoftHangupRequest", other, Cause="16").ev("Hangup", other, Cause="16")
        return self

    def system_hangup(self, *chans: Ch) -> Flow:
        for chan in chans:
            self.ev("SoftHangupRequest", chan, Cause="16").ev("Hangup", chan, Cause="16")
        return self

    def run(self, tracker: AmiTracker | None = None) -> list[CallEvent]:
        tracker = tracker or AmiTracker("main")
        out: list[CallEvent] = []
        for at, fields in self.events:
            out += tracker.feed(fields, at)
        self.events.clear()
        return out


def ended(events: list[CallEvent]) -> list[dict[str, object]]:
    return [e.call.to_dict() for e in events if isinstance(e, CallEnded)]
