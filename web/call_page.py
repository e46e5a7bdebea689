"""A call's page: its timeline, agents and transfers, recordings, CRM deliveries, callbacks and campaign.

Everything shown is what pbxlink already stored: the call record, the recording index, the
outbox rows keyed `<pbx>:<call_id>`, the callbacks and campaign dials tagged with the call's
origin, and the caller directory's cache. The page never asks a CRM anything (a slow CRM must
not slow the panel). A call the viewer may not see answers 404 like a missing one, so its
existence does not leak; a recording shows only to those the recordings page lets listen.

The timeline is built from the record alone (see `timeline`): the record keeps when the call
started, was answered and ended, how long it waited, who talked and the transfers in order, but
no time for each transfer nor any hold, so those are not on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from pbxlink.domain.calls import parse_iso
from pbxlink.services.crm_sync import KIND as CRM_LOG
from pbxlink.services.directory import CallerDirectory
from pbxlink.storage import callbacks, campaigns, recordings
from pbxlink.storage.calls import get_call
from pbxlink.storage.models import OutboxItem
from pbxlink.storage.outbox import item_to_dict, stored_key

from .auth import PanelUser
from .calls import MISS_REASONS
from .recording_pages import may_hear, recording_row

bp = Blueprint("call_page", __name__)

TRANSFER_KINDS = {"blind": "blind transfer", "attended": "attended transfer", "redirect": "redirected"}
HUNG_UP = {"customer": "the customer hung up", "agent": "the agent hung up", "system": "the PBX ended it"}


@dataclass(frozen=True)
class Step:
    """One line of the timeline; `at` is None when the record keeps the order but not the time."""

    at: datetime | None
    what: str
    kind: str  # start | queue | answer | transfer | end: the marker the page draws
    derived: bool = False  # the time is worked out (answered - wait), not reported by the PBX


@bp.get("/calls/<int:call_id>")
@login_required
def show(call_id: int) -> ResponseReturnValue:
    viewer: PanelUser = current_user._get_current_object()
    call = get_call(call_id)
    if call is None or not viewer.can_see(call):  # another agent's call is as absent as a missing one
        abort(404, f"no call #{call_id}")
    pbx, pbx_call_id, origin = call["pbx"], call["call_id"], call["origin"]
    recs = [r for r in recordings.for_call(pbx, pbx_call_id) if may_hear(viewer, r)]
    campaign = campaigns.contact_of(origin) if origin else None
    return render_template(
        "call/page.html",
        call=call,
        steps=timeline(call),
        recordings=[recording_row(r) for r in recs],
        deliveries=crm_deliveries(f"{pbx}:{pbx_call_id}", _contact_urls(call)),
        callbacks=callbacks.linked_to(pbx, pbx_call_id, origin),
        campaign=None if campaign is None else {"campaign": campaign[0], "contact": campaign[1]},
        tz=datetime.now().astimezone().tzname(),
    )


def timeline(call: Mapping[str, Any]) -> list[Step]:
    """What happened to the call, in order, from its record.

    The queue entry is the answer (or the end) less the wait, since the tracker counts the
    wait from when the call reached the queue; transfers follow the answer in their order,
    untimed; the end says who hung up, or that pbxlink did not see it end.
    """
    started = parse_iso(call["started_at"])
    answered = parse_iso(call.get("answered_at"))
    ended = parse_iso(call.get("ended_at"))
    steps = [Step(started, f"{call['direction'].capitalize()} call from {_party(call)} started", "start")]
    wait = call.get("wait_seconds")
    if call.get("queue"):
        waited_until = answered or ended
        reached = None if wait is None or waited_until is None else waited_until - timedelta(seconds=wait)
        steps.append(Step(reached, f"Entered queue {call['queue']}", "queue", derived=reached is not None))
    agents: list[str] = list(call.get("agents") or ([call["agent"]] if call.get("agent") else []))
    if answered is not None:
        by = f" by {agents[0]}" if agents else ""
        waited = f" after {_seconds(wait)} waiting" if wait is not None else ""
        steps.append(Step(answered, f"Answered{by}{waited}", "answer"))
    for t in call.get("transfers") or ():
        kind = TRANSFER_KINDS.get(t["kind"], t["kind"])
        steps.append(
            Step(None, f"{kind.capitalize()} from {t['from'] or '?'} to {t['to'] or '?'}", "transfer")
        )
    if ended is not None:
        steps.append(Step(ended, _end(call), "end"))
    return steps


def crm_deliveries(key: str, contact_urls: Mapping[str, str]) -> list[dict[str, Any]]:
    """The CRM call-log deliveries of this call, each with a link to the customer's record when the
    directory's cache knows one for that CRM."""
    rows = OutboxItem.select().where(OutboxItem.kind == CRM_LOG, OutboxItem.key == stored_key(key))
    return [
        {**item_to_dict(item), "contact_url": contact_urls.get(item.target)}
        for item in rows.order_by(OutboxItem.target)
    ]


def _contact_urls(call: Mapping[str, Any]) -> dict[str, str]:
    """CRM name → the customer's record there, from the directory's cache only (never the CRM itself)."""
    directory: CallerDirectory | None = current_app.extensions.get("pbxlink.directory")
    number = {"inbound": call.get("caller"), "outbound": call.get("callee")}.get(call["direction"])
    found = directory.cached(number) if directory is not None and number else None
    urls: dict[str, str] = {}
    for contact in found.contacts if found else ():
        if contact.url and contact.url.startswith(("https://", "http://")):
            urls.setdefault(contact.crm, contact.url)
    return urls


def _party(call: Mapping[str, Any]) -> str:
    who = call.get("caller") or "an unknown number"
    return f"{who} ({call['caller_name']})" if call.get("caller_name") else who


def _end(call: Mapping[str, Any]) -> str:
    if call.get("disposition") == "answered":
        result = "Ended"
    else:
        reason = MISS_REASONS.get(call.get("miss_reason") or "")
        result = f"Missed ({reason})" if reason else "Missed"
    if not call.get("end_seen", True):
        return f"{result}: the end was not seen (pbxlink lost the PBX link meanwhile)"
    how = HUNG_UP.get(call.get("hangup_by") or "")
    return f"{result}: {how}" if how else result


def _seconds(value: float) -> str:
    return f"{round(value)} s" if value < 120 else f"{value / 60:.1f} min"
