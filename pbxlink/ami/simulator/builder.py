"""Building blocks of generated Asterisk 22 traffic: PJSIP channels and the events they emit.

Field names, order and values follow the `sip/` captures (tests/fixtures/asterisk/sip/), so a
generated call reads like a real one to the client and the tracker.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field

from pbxlink.ami.simulator.wire import CAUSE_TEXT, Headers

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
DIAL_VARS = ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME", "ANSWEREDTIME", "DIALEDTIME", "RINGTIME")
_STEP = 0.0001  # between events of one burst, so a call's events keep their order when merged


@dataclass
class Ids:
    """Channel-name suffixes and Uniqueid sequence numbers: server-wide counters, as in Asterisk."""

    channel_seq: int = 0
    uniqueid_seq: int = 0
    local_seq: int = 0

    def channel(self, endpoint: str) -> str:
        self.channel_seq += 1
        return f"PJSIP/{endpoint}-{self.channel_seq - 1:08x}"

    def local(self, endpoint: str, context: str) -> str:
        """A Local pair's name without its `;1`/`;2`: core_local numbers pairs on their own."""
        self.local_seq += 1
        return f"Local/{endpoint}@{context}-{self.local_seq - 1:08x}"

    def uniqueid(self, epoch: float) -> str:
        self.uniqueid_seq += 1
        return f"{int(epoch)}.{self.uniqueid_seq - 1}"


@dataclass
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    state: int
    cid_num: str
    cid_name: str
    context: str
    exten: str
    conn_num: str = "<unknown>"
    conn_name: str = "<unknown>"
    priority: int = 1
    next_priority: int = 1
    chanvars: Headers = field(default_factory=list)

    def snapshot(self, prefix: str = "") -> Headers:
        return [
            (prefix + "Channel", self.name),
            (prefix + "ChannelState", str(self.state)),
            (prefix + "ChannelStateDesc", STATE_DESC[self.state]),
            (prefix + "CallerIDNum", self.cid_num),
            (prefix + "CallerIDName", self.cid_name),
            (prefix + "ConnectedLineNum", self.conn_num),
            (prefix + "ConnectedLineName", self.conn_name),
            (prefix + "Language", "en"),
            (prefix + "AccountCode", ""),
            (prefix + "Context", self.context),
            (prefix + "Exten", self.exten),
            (prefix + "Priority", str(self.priority)),
            (prefix + "Uniqueid", self.uniqueid),
            (prefix + "Linkedid", self.linkedid),
            *((prefix + "ChanVariable", f"{name}={value}") for name, value in self.chanvars),
        ]


