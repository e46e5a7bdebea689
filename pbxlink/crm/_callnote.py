"""The words of a call log, for CRMs that keep a call as text (an Odoo note, a Zoho call's description).

The marker is what makes logging idempotent where the CRM has no external id: it is
derived from the call's key, hex only, so it survives HTML sanitizers and needs no
escaping in any search syntax.
"""

from __future__ import annotations

import hashlib
import html as html_
from datetime import UTC, datetime

from pbxlink.domain.crm import CallLogEntry


def marker(key: str) -> str:
    """The searchable token a logged call carries; the same key always gives the same token."""
    return "pbxlink-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def utc(when: datetime) -> datetime:
    """`when` in UTC; a naive time is taken as UTC already (the call log stores UTC)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def title(entry: CallLogEntry) -> str:
    """One line a person reads first: which way, and whether anyone talked."""
    way = {"inbound": "Inbound", "outbound": "Outbound"}.get(entry.direction, "Internal")
    if entry.answered:
        return f"{way} call"
    return "Missed call" if entry.direction == "inbound" else f"{way} call, not answered"


def talk_time(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 60} min {whole % 60:02d} s" if whole >= 60 else f"{whole} s"


def facts(entry: CallLogEntry) -> list[tuple[str, str]]:
    """What the CRM entry says besides its title, in reading order; values are the PBX's, unescaped."""
    result = entry.disposition + (f" ({entry.miss_reason})" if entry.miss_reason else "")
    rows = [
        ("Number", entry.number),
        ("Caller name", entry.caller_name),
        ("Agent", entry.agent),
        ("Result", result),
        ("Talk time", talk_time(entry.duration_s) if entry.answered else None),
        ("Started", utc(entry.started_at).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("Recording", entry.recording_url),
        ("pbxlink call", f"{entry.key} ({marker(entry.key)})"),
    ]
    return [(label, value) for label, value in rows if value]


def html(entry: CallLogEntry, heading: str) -> str:
    """The call as an HTML note under `heading`, every value escaped; a web recording link is a link."""
    rows = [f"<p><b>{html_.escape(heading)}</b></p>"]
    for label, value in facts(entry):
        shown = html_.escape(value)
        if label == "Recording" and value.startswith(("https://", "http://")):
            shown = f'<a href="{html_.escape(value, quote=True)}">{shown}</a>'
        rows.append(f"<p>{html_.escape(label)}: {shown}</p>")
    return "".join(rows)
