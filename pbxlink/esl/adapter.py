"""One FreeSWITCH as seen by the rest of pbxlink: call events out, PbxControl in, its own thread.

The ESL link runs greenswitch on a gevent hub in a thread of its own (pbxlink.esl.client),
so neither Flask, the scheduler nor a slow subscriber can stall it, and it cannot stall
them. Everything the tracker derives is handed to `publish` (the bus) from that thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pbxlink.config import PbxConfig
from pbxlink.domain.calls import CallEvent, CallRecord
from pbxlink.domain.ports import LinkStatus
from pbxlink.esl.channels import agent_map
from pbxlink.esl.client import EslClient, EventFormat
from pbxlink.esl.control import EslControl
from pbxlink.esl.tracker import EslTracker

log = logging.getLogger(__name__)


class EslAdapter:
    """`start()` restores the calls still open in the database, then keeps the link up until `stop()`."""

    def __init__(
        self,
        pbx: PbxConfig,
        publish: Callable[[CallEvent], None],
        open_calls: Callable[[], list[CallRecord]] | None = None,
        *,
        event_format: EventFormat = "plain",
        agent_dial: str = "user/{ext}",
        number_dial: str | None = None,
    ) -> None:
        self.pbx = pbx
        self._open_calls = open_calls
        self.tracker = EslTracker(pbx.name, agent_map(pbx.agent_patterns, dict(pbx.agent_devices)))
        self.client = EslClient(pbx, self.tracker, publish, event_format=event_format)
        self.control = EslControl(pbx.name, self.client, agent_dial=agent_dial, number_dial=number_dial)
        self._started = False

    def start(self) -> None:
        if self._started:
            raise RuntimeError(f"ESL {self.pbx.name}: adapter already started")
        self._started = True
        if self._open_calls is not None:
            # Our own restart: calls open in the database are picked up before the first resync,
            # which then adopts the live ones and closes those that ended while we were away.
            records = self._open_calls()
            self.tracker.restore(records)
            log.info("ESL %s: restored %d open call(s) from the database", self.pbx.name, len(records))
        self.client.start()

    def stop(self, timeout: float = 5) -> None:
        self.client.stop(timeout)

    def status(self) -> LinkStatus:
        return self.client.status()
