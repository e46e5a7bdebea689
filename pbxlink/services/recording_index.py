"""Index one recording file: its metadata, and the call it belongs to; and the bus handler doing so.

The tracker announces a call's recording (RecordingReady, or CallEnded with `call.recording`);
the file is resolved inside the configured folders exactly as it would be to be served, so a
path leading elsewhere is never indexed. The scanner (recording_scan) finds the rest by name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import peewee as pw

from pbxlink.domain.calls import CallEnded, CallEvent, CallRecord, RecordingReady
from pbxlink.domain.ports import Handler
from pbxlink.services.recording_meta import FileMeta, read_meta
from pbxlink.storage import recordings
from pbxlink.storage.calls import record_from_row
from pbxlink.storage.database import drop_connection
from pbxlink.storage.models import Call, Recording, utcnow
from pbxlink.storage.recording_files import Refused, resolve

log = logging.getLogger(__name__)

#: waits before looking again for an announced file that is not there yet (the PBX may still be moving it)
RETRY_DELAYS: tuple[float, ...] = (2.0, 10.0, 30.0)

_EXT = r"\.(?:wav|WAV|wav49|gsm|mp3|ogg|opus|flac|sln)"
_ASTERISK = re.compile(rf"^(?P<uid>\d{{6,}}\.\d+){_EXT}$")
_FREESWITCH = re.compile(rf"^(?P<uid>[0-9a-fA-F]{{8}}(?:-[0-9a-fA-F]{{4}}){{3}}-[0-9a-fA-F]{{12}}){_EXT}$")
# FreePBX: in-<did>-<caller>-…, out-<number>-<ext>-…, internal-<to>-<from>-…, q-<queue>-<caller>-…
_FREEPBX = re.compile(
    rf"^(?P<kind>in|out|external|internal|exten|q|rg)-(?P<a>[^-]*)-(?P<b>[^-]*)-"
    rf"(?P<date>\d{{8}})-(?P<time>\d{{6}})-(?P<uid>\d+\.\d+){_EXT}$"
)
_FREEPBX_DIRECTION = {
    "in": "inbound",
    "q": "inbound",
    "rg": "inbound",
    "out": "outbound",
    "external": "outbound",
}


@dataclass(frozen=True)
class NameInfo:
    """What a PBX's file name tells: the call's unique id, and for FreePBX names, the numbers and time."""

    uid: str
    fields: dict[str, Any]


def parse_name(name: str) -> NameInfo | None:
    """Asterisk `<uniqueid>.wav`, FreeSWITCH `<uuid>.wav`, FreePBX `in-…`/`out-…`; None for other names."""
    if m := _ASTERISK.match(name) or _FREESWITCH.match(name):
        return NameInfo(uid=m["uid"], fields={})
    if m := _FREEPBX.match(name):
        kind, a, b = m["kind"], m["a"], m["b"]
        fields: dict[str, Any] = {"direction": _FREEPBX_DIRECTION.get(kind, "internal")}
        if kind == "q":
            fields.update(queue=a or None, caller=b)
        elif kind == "out":
            fields.update(callee=a, caller=b, agent=b or None)
        else:  # the dialled number (a DID, an extension) then the caller
            fields.update(callee=a, caller=b)
        with contextlib.suppress(ValueError):  # FreePBX writes the PBX's local time: taken as this server's
            fields["started_at"] = datetime.strptime(m["date"] + m["time"], "%Y%m%d%H%M%S").astimezone()
        return NameInfo(uid=m["uid"], fields=fields)
    return None


def call_fields(call: CallRecord) -> dict[str, Any]:
    """The columns a recording takes from its call; the agent is the last one who talked."""
    return {
        "pbx": call.pbx,
        "call_id": call.call_id,
        "started_at": call.started_at,
        "direction": call.direction,
        "caller": call.caller,
        "callee": call.callee,
        "agent": (call.agents[-1] if call.agents else call.agent),
        "queue": call.queue,
        "disposition": call.disposition,
        "talk_seconds": call.talk_seconds,
    }


def calls_by_uid(uids: Sequence[str], pbx_names: Sequence[str] = ()) -> dict[str, CallRecord]:
    """The logged calls whose call_id is one of `uids`, 500 a query (with PBX names: on the unique index)."""
    found: dict[str, CallRecord] = {}
    for i in range(0, len(uids), 500):
        query = Call.select().where(Call.call_id.in_(list(uids[i : i + 500])))
        if pbx_names:
            query = query.where(Call.pbx.in_(list(pbx_names)))
        for row in query:
            found.setdefault(row.call_id, record_from_row(row))
    return found


def index_file(
    real: str, folder: str, fields: dict[str, Any], source: str, meta: FileMeta | None = None
) -> Recording:
    """Read the file's metadata (unless given) and upsert its row; a file known again is `present`."""
    return recordings.upsert(real, folder, **row_values(fields, meta or read_meta(real), source))


def row_values(fields: dict[str, Any], meta: FileMeta, source: str) -> dict[str, Any]:
    """The columns of a file's row: `fields` (its call's, or what its name says), then what it holds."""
    values = {
        **fields,
        "size": meta.size,
        "mtime": meta.mtime,
        "format": meta.format,
        "duration": meta.duration,
        "sha256": meta.sha256,
        "status": "present",
        "source": source,
        "checked_at": utcnow(),
    }
    values.setdefault("started_at", datetime.fromtimestamp(meta.mtime).astimezone())
    return values


def folder_of(real: str, folders: Sequence[Path]) -> str:
    """The configured folder (as its real path) holding `real`."""
    for folder in folders:
        root = str(folder.resolve())
        if real == root or real.startswith(root.rstrip("/") + "/"):
            return root
    return str(folders[0].resolve())


def recording_handler(folders: Sequence[Path], retry_delays: tuple[float, ...] = RETRY_DELAYS) -> Handler:
    """A bus handler indexing the file of each RecordingReady, and of each CallEnded that names one."""

    def on_event(ev: CallEvent) -> None:
        if isinstance(ev, RecordingReady):
            stored = ev.path
        elif isinstance(ev, CallEnded) and ev.call.recording:
            stored = ev.call.recording
        else:
            return
        key = f"{ev.call.pbx}:{ev.call.call_id}"
        for attempt, delay in enumerate((*retry_delays, None), 1):
            try:
                real = resolve(stored, folders)
                row = index_file(real, folder_of(real, folders), call_fields(ev.call), "tracker")
                log.info("recording of call %s indexed: %s (id %d)", key, real, row.id)
                return
            except Refused as exc:
                if _anywhere(stored, folders) or delay is None:
                    log.warning("recording of call %s not indexed: %s (stored path %r)", key, exc, stored)
                    return
                why = "not there yet"
            except (pw.OperationalError, pw.InterfaceError, OSError) as exc:
                if delay is None:
                    log.error("recording of call %s not indexed after %d tries: %s", key, attempt, exc)
                    return
                why = str(exc)
                drop_connection()
            log.info(
                "recording of call %s: %s (%s); retry %d of %d in %.0f s",
                key,
                stored,
                why,
                attempt,
                len(retry_delays),
                delay,
            )
            time.sleep(delay)

    return on_event


def _anywhere(stored: str, folders: Sequence[Path]) -> bool:
    """Whether the stored path names something (a file, a link, a folder) in some folder: if not, the
    PBX may still be moving the file there, and a later look may find it."""
    return any(os.path.lexists(os.path.join(folder, stored)) for folder in folders)
