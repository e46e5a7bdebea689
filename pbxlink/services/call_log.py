"""The call log service: every call event's snapshot of the call goes into the database.

Started, ringing, answered … keep the live (partial) row current, so the web page shows
calls that are up; CallEnded writes the final record. A database that is briefly
unavailable (locked, PostgreSQL restarting) is retried, so a final record is not lost
to a blip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pbxlink.domain.calls import CallEvent, CallRecord
from pbxlink.domain.ports import Handler
from pbxlink.storage.calls import save_call
from pbxlink.storage.database import RETRY_DELAYS, retry_briefly

log = logging.getLogger(__name__)


def call_log_handler(
    save: Callable[[CallRecord], int] = save_call, retry_delays: tuple[float, ...] = RETRY_DELAYS
) -> Handler:
    """A bus handler saving `ev.call` for every event; raises (for the bus to log) once retries run out."""

    def on_event(ev: CallEvent) -> None:
        what = f"call log: could not save call {ev.call.pbx}/{ev.call.call_id} ({ev.kind} event)"
        retry_briefly(lambda: save(ev.call), what, log, retry_delays)

    return on_event
