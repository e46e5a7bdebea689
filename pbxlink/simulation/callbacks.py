"""pbxlink's originates as both simulators play them: which flow a context asks for, how customers answer.

pbxlink's callbacks originate into a dialplan context whose name ends in `-agent-first`
(ring the endpoint, an agent or a queue, then dial the customer) or `-customer-first` (ring
the customer, then put the call in the queue its extension names); a campaign's voice
broadcast into one ending in `-broadcast` (ring the contact, optionally detect an answering
machine, play the message; with PBXLINK_QUEUE set, 1 joins that queue). Tests set, per customer
number, what that customer's phone does; every other number answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

Behaviour = Literal["answer", "no_answer", "busy", "fail", "machine", "press1"]
BEHAVIOURS: tuple[str, ...] = get_args(Behaviour)
CUSTOMER_FIRST = "-customer-first"
BROADCAST = "-broadcast"
#: how long a message plays (a customer-first callback's before the queue, a broadcast's)
MESSAGE_SECONDS = 3.0
#: how long answering-machine detection listens before it decides (Asterisk AMD(), a human)
AMD_SECONDS = 1.5
#: how long an answering machine's greeting runs before its beep
GREETING_SECONDS = 2.5
#: how long into a broadcast's message a `press1` contact presses 1
PRESS_SECONDS = 1.0


def customer_first(context: str) -> bool:
    """Whether an originate into `context` rings the customer first."""
    return context.endswith(CUSTOMER_FIRST)


def broadcast(context: str) -> bool:
    """Whether an originate into `context` is a campaign's voice broadcast."""
    return context.endswith(BROADCAST)


def free_members(
    queues: Mapping[str, list[str]], busy_until: Mapping[str, float], queue: str, at: float, count: int
) -> list[str]:
    """Up to `count` members of `queue` to ring: those free at `at` when there are, else any."""
    members = queues[queue]
    return ([a for a in members if busy_until.get(a, 0.0) <= at] or members)[:count]


def queue_of(endpoint: str, queues: Mapping[str, object], dids: Mapping[str, str]) -> str | None:
    """The queue an endpoint names, by its name (`support`) or its number (`1000`)."""
    if endpoint in queues:
        return endpoint
    return next((queue for queue, did in dids.items() if did == endpoint), None)


class Customers:
    """What each customer's phone does when called: `answer` (the default), `no_answer`, `busy`, `fail`,
    `machine`, `press1`.

    `fail` is a number that cannot be reached at all (no channel is ever made for it). In a broadcast,
    `answer` is a human who hears the whole message and hangs up, `machine` an answering machine
    (its greeting, a beep, then the message is left on it), `press1` a human who presses 1 and talks
    with the agent who takes the call in PBXLINK_QUEUE. Elsewhere the last two answer like `answer`.
    """

    def __init__(self) -> None:
        self._table: dict[str, Behaviour] = {}

    def __setitem__(self, number: str, behaviour: Behaviour) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"customer {number}: {behaviour!r} is not one of {', '.join(BEHAVIOURS)}")
        self._table[number] = behaviour

    def __getitem__(self, number: str) -> Behaviour:
        return self._table.get(number, "answer")

    def clear(self) -> None:
        self._table.clear()
