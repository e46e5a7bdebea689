"""The campaigns' state: campaigns, whom they call, every dial and what came of it.

Everything that decides who is dialled is one atomic UPDATE here, so any number of
dialler threads and worker processes share the work without a lock of their own:
- `take_slot` moves the campaign's `next_slot_at` one pacing interval on (compare-and-set):
  the pace holds across workers;
- `claim` moves a contact from pending to dialing and writes its attempt, with the
  originate's tag, in one transaction, before the PBX is asked: after a crash, the tag is
  on record, the call is found by it (Call.origin), and the contact is never dialled twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import peewee as pw

from pbxlink.domain.calls import CallRecord, iso
from pbxlink.domain.campaign import CampaignSettings, Mode, RetryRule, retries_from_json
from pbxlink.storage.database import writing
from pbxlink.storage.models import Campaign, CampaignAttempt, CampaignContact, db_proxy, utcnow

STATUSES = ("draft", "running", "paused", "stopped", "completed")
#: the statuses a campaign may be moved to, from which
MOVES: dict[str, tuple[str, ...]] = {
    "running": ("draft", "paused", "completed"),
    "paused": ("running",),
    "stopped": ("draft", "running", "paused", "completed"),
}
OPEN = ("pending", "dialing")  # a contact still to be done


def create(s: CampaignSettings, by: str | None) -> Campaign:
    """A new draft campaign; ValueError when the name is taken."""
    try:
        with db_proxy.atomic():
            return Campaign.create(**_columns(s), created_by=by)
    except pw.IntegrityError:
        raise ValueError(f'name: a campaign named "{s.name}" exists already') from None


def update(campaign_id: int, s: CampaignSettings) -> bool:
    """Change a campaign's settings (the next dial uses them); ValueError when the name is taken."""
    try:
        with db_proxy.atomic():
            n = (
                Campaign.update(**_columns(s), updated_at=utcnow())
                .where(Campaign.id == campaign_id)
                .execute()
            )
    except pw.IntegrityError:
        raise ValueError(f'name: a campaign named "{s.name}" exists already') from None
    return bool(n)


def _columns(s: CampaignSettings) -> dict[str, Any]:
    return {
        "name": s.name,
        "pbx": s.pbx,
        "mode": s.mode,
        "caller_id": s.caller_id,
        "message": s.message,
        "queue": s.queue,
        "amd": s.amd,
        "timezone": s.timezone,
        "days": s.days,
        "hours": s.hours,
        "window_start": s.window_start,
        "window_end": s.window_end,
        "max_concurrent": s.max_concurrent,
        "per_minute": s.per_minute,
        "ring_timeout": s.ring_timeout,
        "retry_rules": s.retries_json(),
    }


def settings_of(c: Campaign) -> CampaignSettings:
    rules: dict[str, RetryRule] = retries_from_json(c.retry_rules)
    return CampaignSettings(
        name=c.name,
        pbx=c.pbx,
        mode=cast(Mode, c.mode),
        timezone=c.timezone,
        caller_id=c.caller_id,
        message=c.message,
        queue=c.queue,
        amd=bool(c.amd),
        days=c.days,
        hours=c.hours,
        window_start=c.window_start,
        window_end=c.window_end,
        max_concurrent=c.max_concurrent,
        per_minute=c.per_minute,
        ring_timeout=c.ring_timeout,
        retries=rules,
    )


def get(campaign_id: int) -> Campaign | None:
    return Campaign.get_or_none(Campaign.id == campaign_id)


def by_name(name: str) -> Campaign | None:
    return Campaign.get_or_none(Campaign.name == name)


def all_campaigns() -> list[Campaign]:
    return list(Campaign.select().order_by(Campaign.created_at.desc(), Campaign.id.desc()))


def running() -> list[Campaign]:
    return list(Campaign.select().where(Campaign.status == "running").order_by(Campaign.id))


def move(campaign_id: int, to: str, now: datetime | None = None) -> bool:
    """Start, pause, resume or stop: whether the campaign was in a status it may leave that way.

    Stopping is final: the contacts not yet dialled are set aside (status `stopped`); calls under
    way end on their own and are recorded.
    """
    now = now or utcnow()
    values: dict[str, Any] = {"status": to, "updated_at": now}
    if to == "running":
        values["started_at"] = pw.fn.COALESCE(Campaign.started_at, now)
        values["finished_at"] = None
    if to == "stopped":
        values["finished_at"] = now
    with db_proxy.atomic():
        moved = bool(
            Campaign.update(**values)
            .where((Campaign.id == campaign_id) & Campaign.status.in_(MOVES[to]))
            .execute()
        )
        if moved and to == "stopped":
            CampaignContact.update(status="stopped", updated_at=now).where(
                (CampaignContact.campaign == campaign_id) & (CampaignContact.status == "pending")
            ).execute()
    return moved


