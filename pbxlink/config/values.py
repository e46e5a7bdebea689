"""The checks every section shares: one place decides how a wrong value is reported.

`Values` holds the file path (every message starts with it) and the environment (secrets
win there); the section mixins call its helpers, so a message reads the same in every table.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pbxlink.config.model import ConfigError

#: a [[pbx]], [[crm]], [[webhook]] or [[callback_policy]] name
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>[0-9]{1,5})")


class Values:
    """The file being read and the environment, with the value checks the section mixins share."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env

    def fail(self, where: str, message: str, key: str | None = None) -> ConfigError:
        """`FILE: [section] key: message`, or `FILE: [section]: message` when no one key is at fault."""
        head = " ".join(part for part in (where, key) if part)
        return ConfigError(f"{self.path}: {head}: {message}" if head else f"{self.path}: {message}")

    def known(self, table: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
        """Reject keys we do not know: a typo must not silently fall back to a default."""
        for key in table:
            if key not in keys:
                close = difflib.get_close_matches(key, keys, n=1)
                hint = f' (did you mean "{close[0]}"?)' if close else f" (known: {', '.join(keys)})"
                raise self.fail(where, f'unknown key "{key}"{hint}')

    def table(self, doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(f"[{key}]", f"expected a table, got {show(value)}")
        return value

    def string(self, table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            raise self.fail(where, f'missing key "{key}"')
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"expected a non-empty string, got {show(value)}", key=key)
        return value

    def secret(self, table: Mapping[str, Any], key: str, where: str, env_name: str) -> str | None:
        """The secret from the environment if set there, else from the file, else None."""
        from_env = self.env.get(env_name)
        if from_env:
            return from_env
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.fail(where, "expected a non-empty string in quotes", key=key)  # never echo a secret
        return value

    def number(self, table: Mapping[str, Any], key: str, where: str, default: float) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.fail(where, f"expected a positive number of seconds, got {show(value)}", key=key)
        return float(value)

    def named_list(self, entries: Any, section: str) -> list[tuple[str, dict[str, Any]]]:
        """`[[section]]` tables, each with a unique `name`: (where-prefix, table) pairs."""
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise self.fail("", f"expected [[{section}]] tables", key=section)
        out: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        for i, entry in enumerate(entries, 1):
            where = f"[[{section}]] #{i}"
            name = self.string(entry, "name", where)
            where = f"{where} {show(name)}"
            if not NAME.fullmatch(name):
                raise self.fail(
                    where, "must be 1-64 letters, digits, _ . - (a letter or digit first)", key="name"
                )
            if name in seen:
                message = f"a second [[{section}]] is {show(name)}: names must differ"
                raise self.fail(where, message, key="name")
            seen.add(name)
            out.append((where, entry))
        return out

    def choice(self, table: Mapping[str, Any], key: str, where: str, options: tuple[str, ...]) -> str:
        """`table[key]`, one of `options`; the first is the default."""
        value = table.get(key, options[0])
        if value not in options:
            shown = ", ".join(f'"{o}"' for o in options)
            raise self.fail(where, f"{show(value)} is not one of {shown}", key=key)
        return str(value)

    def pattern(
        self, table: Mapping[str, Any], key: str, where: str, pattern: re.Pattern[str], what: str
    ) -> str | None:
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not pattern.fullmatch(value)):
            raise self.fail(where, f"{show(value)} is not {what}", key=key)
        return value


def show(value: Any) -> str:
    """A value as it would appear in TOML, for error messages (never used for secrets)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # quoted and escaped: stays on one line
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)
