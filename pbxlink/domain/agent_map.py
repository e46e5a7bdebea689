"""Which agent extension a PBX channel belongs to, from its name.

Sites differ, so the map is a list of regexes with a named group `ext` (configurable per
PBX, each adapter bringing defaults for its PBX) plus an explicit device table
(`DAHDI/1` -> 201) for channel names that carry no extension.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence


class AgentMap:
    """Maps a channel name to the agent extension behind it, or None for trunks and the like."""

    def __init__(self, patterns: Sequence[str], devices: Mapping[str, str] | None = None) -> None:
        self._patterns = [re.compile(p) for p in patterns]
        self._devices = dict(devices or {})
        self._cache: dict[str, str | None] = {}

    def agent(self, channel: str) -> str | None:
        try:
            return self._cache[channel]
        except KeyError:
            pass
        ext = self._devices.get(channel.rsplit("-", 1)[0]) if self._devices else None
        for pattern in self._patterns if ext is None else ():
            m = pattern.match(channel)
            if m is not None:
                ext = m["ext"]
                break
        if len(self._cache) > 10_000:  # channel names never repeat; keep the cache bounded
            self._cache.clear()
        self._cache[channel] = ext
        return ext
