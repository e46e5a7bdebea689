"""The callback policies as the panel shows them: what each one calls back, when, and how.

Read from the running CallbackService (the `[[callback_policy]]` tables of the config), with
whether each is open now and its next opening, so a supervisor can see at a glance why a
callback waits. Changing a policy is done in the config file.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user, login_required

from pbxlink.domain.callback_policy import CallbackPolicy

bp = Blueprint("callback_policies", __name__, url_prefix="/callbacks/policies")

ORDERS = {"agent_first": "agent first", "customer_first": "customer first"}


@bp.get("")
@login_required
def index() -> str:
    if not current_user.sees_all:
        abort(403, "the policies are for supervisors and admins")
    service = current_app.extensions.get("pbxlink.callbacks")
    policies: list[CallbackPolicy] = list(service.policies.values()) if service is not None else []
    now = datetime.now(UTC)
    return render_template(
        "callbacks/policies.html", policies=[view(p, now) for p in policies], running=service is not None
    )


def view(policy: CallbackPolicy, now: datetime) -> dict[str, Any]:
    s = policy.settings
    try:
        opening: datetime | None = policy.next_open(now)
    except ValueError:  # hours and holidays leave no opening at all
        opening = None
    return {
        "name": s.name,
        "pbx": s.pbx,
        "source": "website requests" if policy.web else "missed calls",
        "dids": ", ".join(s.dids) or "any",
        "queues": ", ".join(s.queues) or "any",
        "reasons": ", ".join(r.replace("_", " ") for r in s.reasons),
        "min_wait": s.min_wait,
        "delay": s.delay,
        "timezone": s.timezone,
        "hours": [(calendar.day_name[i], _ranges(day)) for i, day in enumerate(s.hours)],
        "holidays": ", ".join(d.isoformat() for d in s.holidays) or "none",
        "attempts": s.max_attempts,
        "retry_after": s.retry_after,
        "order": ORDERS.get(s.order, s.order),
        "ring": s.ring if s.order == "agent_first" else None,
        "queue": s.queue,
        "present_number": s.present_number,
        "open_now": opening is not None and opening <= now,
        "next_open": opening.astimezone(policy.zone).strftime("%a %Y-%m-%d %H:%M %Z") if opening else "never",
    }


def _ranges(day: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in day) or "closed"
