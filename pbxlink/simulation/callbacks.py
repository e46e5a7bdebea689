"""Callback originates as both simulators play them: which flow a context asks for, how customers answer.

pbxlink's callbacks originate into a dialplan context whose name ends in `-agent-first`
(ring the endpoint, an agent or a queue, then dial the customer) or `-customer-first` (ring
the customer, then put the call in the queue its extension names). Tests set, per customer
number, what that customer's phone does; every other number answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

Behaviour = Literal["answer", "no_answer", "busy", "fail"]
BEHAVIOURS: tuple[str, ...] = get_args(Behaviour)
CUSTOMER_FIRST = "-customer-first"
#: how long a customer-first callback plays its message before the customer joins the queue
MESSAGE_SECONDS = 3.0


def customer_first(context: str) -> bool:
    """Whether an originate into `context` rings the customer first."""
    return context.endswith(CUSTOMER_FIRST)


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
    """What each customer's phone does when called: `answer` (the default), `no_answer`, `busy`, `fail`.

    `fail` is a number that cannot be reached at all (no channel is ever made for it).
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
