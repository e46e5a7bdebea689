"""The list actions (CoreShowChannels, Status, QueueSummary, QueueStatus), answered from the live state.

A list is an ack with `EventList: start`, one event per item carrying the client's ActionID,
then `<Action>Complete` with `ListItems` (astman_send_listack / astman_send_list_complete).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pbxlink.ami.simulator.wire import ActionRequest, Headers, encode

if TYPE_CHECKING:
    from pbxlink.ami.simulator.server import AmiSimulator
    from pbxlink.ami.simulator.session import Session


async def core_show_channels(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    now, items = time.time(), []
    for ch in sim.channels.channels.values():
        seconds = ch.duration(now)
        duration = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        extra = [("Application", ch.application), ("ApplicationData", ch.app_data), ("Duration", duration)]
        items.append(
            [
                ("Event", "CoreShowChannel"),
                *req.id_header(),
                *ch.snapshot_headers(),
                *extra,
                ("BridgeId", ch.bridge),
            ]
        )
    _list(session, req, "Channels will follow", items, "CoreShowChannelsComplete")
    return True


async def status(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    wanted = req.get("Channel")
    channels = [c for c in sim.channels.channels.values() if not wanted or c.name == wanted]
    if wanted and not channels:
        session.send(req.respond("Error", [("Message", "No such channel")]))
        return True
    now, items = time.time(), []
    for ch in channels:
        tech = ch.name.split("/", 1)[0]
        connected = [("EffectiveConnectedLineNum", ch.snapshot["ConnectedLineNum"])]
        connected.append(("EffectiveConnectedLineName", ch.snapshot["ConnectedLineName"]))
        media = [
            ("Nativeformats", "(alaw)"),
            ("Readformat", "alaw"),
            ("Readtrans", ""),
            ("Writeformat", "alaw"),
        ]
        media += [
            ("Writetrans", ""),
            ("Callgroup", "0"),
            ("Pickupgroup", "0"),
            ("Seconds", str(ch.duration(now))),
        ]
        head = [
            ("Event", "Status"),
            ("Privilege", "Call"),
            *ch.snapshot_headers(),
            ("Type", tech),
            ("DNID", ""),
        ]
        app = [
            ("TimeToHangup", "0"),
            ("BridgeID", ch.bridge),
            ("Application", ch.application),
            ("Data", ch.app_data),
        ]
        items.append([*head, *connected, *app, *media, *req.id_header()])
    _list(session, req, "Channel status will follow", items, "StatusComplete", [("Items", str(len(items)))])
    return True


async def queue_summary(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    items = []
    for queue, members in _queues(sim, req):
        callers = len(sim.channels.queue_callers.get(queue, {}))
        available = sum(not sim.channels.endpoint_in_use(f"PJSIP/{m}") for m in members)
        counts = [("LoggedIn", str(len(members))), ("Available", str(available)), ("Callers", str(callers))]
        times = [("HoldTime", "0"), ("TalkTime", "0"), ("LongestHoldTime", "0")]
        items.append([("Event", "QueueSummary"), ("Queue", queue), *counts, *times, *req.id_header()])
    _list(session, req, "Queue summary will follow", items, "QueueSummaryComplete")
    return True


async def queue_status(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    items, now = [], time.time()
    for queue, members in _queues(sim, req):
        waiting = sim.channels.queue_callers.get(queue, {})
        params = [("Max", "0"), ("Strategy", "ringall"), ("Calls", str(len(waiting))), ("Holdtime", "0")]
        params += [("TalkTime", "0"), ("Completed", "0"), ("Abandoned", "0"), ("ServiceLevel", "0")]
        params += [("ServicelevelPerf", "0.0"), ("ServicelevelPerf2", "0.0"), ("Weight", "0")]
        items.append([("Event", "QueueParams"), ("Queue", queue), *params, *req.id_header()])
        items += [_queue_member(sim, req, queue, m) for m in members]
        for position, (uniqueid, joined) in enumerate(waiting.items(), start=1):
            items.append(_queue_entry(sim, req, queue, position, uniqueid, int(now - joined)))
    _list(session, req, "Queue status will follow", items, "QueueStatusComplete")
    return True


def _queue_member(sim: AmiSimulator, req: ActionRequest, queue: str, member: str) -> Headers:
    in_use = sim.channels.endpoint_in_use(f"PJSIP/{member}")
    where = [("Location", f"PJSIP/{member}"), ("StateInterface", f"PJSIP/{member}"), ("Membership", "static")]
    stats = [("Penalty", "0"), ("CallsTaken", "0"), ("LastCall", "0"), ("LastPause", "0")]
    stats += [
        ("LoginTime", str(int(sim.started))),
        ("InCall", str(int(in_use))),
        ("Status", "2" if in_use else "1"),
    ]
    pause = [("Paused", "0"), ("PausedReason", ""), ("Wrapuptime", "0")]
    return [
        ("Event", "QueueMember"),
        ("Queue", queue),
        ("Name", f"Agent {member}"),
        *where,
        *stats,
        *pause,
        *req.id_header(),
    ]


def _queue_entry(
    sim: AmiSimulator, req: ActionRequest, queue: str, position: int, uniqueid: str, wait: int
) -> Headers:
    snapshot = sim.channels.channels[uniqueid].snapshot if uniqueid in sim.channels.channels else {}
    who = [(k, snapshot.get(k, "")) for k in ("Channel", "Uniqueid", "CallerIDNum", "CallerIDName")]
    who += [(k, snapshot.get(k, "")) for k in ("ConnectedLineNum", "ConnectedLineName")]
    entry = [("Event", "QueueEntry"), ("Queue", queue), ("Position", str(position)), *who]
    return [*entry, ("Wait", str(wait)), ("Priority", "0"), *req.id_header()]


def _queues(sim: AmiSimulator, req: ActionRequest) -> list[tuple[str, list[str]]]:
    wanted = req.get("Queue")
    return [(q, m) for q, m in sim.queues.items() if not wanted or q == wanted]


def _list(
    session: Session,
    req: ActionRequest,
    message: str,
    items: list[Headers],
    complete: str,
    extra: Headers | None = None,
) -> None:
    """A list action: the ack, the items, then `<X>Complete` with ListItems (astman_send_list_complete)."""
    session.send(req.respond("Success", [("EventList", "start"), ("Message", message)]))
    for item in items:
        session.send(encode(item))
    done = [("Event", complete), *req.id_header(), ("EventList", "Complete"), ("ListItems", str(len(items)))]
    session.send(encode([*done, *(extra or [])]))
