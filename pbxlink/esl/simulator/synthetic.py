"""Generated FreeSWITCH 1.10 call traffic for the simulator, the tests and the benchmark.

`SyntheticPbx` invents calls on sofia channels for N agents (201, 202, …) in a configurable mix
(answered, no answer, busy, mod_callcenter queue answered or abandoned; the agent or the customer
hangs up; some recorded), each a timeline of events plus the outcome a tracker must derive from
it. The timelines run live in the simulator (overlapping, on its loop) or are pre-rendered to
bytes (`render_bulk`) for the benchmark.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import deque
from collections.abc import Iterable

from pbxlink.esl.simulator import broadcast, originated, scenarios
from pbxlink.esl.simulator.flow import Answer, Caller, Site
from pbxlink.esl.simulator.legs import CallBuilder, Ids
from pbxlink.esl.simulator.stamp import Switch, restamp
from pbxlink.simulation.callbacks import Customers, customer_first, free_members, queue_of
from pbxlink.simulation.callbacks import broadcast as is_broadcast
from pbxlink.simulation.timeline import BulkStream, CallTimeline, ExpectedCall, merge
from pbxlink.simulation.traffic import TrafficMix

__all__ = ["SyntheticPbx", "TrafficMix", "render_bulk"]

#: Caller names, several with multibyte UTF-8 so it shows up (url-encoded) on the wire.
CALLER_NAMES = (
    *("José Müller", "Zoë Ægir", "Renée Côté", "Łukasz Żółć", "Søren Kierkegård", "Ünal Çelik"),
    *("山田 太郎", "Jane Customer", "Bob Smith"),
)
QUEUE_DIDS = {"support": "1000", "sales": "1001"}
FOREVER = float("inf")


class SyntheticPbx:
    """Invents calls for `agents` agents (201, 202, …) in queues `support` (all) and `sales` (half).

    Ids are server-wide and agents are not offered a call while on another, so overlapping calls
    stay consistent. `history` keeps the latest expected outcomes.
    """

    def __init__(
        self,
        agents: int = 10,
        mix: TrafficMix | None = None,
        seed: int | None = None,
        switch: Switch | None = None,
    ) -> None:
        if agents < 1:
            raise ValueError("at least one agent")
        self.agents = [str(201 + i) for i in range(agents)]
        self.queues = {"support": list(self.agents), "sales": self.agents[len(self.agents) // 2 :]}
        self.site = Site(self.queues)
        self.mix = mix or TrafficMix()
        self.rng = random.Random(seed)
        self.switch = switch or Switch(str(uuid.UUID(int=self.rng.getrandbits(128), version=4)))
        self.history: deque[ExpectedCall] = deque(maxlen=10_000)
        self.reset()

    def reset(self) -> None:
        """Start over, as after a switch restart: session ids from zero, every agent free."""
        self.ids = Ids(rng=self.rng)
        self.busy_until: dict[str, float] = {}

    def next_call(self, start: float) -> CallTimeline:
        """One call starting at `start` (epoch), of a kind drawn from the mix."""
        names, weights = self.mix.kinds()
        kind = self.rng.choices(names, weights)[0]
        free = [a for a in self.agents if self.busy_until.get(a, 0.0) <= start]
        b = CallBuilder(self.switch, self.ids, start)
        caller = Caller(f"+1555{self.rng.randrange(10**7):07d}", self.rng.choice(CALLER_NAMES))
        if kind.startswith("queue"):
            queue = self.rng.choice(sorted(self.queues))
            members = [a for a in self.queues[queue] if a in free]
            offered = self.rng.sample(members, min(self.rng.choice((1, 1, 2)), len(members)))
            answer = self.answer() if kind == "queue_answered" and offered else None
            abandon = round(self.rng.uniform(3.0, 19.0), 3)
            expected = scenarios.queue_call(
                b, self.site, caller, QUEUE_DIDS[queue], queue, offered, answer, abandon
            )
            return self._done(b, expected, offered)
        agent = self.rng.choice(free or self.agents)
        outcome: str | Answer = "busy" if not free or kind == "busy" else kind
        if outcome == "answered":
            outcome = self.answer()
        record = self.rng.random() < self.mix.recorded
        expected = scenarios.direct_call(b, self.site, caller, f"1{agent}", agent, outcome, record)
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
            b = CallBuilder(self.switch, self.ids, start + i * 0.001)
            caller = Caller(f"+1555{self.rng.randrange(10**7):07d}", self.rng.choice(CALLER_NAMES))
            answer = Answer(self._uniform(self.mix.ring), None, agent_hangs_up=False)
            expected = scenarios.direct_call(b, self.site, caller, f"1{agent}", agent, answer, record=False)
            timelines.append(self._done(b, expected, [agent]))
        return timelines

    def originate(
        self,
        endpoint: str,
        number: str | None,
        start: float,
        shown: tuple[str, str],
        sent: tuple[str, str],
        *,
        context: str = "default",
        variables: tuple[tuple[str, str], ...] = (),
        timeout: float = 60.0,
        customers: Customers | None = None,
    ) -> tuple[CallTimeline, str] | str:
        """`originate`: agent first (the agent's phone, or a queue's members at once, rings and answers,
        then `number` is called), or customer first, or a campaign's broadcast when `context` says so;
        the customer does what `customers` says. Returns the call and the leg whose answer (or refusal)
        completes the originate, or FreeSWITCH's `-ERR <cause>` when no channel could be made.
        """
        customers = customers or Customers()
        b = CallBuilder(self.switch, self.ids, start)
        if is_broadcast(context):
            if customers[endpoint] == "fail":
                return "-ERR NORMAL_TEMPORARY_FAILURE\n"
            queue = queue_of(dict(variables).get("PBXLINK_QUEUE", ""), self.queues, QUEUE_DIDS)
            pressed = queue is not None and customers[endpoint] == "press1"
            agents = free_members(self.queues, self.busy_until, queue, start, 1) if queue and pressed else []
            timing = (self._uniform(self.mix.ring), timeout)
            expected, leg = broadcast.broadcast(
                b,
                self.site,
                endpoint,
                shown,
                context,
                customers[endpoint],
                queue,
                agents,
                self.answer(),
                timing,
                variables,
            )
            return self._done(b, expected, agents), leg.uuid
        if customer_first(context):
            queue = queue_of(number or "", self.queues, QUEUE_DIDS)
            if queue is None or customers[endpoint] == "fail":
                return "-ERR NORMAL_TEMPORARY_FAILURE\n" if queue else "-ERR NO_ROUTE_DESTINATION\n"
            agents = free_members(self.queues, self.busy_until, queue, start, 1)
            answer, ring = self.answer(), self._uniform(self.mix.ring)
            expected, leg = originated.customer_first(
                b,
                self.site,
                endpoint,
                shown,
                queue,
                agents,
                customers[endpoint],
                answer,
                ring,
                timeout,
                variables,
            )
            return self._done(b, expected, agents), leg.uuid
        queue = queue_of(endpoint, self.queues, QUEUE_DIDS)
        if queue is None and endpoint not in self.agents:
            return "-ERR USER_NOT_REGISTERED\n"
        if queue is None and self.busy_until.get(endpoint, 0.0) > start:
            expected, leg = originated.refused_originate(b, self.site, endpoint, shown, variables)
            return self._done(b, expected, []), leg.uuid
        agents = free_members(self.queues, self.busy_until, queue, start, 2) if queue else [endpoint]
        answer, remote_ring = self.answer(), self._uniform(self.mix.ring)
        expected, leg = originated.click_to_call(
            b, self.site, agents, number, shown, sent, answer, remote_ring, customers[number or ""], variables
        )
        return self._done(b, expected, agents[:1]), leg.uuid

    def _done(self, b: CallBuilder, expected: ExpectedCall, agents: Iterable[str]) -> CallTimeline:
        until = b.start + b.t if expected.ended else FOREVER
        for agent in agents:
            self.busy_until[agent] = until
        self.history.append(expected)
        return CallTimeline(b.start, b.events, expected, frozenset(leg.uuid for leg in b.legs))

    def answer(self) -> Answer:
        """How an answered call goes, drawn from the mix."""
        hangs_up = self.rng.random() < self.mix.agent_hangs_up
        return Answer(self._uniform(self.mix.ring), self._uniform(self.mix.talk), hangs_up)

    def _uniform(self, bounds: tuple[float, float]) -> float:
        return round(self.rng.uniform(*bounds), 3)


def render_bulk(
    events: int, *, agents: int = 20, seed: int = 0, fmt: str = "plain", calls_per_minute: float = 600.0
) -> BulkStream:
    """At least `events` events of whole calls as one byte blob of frames in `fmt`, for the benchmark."""
    pbx = SyntheticPbx(agents, seed=seed)
    timelines: list[CallTimeline] = []
    count, at = 0, time.time()
    while count < events:
        timeline = pbx.next_call(at)
        timelines.append(timeline)
        count += len(timeline.events)
        at += pbx.rng.expovariate(calls_per_minute / 60.0)
    core = pbx.switch.core_uuid
    parts = [restamp(event, core, n).render(fmt) for n, (_, event) in enumerate(merge(timelines), start=1)]
    return BulkStream(b"".join(parts), count, [tl.expected for tl in timelines])