class CallBuilder:
    """Accumulates one call's events; `t` is the current time in seconds since the call started."""

    def __init__(self, ids: Ids, start: float, rng: random.Random, chanvars: Headers) -> None:
        self.ids, self.start, self.rng, self.chanvars = ids, start, rng, chanvars
        self.events: list[tuple[float, Headers]] = []
        self.t = 0.0

    def wait(self, seconds: float) -> None:
        self.t += seconds

    def emit(self, event: str, privilege: str, *headers: tuple[str, str]) -> None:
        self.events.append((self.t, [("Event", event), ("Privilege", f"{privilege},all"), *headers]))
        self.t += _STEP

    def channel(
        self, endpoint: str, state: int, cid: tuple[str, str], context: str, exten: str, linkedid: str = ""
    ) -> Channel:
        """A new channel (Newchannel); without `linkedid` it starts a call and links to itself."""
        return self._new(self.ids.channel(endpoint), state, cid, context, exten, linkedid)

    def _new(
        self, name: str, state: int, cid: tuple[str, str], context: str, exten: str, linkedid: str
    ) -> Channel:
        uniqueid = self.ids.uniqueid(self.start + self.t)
        ch = Channel(
            name, uniqueid, linkedid or uniqueid, state, *cid, context, exten, chanvars=self.chanvars
        )
        self.emit("Newchannel", "call", *ch.snapshot())
        return ch

    def local_pair(self, endpoint: str, context: str, cid: tuple[str, str]) -> tuple[Channel, Channel]:
        """An Originate's `Local/<endpoint>@<context>`: `;1` (Down) starts the call, `;2` (Ring) runs
        `context` to reach the endpoint; LocalBridge joins them, as in the click_to_call capture."""
        pair = self.ids.local(endpoint, context)
        near = self._new(f"{pair};1", 0, ("<unknown>", "<unknown>"), context, endpoint, "")
        far = self._new(f"{pair};2", 4, ("<unknown>", "<unknown>"), context, endpoint, near.linkedid)
        for ch in (near, far):
            ch.cid_num, ch.cid_name = cid
        self.emit(
            "LocalBridge",
            "call",
            *near.snapshot("LocalOne"),
            *far.snapshot("LocalTwo"),
            *[("Context", context), ("Exten", endpoint), ("LocalOptimization", "No")],
        )
        return near, far

    def var(self, ch: Channel, name: str, value: str) -> None:
        self.emit("VarSet", "dialplan", *ch.snapshot(), ("Variable", name), ("Value", value))

    def exten(self, ch: Channel, app: str, data: str, advance: bool = True) -> None:
        """Newexten: the dialplan runs `app` at the channel's next priority (AppDial keeps it)."""
        if advance:
            ch.priority, ch.next_priority = ch.next_priority, ch.next_priority + 1
        self.emit(
            "Newexten",
            "dialplan",
            *ch.snapshot(),
            ("Extension", ch.exten),
            ("Application", app),
            ("AppData", data),
        )

    def newstate(self, ch: Channel, state: int) -> None:
        ch.state = state
        self.emit("Newstate", "call", *ch.snapshot())

    def callerid(self, ch: Channel, number: str) -> None:
        ch.cid_num = number
        self.emit(
            "NewCallerid",
            "call",
            *ch.snapshot(),
            ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"),
        )

    def connected(self, ch: Channel, number: str, name: str) -> None:
        ch.conn_num, ch.conn_name = number, name
        self.emit("NewConnectedLine", "call", *ch.snapshot())

    def dial(self, event: str, caller: Channel, dest: Channel, *extra: tuple[str, str]) -> None:
        """DialBegin / DialState / DialEnd: the caller's snapshot, then the Dest one."""
        self.emit(event, "call", *caller.snapshot(), *dest.snapshot("Dest"), *extra)

    def dial_vars(self, ch: Channel, values: dict[str, str] | None = None) -> None:
        for name in DIAL_VARS:
            self.var(ch, name, (values or {}).get(name, ""))

    def device(self, device: str, state: str) -> None:
        self.emit("DeviceStateChange", "call", ("Device", device), ("State", state))

    def member_status(self, queue: str, agent: str, status: int, login_time: int) -> None:
        """QueueMemberStatus: Asterisk sends it for members even on direct Dial() calls."""
        self.emit(
            "QueueMemberStatus",
            "agent",
            *[("Queue", queue), ("MemberName", f"Agent {agent}"), ("Interface", f"PJSIP/{agent}")],
            *[("StateInterface", f"PJSIP/{agent}"), ("Membership", "static"), ("Penalty", "0")],
            *[("CallsTaken", "0"), ("LastCall", "0"), ("LastPause", "0"), ("LoginTime", str(login_time))],
            *[("InCall", "1" if status == 2 else "0"), ("Status", str(status)), ("Paused", "0")],
            *[("PausedReason", ""), ("Ringinuse", "0"), ("Wrapuptime", "0")],
        )

    def bridge(self, event: str, bridge_id: str, count: int, ch: Channel | None = None) -> None:
        """BridgeCreate / BridgeEnter / BridgeLeave / BridgeDestroy."""
        self.emit(
            event,
            "call",
            *[("BridgeUniqueid", bridge_id), ("BridgeType", "basic"), ("BridgeTechnology", "simple_bridge")],
            *[("BridgeCreator", "<unknown>"), ("BridgeName", "<unknown>"), ("BridgeNumChannels", str(count))],
            ("BridgeVideoSourceMode", "none"),
            *(ch.snapshot() if ch else []),
        )

    def new_bridge_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hangup_request(self, ch: Channel, cause: int | None, soft: bool = False) -> None:
        """HangupRequest: the channel's far end sent BYE/CANCEL; SoftHangupRequest: Asterisk did it."""
        cause_header = [("Cause", str(cause))] if cause is not None else []
        self.emit("SoftHangupRequest" if soft else "HangupRequest", "call", *ch.snapshot(), *cause_header)

    def hangup(self, ch: Channel, cause: int) -> None:
        self.emit("Hangup", "call", *ch.snapshot(), ("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT[cause]))

    def rtcp(self, ch: Channel, seconds: float) -> None:
        """RTCPSent noise, every 5 s per leg while media flows."""
        packets = int(seconds * 50)
        self.emit(
            "RTCPSent",
            "reporting",
            *ch.snapshot(),
            *[("To", "127.0.0.1:40711"), ("From", "127.0.0.1:15337"), ("MES", "88.1")],
            *[("SSRC", f"0x{self.rng.getrandbits(32):08x}"), ("PT", "200(SR)"), ("ReportCount", "0")],
            *[("SentNTP", f"{self.start + self.t:.6f}"), ("SentRTP", str(packets * 160))],
            *[("SentPackets", str(packets)), ("SentOctets", str(packets * 160))],
        )

    def talk(self, legs: list[Channel], seconds: float) -> None:
        """Let `seconds` of conversation pass, with the RTCP reports Asterisk sends meanwhile."""
        elapsed = 0.0
        while elapsed + 5.0 < seconds:
            self.wait(5.0 - len(legs) * _STEP)
            elapsed += 5.0
            for leg in legs:
                self.rtcp(leg, elapsed)
        self.wait(max(0.0, seconds - elapsed))

    def cdr(
        self,
        caller: Channel,
        dest: str,
        app: str,
        data: str,
        times: tuple[float | None, float],
        disposition: str,
    ) -> None:
        """The Cdr of one leg/dial attempt; `times` are (answered, ended) in call seconds."""
        answered, ended = times
        billable = int(ended - answered) if answered is not None else 0
        self.emit(
            "Cdr",
            "cdr",
            *[("AccountCode", ""), ("Source", caller.cid_num), ("Destination", caller.exten)],
            *[
                ("DestinationContext", caller.context),
                ("CallerID", f'"{caller.cid_name}" <{caller.cid_num}>'),
            ],
            *[("Channel", caller.name), ("DestinationChannel", dest), ("LastApplication", app)],
            *[("LastData", data), ("StartTime", self._clock(0.0))],
            ("AnswerTime", self._clock(answered) if answered is not None else ""),
            *[
                ("EndTime", self._clock(ended)),
                ("Duration", str(int(ended))),
                ("BillableSeconds", str(billable)),
            ],
            *[("Disposition", disposition), ("AMAFlags", "DOCUMENTATION"), ("UniqueID", caller.uniqueid)],
            ("UserField", ""),
        )

    def _clock(self, t: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.start + t))
