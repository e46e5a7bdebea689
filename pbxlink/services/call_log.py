"""The call log service: every call event's snapshot of the call goes into the database.

Started, ringing, answered … keep the live (partial) row current, so the web page shows
calls that are up; CallEnded writes the final record. A database that is briefly
unavailable (locked, PostgreSQL restarting) is retried, so a final record is not lost
to a blip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import peewee as pw

from pbxlink.domain.calls import CallEvent, CallRecord
from pbxlink.domain.ports import Handler
from pbxlink.storage.calls import save_call
from pbxlink.storage.database import drop_connection

log = logging.getLogger(__name__)

RETRY_DELAYS: tuple[float, ...] = (0.5, 2.0, 5.0)


def call_log_handler(
    save: Callable[[CallRecord], int] = save_call, retry_delays: tuple[float, ...] = RETRY_DELAYS
) -> Handler:
    """A bus handler saving `ev.call` for every event; raises (for the bus to log) once retries run out."""

    def on_event(ev: CallEvent) -> None:
        for attempt, delay in enumerate((*retry_delays, None), 1):
            try:
                save(ev.call)
                return
            except (pw.OperationalError, pw.InterfaceError) as exc:
                if delay is None:
                    raise
                log.warning(
                    "call log: could not save call %s/%s (%s event): %s; retry %d of %d in %.1f s",
                    ev.call.pbx,
                    ev.call.call_id,
                    ev.kind,
                    exc,
                    attempt,
                    len(retry_delays),
                    delay,
                )
                drop_connection()
                time.sleep(delay)

    return on_event
