"""What a campaign has done so far: live progress for the panel and the CLI, and the CSV export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import peewee as pw

from pbxlink.domain.calls import iso
from pbxlink.storage.campaigns import fields_of
from pbxlink.storage.models import Campaign, CampaignAttempt, CampaignContact

RATE_WINDOW = timedelta(minutes=5)  # the recent pace the ETA is reckoned from
EXPORT_BATCH = 500


def progress(c: Campaign, now: datetime) -> dict[str, Any]:
    """Contacts by status, dials by outcome, answer rate, average talk, and the ETA of what is left."""
    statuses = dict(
        CampaignContact.select(CampaignContact.status, pw.fn.COUNT(CampaignContact.id))
        .where(CampaignContact.campaign == c.id)
        .group_by(CampaignContact.status)
        .tuples()
    )
    outcomes = dict(
        CampaignAttempt.select(CampaignAttempt.outcome, pw.fn.COUNT(CampaignAttempt.id))
        .where(CampaignAttempt.campaign == c.id)
        .group_by(CampaignAttempt.outcome)
        .tuples()
    )
    talk = (
        CampaignAttempt.select(pw.fn.AVG(CampaignAttempt.talk_seconds))
        .where((CampaignAttempt.campaign == c.id) & (CampaignAttempt.outcome == "answered"))
        .scalar()
    )
    recent = (
        CampaignAttempt.select()
        .where((CampaignAttempt.campaign == c.id) & (CampaignAttempt.started_at >= now - RATE_WINDOW))
        .count()
    )
    dialled = sum(outcomes.values())
    finished = dialled - outcomes.get(None, 0) - outcomes.get("no_agent", 0)
    remaining = statuses.get("pending", 0) + statuses.get("dialing", 0)
    per_minute = recent / RATE_WINDOW.total_seconds() * 60 if recent else 0.0
    eta = None
    if c.status == "running" and remaining:
        pace = per_minute or c.per_minute
        eta = round(remaining / pace * 60)
    return {
        "contacts": sum(statuses.values()),
        "statuses": {k: statuses.get(k, 0) for k in ("pending", "dialing", "done", "dnc", "stopped")},
        "dialled": dialled,
        "in_progress": outcomes.get(None, 0),
        "answered": outcomes.get("answered", 0),
        "machine": outcomes.get("machine", 0),
        "busy": outcomes.get("busy", 0),
        "no_answer": outcomes.get("no_answer", 0),
        "failed": outcomes.get("failed", 0),
        "no_agent": outcomes.get("no_agent", 0),
        "unknown": outcomes.get("unknown", 0),
        "remaining": remaining,
        "answer_rate": round(outcomes.get("answered", 0) / finished, 4) if finished else None,
        "average_talk_seconds": round(float(talk), 1) if talk is not None else None,
        "calls_per_minute": round(per_minute, 1),
        "eta_seconds": eta,
    }


EXPORT_HEADER = [
    "contact_id", "number", "name", "status", "final_outcome", "attempts", "line",
    "attempt", "started_at", "ended_at", "outcome", "amd", "agent", "talk_seconds", "call_id", "detail",
]  # fmt: skip


def export_rows(c: Campaign) -> Iterator[list[Any]]:
    """Every contact's every dial (a contact never dialled: one row without a dial), custom columns last.

    Streamed in batches: a 100,000-contact campaign never sits in memory. Cells are raw values;
    the writer neutralises formulas (pbxlink.services.csv_safe).
    """
    keys = _custom_keys(c)
    yield [*EXPORT_HEADER, *keys]
    last = 0
    while True:
        batch = list(
            CampaignContact.select()
            .where((CampaignContact.campaign == c.id) & (CampaignContact.id > last))
            .order_by(CampaignContact.id)
            .limit(EXPORT_BATCH)
        )
        if not batch:
            return
        last = batch[-1].id
        dials: dict[int, list[CampaignAttempt]] = {k.id: [] for k in batch}
        for a in (
            CampaignAttempt.select()
            .where(CampaignAttempt.contact.in_(list(dials)))
            .order_by(CampaignAttempt.id)
        ):
            dials[a.contact_id].append(a)
        for k in batch:
            fields = fields_of(k)
            head = [k.id, k.number, k.name, k.status, k.last_outcome, k.attempts, k.row]
            tail = [fields.get(key, "") for key in keys]
            for n, a in enumerate(dials[k.id], start=1):
                yield [*head, n, iso(a.started_at), iso(a.ended_at), a.outcome, a.amd, a.agent,
                       a.talk_seconds, a.call_id, a.detail, *tail]  # fmt: skip
            if not dials[k.id]:
                yield [*head, *[None] * 9, *tail]


def _custom_keys(c: Campaign, sample: int = 1000) -> list[str]:
    """The custom columns, as the import named them (from the first contacts)."""
    keys: dict[str, None] = {}
    for k in (
        CampaignContact.select(CampaignContact.fields).where(CampaignContact.campaign == c.id).limit(sample)
    ):
        keys.update(dict.fromkeys(fields_of(k)))
    return list(keys)
