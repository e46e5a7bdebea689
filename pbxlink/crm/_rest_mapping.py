"""The generic REST connector's mapping: dotted paths into JSON answers, and templates filled safely.

Every value put into a URL is percent-encoded, and `_rest_config` allows placeholders in a
URL's path and query only, never in its scheme or host: no value (a caller ID comes from
anyone) can send a request elsewhere or add a parameter.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import requests

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def get(value: Any, path: str | None) -> Any:
    """The value at a dotted path ("" = the value itself; a number indexes a list), or None."""
    for part in (path or "").split("."):
        if not part:
            continue
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def every(value: Any, paths: str) -> list[Any]:
    """Every value at comma-separated dotted paths where "*" stands for each item of a list; lists spread."""
    out: list[Any] = []
    for path in (p.strip() for p in paths.split(",") if p.strip()):
        found = [value]
        for part in path.split("."):
            if part == "*":
                found = [x for v in found if isinstance(v, list) for x in v]
            else:
                found = [g for v in found if (g := get(v, part)) is not None]
        out += [x for v in found for x in (v if isinstance(v, list) else [v])]
    return out


def json_of(resp: requests.Response) -> Any:
    """The answer's JSON, or None when it has none."""
    try:
        return resp.json()
    except ValueError:
        return None


def text(value: Any) -> str | None:
    """A scalar as text (passed through as it is: escaping is the page's job), else None."""
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip() or None


def nest(pairs: dict[str, Any]) -> dict[str, Any]:
    """{"call.from": 1} -> {"call": {"from": 1}}."""
    out: dict[str, Any] = {}
    for key, value in pairs.items():
        *parents, last = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def fill_url(template: str, values: dict[str, str | None]) -> str:
    return PLACEHOLDER.sub(lambda m: quote(values.get(m[1]) or "", safe=""), template)


def fill_json(template: Any, values: dict[str, str | None]) -> Any:
    """The JSON template with placeholders in its strings replaced (JSON encoding escapes them)."""
    if isinstance(template, str):
        return PLACEHOLDER.sub(lambda m: values.get(m[1]) or "", template)
    if isinstance(template, list):
        return [fill_json(v, values) for v in template]
    if isinstance(template, dict):
        return {k: fill_json(v, values) for k, v in template.items()}
    return template


def used(template: Any) -> set[str]:
    """The placeholder names in a URL or JSON template."""
    if isinstance(template, str):
        return set(PLACEHOLDER.findall(template))
    items = (
        template.values() if isinstance(template, dict) else template if isinstance(template, list) else []
    )
    return set().union(*(used(v) for v in items))
