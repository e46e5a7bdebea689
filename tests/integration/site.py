"""pbxlink as `run` wires it (adapters, bus, call log, database) minus the web, for end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pbxlink.bus import InProcessBus
from pbxlink.config import PbxConfig
from pbxlink.services.call_log import call_log_handler
from pbxlink.simulation.thread import SimulatorThread
from pbxlink.storage.calls import CallFilter, open_calls, search_calls
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate


def wait_for(cond: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def stored(call_id: str) -> list[dict[str, object]]:
    rows, _ = search_calls(CallFilter(), limit=1000)
    return [r for r in rows if r["call_id"] == call_id]


def ended(call_id: str) -> bool:
    rows = stored(call_id)
    return bool(rows) and rows[0]["ended_at"] is not None


class Site:
    def __init__(self, db_path: Path) -> None:
        migrate(connect(f"sqlite:///{db_path}"))
        self.bus = InProcessBus()
        self.bus.subscribe("call-log", call_log_handler())
        self.adapters: list[Any] = []
        self.sims: list[SimulatorThread] = []

    def connect(
        self, sim: Any, adapter_cls: Any, cfg: Callable[[str, int], PbxConfig]
    ) -> tuple[SimulatorThread, Any]:
        """Start `sim` in its thread and an adapter (AmiAdapter, EslAdapter) on it, connected."""
        thread = SimulatorThread(sim)
        host, port = thread.start()
        self.sims.append(thread)
        return thread, self.adapter(adapter_cls, cfg(host, port))

    def adapter(self, adapter_cls: Any, pbx: PbxConfig) -> Any:
        """An adapter on this site's bus, taking back the open calls of its PBX as `run` does."""
        adapter = adapter_cls(pbx, self.bus.publish, lambda: open_calls(pbx.name))
        adapter.start()
        self.adapters.append(adapter)
        wait_for(lambda: adapter.status().connected)
        return adapter

    def close(self) -> None:
        for adapter in self.adapters:
            adapter.stop()
        self.bus.close()
        for sim in self.sims:
            sim.stop()


@contextmanager
def mid_call(sim: SimulatorThread, path: Path, call_id: str) -> Iterator[str]:
    """Replay a capture at its pace; the body runs once the call is answered; then the replay ends."""
    with ThreadPoolExecutor(1) as pool:
        replay = pool.submit(sim.play_capture, path, 1.0)
        wait_for(lambda: any(r["answered_at"] for r in stored(call_id)))
        yield call_id
        replay.result(timeout=30)
    wait_for(lambda: ended(call_id))
