"""One parsed PBX event as a tracker sees it (AMI headers, ESL headers), and reading a header from it."""

from __future__ import annotations

from collections.abc import Mapping

#: header -> value; a header repeated on the wire (ChanVariable, Output) -> its values in order
Event = Mapping[str, "str | list[str]"]


def field(event: Event, key: str) -> str:
    """A header's value; for a repeated header, its last occurrence; "" when absent."""
    value = event.get(key, "")
    if isinstance(value, list):
        return value[-1] if value else ""
    return value