def complete_if_done(campaign_id: int, now: datetime) -> bool:
    """A running campaign with no contact left to dial or under way is completed."""
    left = CampaignContact.select().where(
        (CampaignContact.campaign == campaign_id) & CampaignContact.status.in_(OPEN)
    )
    return bool(
        Campaign.update(status="completed", finished_at=now, updated_at=now)
        .where((Campaign.id == campaign_id) & (Campaign.status == "running") & ~pw.fn.EXISTS(left))
        .execute()
    )


# --- dialling --------------------------------------------------------------------------------


def take_slot(campaign_id: int, interval: timedelta, now: datetime) -> bool:
    """Take the campaign's next dial slot if it is due: one dial per `interval`, across all workers.

    A campaign that fell behind (no one to call, all lines busy) does not burst to catch up:
    the next slot is one interval after now at the earliest.
    """
    row = Campaign.select(Campaign.next_slot_at).where(Campaign.id == campaign_id).first()
    if row is None:
        return False
    due = row.next_slot_at
    if due is not None and due > now:
        return False
    later = due + interval if due is not None and now - due < interval else now + interval
    same = Campaign.next_slot_at.is_null() if due is None else (Campaign.next_slot_at == due)
    return bool(Campaign.update(next_slot_at=later).where((Campaign.id == campaign_id) & same).execute())


def next_slot(campaign_id: int) -> datetime | None:
    row = Campaign.select(Campaign.next_slot_at).where(Campaign.id == campaign_id).first()
    return None if row is None else row.next_slot_at


def in_flight(campaign_id: int) -> int:
    """Contacts being dialled now: the pacing's concurrency."""
    return int(
        CampaignContact.select()
        .where((CampaignContact.campaign == campaign_id) & (CampaignContact.status == "dialing"))
        .count()
    )


def due(campaign_id: int, now: datetime, limit: int) -> list[CampaignContact]:
    """Contacts whose turn it is, first come first: never dialled ones in list order, then retries."""
    return list(
        CampaignContact.select()
        .where(
            (CampaignContact.campaign == campaign_id)
            & (CampaignContact.status == "pending")
            & (CampaignContact.next_at.is_null() | (CampaignContact.next_at <= now))
        )
        .order_by(CampaignContact.next_at.asc(nulls="FIRST"), CampaignContact.id)
        .limit(limit)
    )


def next_due(campaign_id: int) -> datetime | None:
    """When the earliest waiting contact is due (None: none waits for a time)."""
    row = (
        CampaignContact.select(pw.fn.MIN(CampaignContact.next_at).alias("at"))
        .where((CampaignContact.campaign == campaign_id) & (CampaignContact.status == "pending"))
        .first()
    )
    return None if row is None else row.at


def defer(contact_id: int, until: datetime) -> None:
    """Not now (outside the contact's window): due again at `until`."""
    CampaignContact.update(next_at=until, updated_at=utcnow()).where(
        (CampaignContact.id == contact_id) & (CampaignContact.status == "pending")
    ).execute()


def set_aside(contact_id: int, status: str, outcome: str | None, now: datetime) -> bool:
    """A pending contact that will not be dialled: `dnc` at dial time."""
    return bool(
        CampaignContact.update(status=status, last_outcome=outcome, updated_at=now)
        .where((CampaignContact.id == contact_id) & (CampaignContact.status == "pending"))
        .execute()
    )


def claim(contact: CampaignContact, tag: str, now: datetime, deadline: datetime) -> CampaignAttempt | None:
    """Take a pending contact for one dial tagged `tag`; None when another worker took it first."""
    with db_proxy.atomic():
        taken = (
            CampaignContact.update(
                status="dialing",
                tag=tag,
                attempts=CampaignContact.attempts + 1,
                claimed_until=deadline,
                updated_at=now,
            )
            .where((CampaignContact.id == contact.id) & (CampaignContact.status == "pending"))
            .execute()
        )
        if not taken:
            return None
        return CampaignAttempt.create(
            campaign=contact.campaign_id, contact=contact.id, tag=tag, started_at=now, deadline=deadline
        )


def open_attempts(campaign_id: int | None = None) -> list[CampaignAttempt]:
    """Dials whose outcome is not known yet (all campaigns' by default)."""
    q = CampaignAttempt.select().where(CampaignAttempt.ended_at.is_null())
    if campaign_id is not None:
        q = q.where(CampaignAttempt.campaign == campaign_id)
    return list(q.order_by(CampaignAttempt.id))


def attempt_by_tag(tag: str) -> CampaignAttempt | None:
    return CampaignAttempt.get_or_none(CampaignAttempt.tag == tag)


