"""Generated Asterisk 22 call traffic for the simulator, the tests and the benchmark.

`SyntheticPbx` invents calls for N agents (PJSIP/201 …) in a configurable mix, each a
timeline of (seconds, event headers) plus the outcome a tracker must derive from it. The
timelines run live in the simulator (overlapping, on the loop) or are pre-rendered to bytes
(`render_bulk`) for the benchmark.
"""

from __future__ import annotations

import random
import re
import time
from collections import deque
from collections.abc import Iterable, Sequence

from pbxlink.ami.simulator import broadcast, callbacks
from pbxlink.ami.simulator.builder import CallBuilder, Ids
from pbxlink.ami.simulator.flow import Answer, Caller, Site
from pbxlink.ami.simulator.scenarios import click_to_call, direct_call, queue_call
from pbxlink.ami.simulator.wire import Headers, encode, format_timestamp
from pbxlink.simulation.callbacks import Customers, customer_first, free_members, queue_of
from pbxlink.simulation.callbacks import broadcast as is_broadcast
from pbxlink.simulation.timeline import BulkStream, CallTimeline, ExpectedCall, merge
from pbxlink.simulation.traffic import TrafficMix

__all__ = ["SyntheticPbx", "TrafficMix", "render_bulk"]

#: Caller names, several with multibyte UTF-8 so it shows up on the wire.
CALLER_NAMES = (
    "José Müller",
    "Zoë Ægir",
    "Renée Côté",
    "Łukasz Żółć",
    "Søren Kierkegård",
    "Ünal Çelik",
    "山田 太郎",
    "Jane Customer",
    "Bob Smith",
    "",
)
QUEUE_DIDS = {"support": "1000", "sales": "1001"}
FOREVER = float("inf")


