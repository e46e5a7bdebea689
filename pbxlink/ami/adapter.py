"""One Asterisk as seen by the rest of pbxlink: call events out, PbxControl in, its own thread.

The AMI link runs on an asyncio loop in a thread of its own, so neither Flask, the
scheduler nor a slow subscriber can stall it, and it cannot stall them. Everything the
tracker derives is handed to `publish` (the bus) from that thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping

from pbxlink.ami.channels import agent_map
from pbxlink.ami.client import AmiClient
from pbxlink.ami.control import AmiControl
from pbxlink.ami.tracker import AmiTracker
from pbxlink.config import PbxConfig
from pbxlink.domain.calls import CallEvent, CallRecord
from pbxlink.domain.ports import LinkStatus

log = logging.getLogger(__name__)


class AmiAdapter:
    """`start()` restores the calls still open in the database, then keeps the link up until `stop()`."""

    def __init__(
        self,
        pbx: PbxConfig,
        publish: Callable[[CallEvent], None],
        open_calls: Callable[[], list[CallRecord]] | None = None,
        *,
        dial_context: str = "from-internal",
    ) -> None:
        self.pbx = pbx
        self._open_calls = open_calls
        self.tracker = AmiTracker(pbx.name, agent_map(pbx.agent_patterns, dict(pbx.agent_devices)))
        self.client = AmiClient(pbx, self.tracker, publish)
        self.control = AmiControl(pbx.name, self._send, dial_context)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"AMI {self.pbx.name}: adapter already started")
        if self._open_calls is not None:
            # Our own restart: calls open in the database are picked up before the first resync,
            # which then adopts the live ones and closes those that ended while we were away.
            records = self._open_calls()
            self.tracker.restore(records)
            log.info("AMI %s: restored %d open call(s) from the database", self.pbx.name, len(records))
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=f"ami-{self.pbx.name}", daemon=True
        )
        self._thread.start()
        started.wait()

    def stop(self, timeout: float = 5) -> None:
        loop, task, thread = self._loop, self._task, self._thread
        if loop is None or task is None or thread is None:
            return
        loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("AMI %s: the link thread did not stop within %.1fs", self.pbx.name, timeout)
        self._thread = None

    def status(self) -> LinkStatus:
        return self.client.status()

    def _run(self, started: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        self._task = loop.create_task(self.client.run())
        started.set()
        try:
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _send(self, action: dict[str, str | list[str]]) -> Mapping[str, object]:
        """Run one action on the link's loop from any other thread and wait for its answer."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise ConnectionError(f"AMI {self.pbx.name}: adapter not running")
        if threading.current_thread() is self._thread:
            raise RuntimeError("AmiControl is for other threads; on the AMI loop use AmiClient.action")
        future = asyncio.run_coroutine_threadsafe(self.client.action(action, as_list=False), loop)
        answer = future.result(self.client.action_timeout + 1)
        frame: Mapping[str, object] = getattr(answer, "frame", answer)
        return frame