def extend(tag: str, deadline: datetime) -> None:
    """The dial's call is still up: wait for its end."""
    CampaignAttempt.update(deadline=deadline).where(
        (CampaignAttempt.tag == tag) & CampaignAttempt.ended_at.is_null()
    ).execute()


def finish(
    tag: str,
    outcome: str,
    rec: CallRecord | None,
    now: datetime,
    *,
    retry_at: datetime | None,
    counted: bool = True,
    detail: str | None = None,
) -> CampaignAttempt | None:
    """Record a dial's outcome and move its contact on (pending again at `retry_at`, else done).

    Idempotent: a dial already finished is left as it is (None). `counted=False` (an agent-first
    dial no agent took) gives the contact its attempt back.
    """
    with writing():
        attempt = CampaignAttempt.get_or_none(CampaignAttempt.tag == tag)
        if attempt is None or attempt.ended_at is not None:
            return None
        values: dict[str, Any] = {"ended_at": now, "outcome": outcome, "detail": detail}
        if rec is not None:
            agent = rec.agents[-1] if rec.agents else rec.agent
            values |= {
                "call_id": rec.call_id,
                "amd": rec.amd,
                "agent": agent,
                "talk_seconds": rec.talk_seconds,
            }
        still_open = (CampaignAttempt.id == attempt.id) & CampaignAttempt.ended_at.is_null()
        if not CampaignAttempt.update(**values).where(still_open).execute():
            return None  # another worker recorded it first
        contact: dict[str, Any] = {
            "tag": None,
            "claimed_until": None,
            "updated_at": now,
            "last_outcome": outcome,
            "status": "pending" if retry_at is not None else "done",
            "next_at": retry_at,
        }
        if not counted:
            contact["attempts"] = CampaignContact.attempts - 1
        CampaignContact.update(**contact).where(
            (CampaignContact.id == attempt.contact_id) & (CampaignContact.tag == tag)
        ).execute()
        for key, value in values.items():
            setattr(attempt, key, value)
        return attempt


def contact_of(tag: str) -> tuple[Campaign, CampaignContact] | None:
    """The campaign and contact a dial tagged `tag` belongs to (the screen-pop asks while it rings)."""
    attempt = (
        CampaignAttempt.select(CampaignAttempt, CampaignContact, Campaign)
        .join(CampaignContact)
        .switch(CampaignAttempt)
        .join(Campaign)
        .where(CampaignAttempt.tag == tag)
        .first()
    )
    return None if attempt is None else (attempt.campaign, attempt.contact)


def pop_view(tag: str) -> dict[str, Any] | None:
    """What an agent's screen-pop shows of the campaign contact a dial tagged `tag` calls."""
    found = contact_of(tag)
    if found is None:
        return None
    campaign, contact = found
    return {
        "campaign": campaign.name,
        "name": contact.name,
        "number": contact.number,
        "fields": fields_of(contact),
    }


def get_contact(contact_id: int) -> CampaignContact | None:
    return CampaignContact.get_or_none(CampaignContact.id == contact_id)


def fields_of(contact: CampaignContact) -> dict[str, str]:
    value = json.loads(contact.fields or "{}")
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def contacts(
    campaign_id: int, status: str | None, limit: int, offset: int = 0
) -> tuple[list[CampaignContact], int]:
    q = CampaignContact.select().where(CampaignContact.campaign == campaign_id)
    if status:
        q = q.where(CampaignContact.status == status)
    return list(q.order_by(CampaignContact.id).limit(limit).offset(offset)), q.count()


def attempts_of(contact_ids: Sequence[int]) -> dict[int, list[CampaignAttempt]]:
    out: dict[int, list[CampaignAttempt]] = {i: [] for i in contact_ids}
    if contact_ids:
        q = CampaignAttempt.select().where(CampaignAttempt.contact.in_(list(contact_ids)))
        for a in q.order_by(CampaignAttempt.id):
            out[a.contact_id].append(a)
    return out


def to_dict(c: Campaign) -> dict[str, Any]:
    """A campaign's settings and status, JSON-ready."""
    s = settings_of(c)
    return {
        "id": c.id,
        "name": c.name,
        "pbx": c.pbx,
        "mode": c.mode,
        "caller_id": c.caller_id,
        "message": c.message,
        "queue": c.queue,
        "amd": bool(c.amd),
        "timezone": c.timezone,
        "days": c.days,
        "hours": c.hours,
        "window": f"{c.window_start}-{c.window_end}",
        "max_concurrent": c.max_concurrent,
        "per_minute": c.per_minute,
        "ring_timeout": c.ring_timeout,
        "retries": {
            k: {"after_minutes": r.after_minutes, "max_attempts": r.max_attempts}
            for k, r in s.retries.items()
        },
        "status": c.status,
        "created_by": c.created_by,
        "created_at": iso(c.created_at),
        "started_at": iso(c.started_at),
        "finished_at": iso(c.finished_at),
    }
