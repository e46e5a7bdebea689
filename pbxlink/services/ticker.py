"""The APScheduler 3 scheduler a service wakes up with: the state lives in our tables, the job only scans."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC
from typing import Any


def every(name: str, seconds: float, tick: Callable[[], None]) -> Any:
    """A started BackgroundScheduler running `tick` every `seconds` in one thread named `name`.

    One thread is enough (scans never overlap: a late one is skipped, not queued), and its
    "Running job" lines every few seconds would bury the journal: only its warnings and errors
    are kept. More jobs (cron triggers) may be added with `executor=name`.
    """
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    logging.getLogger(f"apscheduler.executors.{name}").setLevel(logging.WARNING)
    scheduler = BackgroundScheduler(timezone=UTC, executors={name: ThreadPoolExecutor(1)})
    scheduler.add_job(
        tick, "interval", seconds=seconds, id=name, executor=name, max_instances=1, coalesce=True
    )
    scheduler.start()
    return scheduler
