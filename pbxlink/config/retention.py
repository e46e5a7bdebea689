"""`[[retention_policy]]` tables: how long recordings are kept, and when WAVs are compressed."""

from __future__ import annotations

from typing import Any

from pbxlink.config.model import RETENTION_DIRECTIONS, TRANSCODE_FORMATS, RetentionPolicyConfig
from pbxlink.config.values import Values, show

_KEYS = (
    "name",
    "keep_days",
    "queues",
    "direction",
    "campaigns",
    "enabled",
    "transcode",
    "transcode_after_days",
)
MAX_KEEP_DAYS = 36500.0


class RetentionSections(Values):
    """The policies in the file's order; each is checked on its own, so a message names its table."""

    def retention_policies(self, entries: Any) -> tuple[RetentionPolicyConfig, ...]:
        policies = []
        for where, entry in self.named_list(entries, "retention_policy"):
            self.known(entry, _KEYS, where)
            if "keep_days" not in entry:
                raise self.fail(where, 'missing key "keep_days" (how many days recordings are kept)')
            keep = self._days(entry, "keep_days", where, positive=True)
            enabled = entry.get("enabled", False)
            if not isinstance(enabled, bool):
                raise self.fail(where, f"expected true or false, got {show(enabled)}", key="enabled")
            transcode = self.choice(entry, "transcode", where, TRANSCODE_FORMATS)
            if "transcode_after_days" in entry and transcode == "none":
                raise self.fail(
                    where,
                    'has no effect without transcode = "mp3", "ogg" or "opus"',
                    key="transcode_after_days",
                )
            policies.append(
                RetentionPolicyConfig(
                    name=entry["name"],
                    keep_days=keep,
                    queues=self._names(entry, "queues", where),
                    directions=self._directions(entry, where),
                    campaigns=self._names(entry, "campaigns", where),
                    enabled=enabled,
                    transcode=transcode,  # type: ignore[arg-type]  # checked by choice()
                    transcode_after_days=self._days(entry, "transcode_after_days", where, positive=False),
                )
            )
        return tuple(policies)

    def _days(self, entry: dict[str, Any], key: str, where: str, *, positive: bool) -> float:
        value = entry.get(key, 0)
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not number or not (value > 0 if positive else value >= 0) or value > MAX_KEEP_DAYS:
            least = "more than 0" if positive else "0 or more"
            raise self.fail(
                where, f"expected days, {least} and at most {MAX_KEEP_DAYS:g}, got {show(value)}", key=key
            )
        return float(value)

    def _names(self, entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = entry.get(key, [])
        if not isinstance(value, list) or any(not isinstance(v, str) or not v.strip() for v in value):
            raise self.fail(where, f'expected a list of names like ["sales"], got {show(value)}', key=key)
        return tuple(dict.fromkeys(v.strip() for v in value))

    def _directions(self, entry: dict[str, Any], where: str) -> tuple[str, ...]:
        value = entry.get("direction", [])
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or any(v not in RETENTION_DIRECTIONS for v in values):
            shown = ", ".join(f'"{d}"' for d in RETENTION_DIRECTIONS)
            raise self.fail(
                where, f"{show(value)} is not one of {shown} (or a list of them)", key="direction"
            )
        return tuple(dict.fromkeys(values))
