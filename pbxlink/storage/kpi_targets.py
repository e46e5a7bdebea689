"""The KPI targets and thresholds the admin sets on the dashboard, kept in the `setting` table.

One row (`kpi_targets`, JSON), so every process of a site reads the same targets; a missing or
unreadable row means the defaults of `Targets`. Each change is audited with before and after.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping

from pbxlink.services.kpis import Targets
from pbxlink.storage.database import writing
from pbxlink.storage.models import Setting
from pbxlink.storage.recordings import audit

log = logging.getLogger(__name__)

SETTING = "kpi_targets"

#: field -> (label, lowest, highest, unit): what the form accepts
LIMITS: dict[str, tuple[str, float, float, str]] = {
    "service_level": ("Service level target", 1, 100, "%"),
    "service_seconds": ("Service level threshold", 1, 600, "s"),
    "abandon_rate": ("Abandon rate target", 0.1, 100, "%"),
    "min_wait": ("Misdial threshold", 0, 60, "s"),
}


class TargetsError(ValueError):
    """What is wrong with the submitted targets: field -> a message meant for the admin."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def checked(form: Mapping[str, str]) -> Targets:
    """Targets from a form's text values, each within LIMITS; raises TargetsError naming every bad field."""
    values: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name, (label, low, high, unit) in LIMITS.items():
        text = (form.get(name) or "").strip()
        try:
            value = float(text)
        except ValueError:
            errors[name] = f"{label}: enter a number, like {getattr(Targets(), name):g}."
            continue
        if not math.isfinite(value) or not low <= value <= high:
            errors[name] = f"{label}: must be between {low:g} and {high:g} {unit}, not {text}."
        else:
            values[name] = value
    if errors:
        raise TargetsError(errors)
    return Targets(**values)


def load() -> Targets:
    row = Setting.get_or_none(Setting.key == SETTING)
    if row is None:
        return Targets()
    try:
        return checked({k: str(v) for k, v in json.loads(row.value).items()})
    except (ValueError, AttributeError):
        log.warning("the stored KPI targets are unreadable; using the defaults until an admin saves them")
        return Targets()


def save(targets: Targets, by: str) -> bool:
    """Store `targets` and audit the change (before/after); False (nothing written) when nothing changed."""
    with writing():
        before = load()
        if before == targets:
            return False
        value = json.dumps(dataclasses.asdict(targets))
        Setting.insert(key=SETTING, value=value).on_conflict(
            conflict_target=[Setting.key], update={Setting.value: value}
        ).execute()
        audit(
            by,
            "kpi_targets",
            f"setting:{SETTING}",
            {"before": dataclasses.asdict(before), "after": dataclasses.asdict(targets)},
        )
    log.info("KPI targets changed by %s: %s", by, value)
    return True
