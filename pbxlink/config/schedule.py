"""When a callback policy may call: its time zone, weekly opening hours and holidays."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from pbxlink.config.model import DEFAULT_HOURS, WEEKDAYS
from pbxlink.config.values import Values, show

_TIME_RANGE = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")


class ScheduleSections(Values):
    """The time keys of a [[callback_policy]]; hours are kept as minutes since midnight, per weekday."""

    def timezone(self, entry: Mapping[str, Any], where: str) -> str:
        import zoneinfo

        name = entry.get("timezone")
        if name is None:
            return self.server_timezone()
        try:
            zoneinfo.ZoneInfo(name)
        except (TypeError, ValueError, KeyError, OSError):  # KeyError: ZoneInfoNotFoundError
            raise self.fail(
                where,
                f'{show(name)} is not a time zone like "Europe/Berlin" or "America/New_York"',
                key="timezone",
            ) from None
        return str(name)

    def server_timezone(self) -> str:
        """This machine's zone by its IANA name ($TZ, else what /etc/localtime links to), else UTC."""
        import zoneinfo

        candidates = [self.env.get("TZ", "").lstrip(":")]
        with contextlib.suppress(OSError):
            candidates.append(os.path.realpath("/etc/localtime").partition("/zoneinfo/")[2])
        for name in candidates:
            with contextlib.suppress(TypeError, ValueError, KeyError, OSError):
                if name:
                    zoneinfo.ZoneInfo(name)
                    return name
        return "UTC"

    def opening_hours(self, table: Any, where: str) -> tuple[tuple[tuple[int, int], ...], ...]:
        if table is None:
            return DEFAULT_HOURS
        if not isinstance(table, dict):
            example = '{ mon = "09:00-17:00", sat = ["09:00-12:00"] }'
            raise self.fail(where, f"expected a table like {example}, got {show(table)}", key="hours")
        self.known(table, WEEKDAYS, f"{where} hours")
        days = []
        for day in WEEKDAYS:
            value = table.get(day, [])
            ranges = [value] if isinstance(value, str) else value
            if not isinstance(ranges, list) or any(not isinstance(r, str) for r in ranges):
                message = f'expected "09:00-17:00" or a list of such ranges, got {show(value)}'
                raise self.fail(where, message, key=f"hours.{day}")
            parsed = sorted(self.time_range(r, where, f"hours.{day}") for r in ranges)
            if any(a[1] > b[0] for a, b in itertools.pairwise(parsed)):
                raise self.fail(where, "ranges overlap: list each opening once", key=f"hours.{day}")
            days.append(tuple(parsed))
        if not any(days):
            raise self.fail(where, "every day is closed: no callback could ever be placed", key="hours")
        return tuple(days)

    def time_range(self, text: str, where: str, key: str) -> tuple[int, int]:
        m = _TIME_RANGE.fullmatch(text.strip())
        if m is not None and int(m[2]) < 60 and int(m[4]) < 60:
            start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
            if start < end <= 24 * 60:
                return start, end
        message = f'{show(text)} is not a range like "09:00-17:30" within one day (00:00 to 24:00)'
        raise self.fail(where, message, key=key)

    def holidays(self, value: Any, where: str) -> tuple[date, ...]:
        days = [_date(item) for item in value] if isinstance(value, list) else [None]
        if any(day is None for day in days):
            message = f'expected a list of dates like ["2026-12-25"], got {show(value)}'
            raise self.fail(where, message, key="holidays")
        return tuple(sorted({day for day in days if day is not None}))


def _date(item: Any) -> date | None:
    """A holiday: a TOML date (2026-12-25) or the same in quotes; None for anything else."""
    if isinstance(item, datetime) or not isinstance(item, date | str):
        return None
    if isinstance(item, date):
        return item
    try:
        return date.fromisoformat(item) if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", item) else None
    except ValueError:
        return None
