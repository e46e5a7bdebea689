"""Reading a `[[crm]]` table's own keys, with one-line errors that name the CRM and the key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pbxlink.config import ConfigError, CrmConfig


class Options:
    """The type-specific keys of one `[[crm]]`; every key read is marked, and `done()` refuses the rest."""

    def __init__(self, cfg: CrmConfig) -> None:
        self.cfg = cfg
        self.read: set[str] = set()

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f'[[crm]] "{self.cfg.name}" ({self.cfg.type}): {key}: {message}')

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.cfg.options.get(key, default)

    def string(self, key: str, default: str | None = None) -> str:
        value = self.get(key, default)
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "expected a non-empty string")
        return value.strip()

    def secret(self, key: str) -> str:
        """A secret: from the file or PBXLINK_CRM_<NAME>_<KEY>; never echoed in a message."""
        value = self.get(key)
        if not isinstance(value, str) or not value:
            env = "PBXLINK_CRM_" + "".join(c if c.isalnum() else "_" for c in self.cfg.name.upper())
            raise self.fail(key, f"missing (set it in the file or in {env}_{key.upper()})")
        return value

    def url(self, key: str, default: str | None = None) -> str:
        value = self.string(key, default)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.fail(key, "expected an http(s):// URL")
        return value.rstrip("/")

    def mapping(self, key: str, default: Mapping[str, str] | None = None) -> dict[str, str]:
        value = self.get(key, default)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.fail(key, "expected a table of strings")
        return dict(value)

    def done(self) -> None:
        """Refuse keys nobody read: a typo must not be silently ignored."""
        unknown = sorted(set(self.cfg.options) - self.read)
        if unknown:
            known = ", ".join(sorted(self.read)) or "none"
            raise self.fail(unknown[0], f"unknown key (known for {self.cfg.type}: {known})")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
