"""The CallerLookup the FastAGI and FreeSWITCH outbound-socket tests serve from, and their teardown."""

from __future__ import annotations

import threading

from pbxlink.domain.ports import CallerInfo
from pbxlink.lookup_server import LookupServer


class FakeLookup:
    """Answers from a table, optionally slowly or with an error, and records the numbers asked.

    A slow answer waits on `released`, which the test's teardown sets: no lookup thread outlives the test.
    """

    def __init__(
        self, answers: dict[str, CallerInfo] | None = None, delay: float = 0.0, error: Exception | None = None
    ) -> None:
        self.answers, self.delay, self.error = answers or {}, delay, error
        self.asked: list[str] = []
        self.released = threading.Event()

    def lookup(self, number: str) -> CallerInfo | None:
        self.asked.append(number)
        if self.delay:
            self.released.wait(self.delay)
        if self.error is not None:
            raise self.error
        return self.answers.get(number)


class LookupServers:
    """The lookup servers a test started; `stop_all` lets slow lookups go first, so no thread lingers."""

    def __init__(self) -> None:
        self.started: list[tuple[LookupServer, FakeLookup]] = []

    def start(self, server: LookupServer, lookup: FakeLookup) -> tuple[str, int]:
        self.started.append((server, lookup))
        return server.start()

    def stop_all(self) -> None:
        for server, lookup in self.started:
            lookup.released.set()
            server.stop()
