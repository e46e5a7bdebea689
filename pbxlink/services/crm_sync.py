"""CRM call logging: every finished call with a customer is logged in every CRM, through the outbox.

When a call ends, one outbox row per CRM is queued, keyed by "<pbx>:<call_id>", so a
replayed CallEnded or a resync stays one row per CRM. The outbox worker then calls the
deliverer below, as often as it takes (a CRM down for hours, a pbxlink restart): it looks
the customer up in that CRM and logs the call there. Each connector's `log_call` is
idempotent by the same key, so a delivery repeated after a lost answer or a restart leaves
one entry in the CRM.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pbxlink.domain.calls import CallEnded, CallEvent, CallRecord
from pbxlink.domain.crm import CallLogEntry, Connector
from pbxlink.domain.phone import PhoneNumbers, numbers
from pbxlink.domain.ports import Handler
from pbxlink.services.outbox import Deliver, DeliveryError, Enqueue, enqueue_all

log = logging.getLogger(__name__)

KIND = "crm_log"


def call_key(rec: CallRecord) -> str:
    """The call's idempotency key, the same in the outbox and in every CRM."""
    return f"{rec.pbx}:{rec.call_id}"


def customer_number(rec: CallRecord) -> str | None:
    """The customer's number as the PBX gave it: the caller of an inbound call, the callee of an outbound."""
    if rec.direction == "inbound":
        return rec.caller
    if rec.direction == "outbound":
        return rec.callee
    return None  # internal: agent to agent, nothing for a CRM


def crm_log_handler(
    targets: Sequence[str],
    enqueue: Enqueue,
    notify: Callable[[], None],
    *,
    phones: PhoneNumbers | None = None,
) -> Handler:
    """A bus handler queuing the final record of every call with an external number, once per CRM in
    `targets`; it raises (for the bus to log) only when the database stays unavailable."""

    def on_event(ev: CallEvent) -> None:
        if not isinstance(ev, CallEnded) or not targets:
            return
        rec = ev.call
        if (phones or numbers()).query(customer_number(rec)) is None:
            return  # internal, anonymous, or an extension: no customer to log it against
        payload = rec.to_dict()
        items = [(KIND, name, call_key(rec), payload) for name in targets]
        if enqueue_all(enqueue, items, f"the CRM call log of call {call_key(rec)}"):
            notify()

    return on_event


def crm_log_deliverer(
    connectors: Mapping[str, Connector],
    phones: PhoneNumbers,
    recording_url: Callable[[CallRecord], str | None],
) -> Deliver:
    """Log one queued call in the CRM named by the row's target; returns the CRM's id of the entry.

    The contact is looked up in that CRM itself (not the caller directory's cache: the
    entry must point at this CRM's record). A lookup failure is raised like a failed log,
    so a CRM that is down is retried as a whole later.
    """

    def deliver(payload: dict[str, Any], target: str, key: str) -> str | None:
        connector = connectors.get(target)
        if connector is None:
            raise DeliveryError(
                f"no CRM named {target!r} is configured (any more): add it back or drop the row",
                retryable=False,
            )
        rec = CallRecord.from_dict(payload)
        query = phones.query(customer_number(rec))
        if query is None:
            raise DeliveryError(f"call {key} has no customer number to log", retryable=False)
        contacts = connector.find_contacts(query)
        best = contacts[0] if contacts else None
        entry = CallLogEntry(
            key=key,
            direction=rec.direction,
            number=query.e164 or query.raw,
            started_at=rec.started_at,
            duration_s=rec.talk_seconds or 0.0,
            disposition=rec.disposition or ("answered" if rec.answered_at else "missed"),
            miss_reason=rec.miss_reason,
            agent=rec.agents[-1] if rec.agents else rec.agent,
            caller_name=rec.caller_name if rec.direction == "inbound" else None,
            recording_url=recording_url(rec),
            contact_id=best.id if best else None,
            owner=best.owner if best else None,
        )
        result = connector.log_call(entry)
        log.info(
            "%s: logged call %s as %s (contact: %s)", target, key, result, entry.contact_id or "none found"
        )
        return result

    return deliver