class SyntheticPbx:
    """Invents calls for `agents` agents (201, 202, …) in queues `support` (all) and `sales` (half).

    Ids are server-wide and agents are not offered a call while on another, so overlapping
    calls stay consistent. `history` keeps the latest expected outcomes.
    """

    def __init__(
        self,
        agents: int = 10,
        mix: TrafficMix | None = None,
        seed: int | None = None,
        chanvars: Sequence[str] = (),
    ) -> None:
        if agents < 1:
            raise ValueError("at least one agent")
        self.agents = [str(201 + i) for i in range(agents)]
        self.queues = {"support": list(self.agents), "sales": self.agents[len(self.agents) // 2 :]}
        self.mix = mix or TrafficMix()
        self.rng = random.Random(seed)
        self.chanvars = tuple(chanvars)
        self.history: deque[ExpectedCall] = deque(maxlen=10_000)
        self.reset()

    def reset(self) -> None:
        """Start over, as after a PBX restart: counters from zero, every agent free."""
        self.ids = Ids()
        self.site = Site(self.queues, int(time.time()))
        self.busy_until: dict[str, float] = {}

    def next_call(self, start: float) -> CallTimeline:
        """One call starting at `start` (epoch), of a kind drawn from the mix."""
        names, weights = self.mix.kinds()
        kind = self.rng.choices(names, weights)[0]
        free = [a for a in self.agents if self.busy_until.get(a, 0.0) <= start]
        b = self._builder(start)
        caller = self._caller(rewrite=kind == "answered" and self.rng.random() < 0.3)
        if kind.startswith("queue"):
            queue = self.rng.choice(sorted(self.queues))
            members = [a for a in self.queues[queue] if a in free]
            offered = self.rng.sample(members, min(2, len(members)))
            answer = self._answer() if kind == "queue_answered" and offered else None
            abandon = self.rng.uniform(3.0, 19.0)
            expected = queue_call(b, self.site, caller, QUEUE_DIDS[queue], queue, offered, answer, abandon)
            return self._done(b, expected, offered)
        agent = self.rng.choice(free or self.agents)
        outcome: str | Answer = "busy" if not free or kind == "busy" else kind
        if outcome == "answered":
            outcome = self._answer()
        record = self.rng.random() < self.mix.recorded
        expected = direct_call(b, self.site, caller, f"1{agent}", agent, outcome, record)
        return self._done(b, expected, [] if outcome == "busy" else [agent])

    def calls(self, count: int, start: float, calls_per_minute: float) -> list[CallTimeline]:
        """`count` calls arriving at `calls_per_minute` from `start` (Poisson arrivals)."""
        timelines, at = [], start
        for _ in range(count):
            timelines.append(self.next_call(at))
            at += self.rng.expovariate(calls_per_minute / 60.0)
        return timelines

    def long_lived(self, count: int, start: float) -> list[CallTimeline]:
        """`count` inbound calls answered and kept up (no hangup ever), for memory tests."""
        timelines = []
        for i in range(count):
            agent = self.agents[i % len(self.agents)]
            b = self._builder(start + i * 0.001)
            answer = Answer(self._uniform(self.mix.ring), None, agent_hangs_up=False)
            expected = direct_call(b, self.site, self._caller(), f"1{agent}", agent, answer, record=False)
            timelines.append(self._done(b, expected, [agent]))
        return timelines

    def originate(
        self,
        channel: str,
        number: str,
        start: float,
        *,
        context: str,
        callerid: str,
        action_id: str,
        variables: Sequence[tuple[str, str]] = (),
        timeout: float = 30.0,
        customers: Customers | None = None,
    ) -> CallTimeline | Headers:
        """AMI Originate. `PJSIP/201` rings and answers, then `number` rings (click-to-call);
        `Local/<endpoint>@<context>` plays a callback (agent or customer first, by `context`) or a
        campaign's broadcast, the customer doing what `customers` says. One that fails before any
        channel exists (an unknown endpoint, a customer marked `fail` rung first) is only its
        OriginateResponse."""
        local = re.fullmatch(r"Local/([^@/;]+)@([^/;]+)(?:/n)?", channel)
        b = self._builder(start)
        answer, ring = self._answer(), self._uniform(self.mix.ring)
        if local is None:
            agent = channel.split("/", 1)[-1].split("-", 1)[0] or self.agents[0]
            cid = _caller_id(callerid, (agent, f"Agent {agent}"))
            expected = click_to_call(
                b, self.site, agent, number, cid, context, answer, action_id, ring, variables
            )
            return self._done(b, expected, [agent])
        endpoint, dial_context = local.groups()
        cid = _caller_id(callerid, ("<unknown>", "<unknown>"))
        o = callbacks.Originate(
            endpoint, dial_context, context, number, cid, action_id, tuple(variables), timeout
        )
        customers = customers or Customers()
        failed = [("Event", "OriginateResponse"), ("Privilege", "call,all"), *o.response(None, "0")]
        if is_broadcast(context):
            if customers[endpoint] == "fail":
                return failed
            queue = queue_of(dict(variables).get("PBXLINK_QUEUE", ""), self.queues, QUEUE_DIDS)
            pressed = queue is not None and customers[endpoint] == "press1"
            agents = free_members(self.queues, self.busy_until, queue, start, 2) if pressed else []
            expected = broadcast.broadcast(b, self.site, o, customers[endpoint], queue, agents, answer, ring)
            return self._done(b, expected, agents[:1])
        if customer_first(context):
            queue = queue_of(number, self.queues, QUEUE_DIDS)
            if queue is None or customers[endpoint] == "fail":
                return failed
            agents = free_members(self.queues, self.busy_until, queue, start, 2)
            expected = callbacks.customer_first(
                b, self.site, o, customers[endpoint], queue, agents, answer, ring
            )
            return self._done(b, expected, agents[:1])
        queue = queue_of(endpoint, self.queues, QUEUE_DIDS)
        if queue is None and endpoint not in self.agents:
            return failed
        agents = free_members(self.queues, self.busy_until, queue, start, 2) if queue else [endpoint]
        expected = callbacks.agent_first(b, self.site, o, queue, agents, customers[number], answer, ring)
        return self._done(b, expected, agents[:1])

    def _builder(self, start: float) -> CallBuilder:
        chanvars = [(name, str(self.rng.randrange(10**6))) for name in self.chanvars]
        return CallBuilder(self.ids, start, self.rng, chanvars)

    def _done(self, b: CallBuilder, expected: ExpectedCall, agents: Iterable[str]) -> CallTimeline:
        until = b.start + b.t if expected.ended else FOREVER
        for agent in agents:
            self.busy_until[agent] = until
        self.history.append(expected)
        return CallTimeline(b.start, b.events, expected)

    def _caller(self, rewrite: bool = False) -> Caller:
        number = f"+1555{self.rng.randrange(10**7):07d}"
        return Caller(number, self.rng.choice(CALLER_NAMES), number[2:] if rewrite else number)

    def _answer(self) -> Answer:
        hangs_up = self.rng.random() < self.mix.agent_hangs_up
        return Answer(self._uniform(self.mix.ring), self._uniform(self.mix.talk), hangs_up)

    def _uniform(self, bounds: tuple[float, float]) -> float:
        return round(self.rng.uniform(*bounds), 3)


def render_bulk(
    events: int,
    *,
    agents: int = 20,
    seed: int = 0,
    timestamps: bool = True,
    chanvars: Sequence[str] = ("CUSTOMER_ID", "CRM_TICKET"),
    calls_per_minute: float = 600.0,
) -> BulkStream:
    """At least `events` events of whole calls as one byte blob, as fast as the benchmark wants them.

    Every channel event carries one `ChanVariable:` line per `chanvars` name (repeated
    headers), and caller names include multibyte UTF-8.
    """
    pbx = SyntheticPbx(agents, seed=seed, chanvars=chanvars)
    timelines: list[CallTimeline] = []
    count, at = 0, time.time()
    while count < events:
        timeline = pbx.next_call(at)
        timelines.append(timeline)
        count += len(timeline.events)
        at += pbx.rng.expovariate(calls_per_minute / 60.0)
    parts = [_frame(headers, ts if timestamps else None) for ts, headers in merge(timelines)]
    return BulkStream(b"".join(parts), count, [tl.expected for tl in timelines])


def _caller_id(callerid: str, default: tuple[str, str]) -> tuple[str, str]:
    """(number, name) from an Originate CallerID: `"Name" <number>`, `Name <number>` or a number."""
    match = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', callerid)
    if match:
        return match.group(2), match.group(1)
    return (callerid, default[1]) if callerid else default


def _frame(headers: Headers, timestamp: float | None) -> bytes:
    if timestamp is None:
        return encode(headers)
    stamp = ("Timestamp", format_timestamp(timestamp))
    return encode([headers[0], headers[1], stamp, *headers[2:]])
