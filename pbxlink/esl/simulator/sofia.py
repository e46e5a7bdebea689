"""The life of a sofia (SIP) leg in generated calls, event by event, as the `sip/` capture shows it.

One channel per party, as on a real site: the customer's call arrives from the trunk
(`sofia/external/<number>@<trunk ip>`, inbound) and the agent's phone is called on its registered
contact (`sofia/internal/<ext>@<ip>:<port>`, outbound). The order of the events within each step
(state changes, progress, answer, bridge, BYE, reporting, destroy) follows the capture.
"""

from __future__ import annotations

from pbxlink.esl.simulator.channels import LiveChannel
from pbxlink.esl.simulator.flow import Caller, Site
from pbxlink.esl.simulator.legs import Q850, CallBuilder, Leg
from pbxlink.esl.simulator.stamp import local_time

_PCMU = ("PCMU", "8000", "64000")
_TIMES = (
    *("Profile-Created-Time", "Channel-Created-Time", "Channel-Answered-Time", "Channel-Progress-Time"),
    *("Channel-Progress-Media-Time", "Channel-Hangup-Time", "Channel-Transfer-Time"),
    *("Channel-Resurrect-Time", "Channel-Bridged-Time", "Channel-Last-Hold", "Channel-Hold-Accum"),
)


def _profile(
    leg_uuid: str,
    name: str,
    direction: str,
    cid: tuple[str, str],
    callee: tuple[str, str] | None,
    addr: str,
    dest: str,
    context: str,
    created: str,
) -> dict[str, str]:
    profile = {"Direction": direction, "Logical-Direction": direction, "Username": cid[0], "Dialplan": "XML"}
    profile |= {"Caller-ID-Name": cid[1], "Caller-ID-Number": cid[0]}
    profile |= {"Orig-Caller-ID-Name": cid[1], "Orig-Caller-ID-Number": cid[0]}
    if callee:
        profile |= {"Callee-ID-Name": callee[1], "Callee-ID-Number": callee[0]}
    profile |= {"Network-Addr": addr, "ANI": cid[0], "Destination-Number": dest, "Unique-ID": leg_uuid}
    profile |= {"Source": "mod_sofia", "Context": context, "Channel-Name": name, "Profile-Index": "1"}
    profile |= dict.fromkeys(_TIMES, "0")
    profile["Profile-Created-Time"] = profile["Channel-Created-Time"] = created
    return profile | {"Screen-Bit": "true", "Privacy-Hide-Name": "false", "Privacy-Hide-Number": "false"}


def _codec(b: CallBuilder, leg: Leg) -> None:
    """The two CODEC events a leg fires when its media is set up."""
    leg.codec = _PCMU
    read = [("channel-read-codec-name", "PCMU"), ("channel-read-codec-rate", "8000")]
    b.fire(
        "CODEC",
        leg,
        after=[*read, ("channel-read-codec-bit-rate", "64000")],
        calling=("switch_core_codec.c", "switch_core_session_set_real_read_codec", 168),
    )
    write = [("Channel-Write-Codec-Name", "PCMU"), ("Channel-Write-Codec-Rate", "8000")]
    b.fire(
        "CODEC",
        leg,
        after=[*write, ("Channel-Write-codec-bit-rate", "64000")],
        calling=("switch_core_codec.c", "switch_core_session_set_write_codec", 450),
    )
    for name, value in (
        ("read_codec", "PCMU"),
        ("read_rate", "8000"),
        ("write_codec", "PCMU"),
        ("write_rate", "8000"),
    ):
        leg.var(name, value)


def inbound(b: CallBuilder, site: Site, caller: Caller, did: str) -> Leg:
    """The customer's INVITE from the trunk: created, routed, and running the dialplan."""
    leg_uuid = b.ids.uuid()
    name = f"sofia/{site.trunk_profile}/{caller.number}@{site.trunk_ip}"
    cid = (caller.number, caller.name)
    profile = _profile(leg_uuid, name, "inbound", cid, None, site.trunk_ip, did, "public", b.micros())
    leg = Leg(leg_uuid, name, "inbound", profile, {}, True, leg_uuid)
    tag = f"{b.ids.rng.randrange(10**9)}"
    for var, value in (
        *[("direction", "inbound"), ("uuid", leg_uuid), ("call_uuid", leg_uuid)],
        *[("session_id", b.ids.session_id()), ("sip_from_user", caller.number)],
        *[("sip_from_uri", f"{caller.number}@{site.trunk_ip}"), ("sip_from_host", site.trunk_ip)],
        *[("channel_name", name), ("sip_call_id", f"{b.ids.uuid()}@{site.trunk_ip}")],
        *[("sip_network_ip", site.trunk_ip), ("sip_network_port", "5060"), ("sip_invite_stamp", b.micros())],
        *[("sip_via_protocol", "udp"), ("sip_from_tag", tag), ("sofia_profile_name", site.trunk_profile)],
        ("sofia_profile_url", f"sip:mod_sofia@{site.switch_ip}:5080"),
        *[
            ("sip_from_display", caller.name),
            ("sip_full_from", f'"{caller.name}" <sip:{caller.number}@{site.trunk_ip}>;tag={tag}'),
        ],
        *[("sip_full_to", f"<sip:{did}@{site.switch_ip}:5080>"), ("sip_req_user", did)],
        *[("sip_req_uri", f"{did}@{site.switch_ip}:5080"), ("sip_to_user", did)],
        *[("sip_to_uri", f"{did}@{site.switch_ip}:5080"), ("sip_user_agent", "Carrier SBC")],
        ("endpoint_disposition", "RECEIVED"),
    ):
        leg.var(var, value)
    b.legs.append(leg)
    leg.profiled = False
    b.fire("CHANNEL_STATE", leg)
    leg.profiled = True
    _codec(b, leg)
    b.state(leg, "CS_INIT")
    leg.state_number = 2
    b.fire("CHANNEL_CREATE", leg)
    leg.state = "CS_ROUTING"
    b.callstate(leg, "RINGING")
    b.state(leg, "CS_ROUTING")
    b.state(leg, "CS_EXECUTE")
    return leg


def to_agent(
    b: CallBuilder,
    site: Site,
    agent: str,
    cid: tuple[str, str],
    originator: Leg | None,
    variables: tuple[tuple[str, str], ...] = (),
) -> Leg:
    """The call to the agent's phone on its registered contact (from a bridge, a queue or originate).

    `variables` are set before the leg is created: mod_callcenter's `cc_*` on a queue's agent leg,
    an originate's `{…}` ones on the phone it rings.
    """
    ip, port = site.agent_contact(agent)
    name = f"sofia/{site.agent_profile}/{agent}@{ip}:{port}"
    return _outbound(b, site, name, agent, f"{ip}:{port}", cid, originator, variables)


def to_trunk(
    b: CallBuilder,
    site: Site,
    number: str,
    cid: tuple[str, str],
    originator: Leg | None,
    variables: tuple[tuple[str, str], ...] = (),
) -> Leg:
    """The call out through the carrier trunk: click-to-call's second leg, or (no `originator`) the
    customer-first callback's first, `variables` being its originate's."""
    name = f"sofia/{site.trunk_profile}/{number}"
    return _outbound(b, site, name, number, site.trunk_ip, cid, originator, variables)


def _outbound(
    b: CallBuilder,
    site: Site,
    name: str,
    dest: str,
    host: str,
    cid: tuple[str, str],
    originator: Leg | None,
    variables: tuple[tuple[str, str], ...] = (),
) -> Leg:
    """An outbound leg created and routed: OUTGOING, CREATE, ORIGINATE, then waiting on the far end."""
    leg_uuid = b.ids.uuid()
    profile_name = name.split("/")[1]
    addr = originator.profile["Network-Addr"] if originator else site.switch_ip
    profile = _profile(
        leg_uuid, name, "outbound", cid, ("Outbound Call", dest), addr, dest, site.domain, b.micros()
    )
    call_uuid = originator.uuid if originator else leg_uuid
    leg = Leg(leg_uuid, name, "outbound", profile, {}, False, call_uuid, state="CS_NONE", state_number=1)
    if originator:
        leg.other = ("originator", _as_originator(originator))
    for var, value in (
        *[("direction", "outbound"), ("is_outbound", "true"), ("uuid", leg_uuid)],
        *[("session_id", b.ids.session_id()), ("sip_profile_name", profile_name), ("channel_name", name)],
        *[("sip_destination_url", f"sip:{dest}@{host}"), ("call_uuid", call_uuid)],
        *([("originator", originator.uuid), ("signal_bond", originator.uuid)] if originator else []),
        *[("sip_req_uri", f"{dest}@{host}"), ("sip_to_host", host), ("sofia_profile_name", profile_name)],
        *variables,
    ):
        leg.var(var, value)
    b.legs.append(leg)
    b.fire("CHANNEL_OUTGOING", leg)
    b.state(leg, "CS_INIT")
    leg.state_number = 2
    b.fire("CHANNEL_CREATE", leg)
    b.fire("CHANNEL_ORIGINATE", leg)
    b.state(leg, "CS_ROUTING", 2)
    b.state(leg, "CS_CONSUME_MEDIA")
    return leg


def resume(channel: LiveChannel) -> Leg:
    """A live channel (replayed or generated) as a leg the builder can carry on with."""
    data = dict(channel.data)
    read = data.get("Channel-Read-Codec-Name")
    codec = (
        str(read),
        str(data.get("Channel-Read-Codec-Rate")),
        str(data.get("Channel-Read-Codec-Bit-Rate")),
    )
    leg = Leg(
        channel.uuid,
        str(data.get("Channel-Name", channel.row["name"])),
        str(data.get("Call-Direction", channel.row["direction"])),
        {k[7:]: str(v) for k, v in channel.data if k.startswith("Caller-")},
        dict(channel.variables),
        data.get("Channel-HIT-Dialplan") == "true",
        channel.uuid,
        str(data.get("Channel-State", "CS_EXECUTE")),
        int(str(data.get("Channel-State-Number", "4"))),
        str(data.get("Channel-Call-State", "ACTIVE")),
        str(data.get("Answer-State", "answered")),
        codec=codec if read else None,
    )
    return leg


def _as_originator(leg: Leg) -> dict[str, str]:
    """The originator's profile as its outbound leg carries it: copied at creation, times not set."""
    return {k: "0" if k in _TIMES else v for k, v in leg.profile.items()}


def _with_callee(profile: dict[str, str], name: str, number: str) -> dict[str, str]:
    """The profile with Callee-ID-Name/Number where FreeSWITCH puts them, after the Orig-Caller-ID."""
    out: dict[str, str] = {}
    for key, value in profile.items():
        out[key] = value
        if key == "Orig-Caller-ID-Number":
            out |= {"Callee-ID-Name": name, "Callee-ID-Number": number}
    return out


def ring(b: CallBuilder, leg: Leg, caller: Leg | None) -> None:
    """180 Ringing from the phone: the leg (and the caller waiting on it) show progress."""
    if caller is not None and "Callee-ID-Name" not in caller.profile:
        caller.profile = _with_callee(
            caller.profile, leg.profile["Callee-ID-Name"], leg.profile["Callee-ID-Number"]
        )
    leg.profile["Channel-Progress-Time"] = b.micros()
    leg.var("sip_term_status", "180")
    b.fire("CHANNEL_PROGRESS", leg)
    b.callstate(leg, "RINGING")
    if caller is not None and caller.profile["Channel-Progress-Time"] == "0":
        caller.profile["Channel-Progress-Time"] = b.micros()
        b.fire("CHANNEL_PROGRESS", caller)


def answer(b: CallBuilder, leg: Leg) -> None:
    """200 OK (or the switch answering the caller itself): CHANNEL_ANSWER, call state ACTIVE."""
    if leg.codec is None:
        _codec(b, leg)
    leg.profile["Channel-Answered-Time"] = b.micros()
    leg.answer_state = "answered"
    leg.var("endpoint_disposition", "ANSWER")
    b.fire("CHANNEL_ANSWER", leg)
    b.callstate(leg, "ACTIVE")


def bridge(b: CallBuilder, a: Leg, other: Leg) -> None:
    """The two legs bridged: CHANNEL_BRIDGE on the a-leg, then CALL_UPDATE on both, as in the capture."""
    a.other = ("originatee", dict(other.profile))
    if other.other is None:
        other.other = ("originator", _as_originator(a))
    a.profile["Channel-Bridged-Time"] = b.micros()
    for leg, peer in ((a, other), (other, a)):
        leg.var("bridge_uuid", peer.uuid)
        leg.var("bridge_channel", peer.name)
        leg.var("last_bridge_to", peer.uuid)
    b.fire("CHANNEL_BRIDGE", a, before=[("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", other.uuid)])
    b.state(other, "CS_EXCHANGE_MEDIA")
    for leg, peer in ((other, a), (a, other)):
        sent = [("Sent-Callee-ID-Name", peer.profile["Caller-ID-Name"])]
        sent.append(("Sent-Callee-ID-Number", peer.profile["Caller-ID-Number"]))
        b.fire("CALL_UPDATE", leg, before=[("Direction", "SEND"), *sent, ("Bridged-To", peer.uuid)])


def unbridge(b: CallBuilder, a: Leg, other: Leg) -> None:
    b.fire("CHANNEL_UNBRIDGE", a, before=[("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", other.uuid)])


def hangup(b: CallBuilder, leg: Leg, cause: str, disposition: str) -> None:
    """CHANNEL_HANGUP: the BYE (or CANCEL, or a refusal) that ends the leg."""
    leg.hangup_cause, leg.answer_state, leg.state_number = cause, "hangup", 10
    leg.profile["Channel-Hangup-Time"] = b.micros()
    leg.var("sip_hangup_disposition", disposition)
    b.fire("CHANNEL_HANGUP", leg)


def report(b: CallBuilder, leg: Leg) -> None:
    """The leg winds down: CS_HANGUP, call state HANGUP, CS_REPORTING and CHANNEL_HANGUP_COMPLETE."""
    b.state(leg, "CS_HANGUP")
    b.callstate(leg, "HANGUP")
    b.state(leg, "CS_REPORTING")
    cause = leg.hangup_cause or "NORMAL_CLEARING"
    leg.var("hangup_cause", cause)
    leg.var("hangup_cause_q850", str(Q850.get(cause, 16)))
    for name, value in _billing(leg, b.now).items():
        leg.var(name, value)
    b.fire("CHANNEL_HANGUP_COMPLETE", leg, before=[("Hangup-Cause", cause)])


def destroy(b: CallBuilder, leg: Leg) -> None:
    leg.state_number = 12
    b.fire("CHANNEL_DESTROY", leg)
    b.state(leg, "CS_DESTROY")


def _billing(leg: Leg, end: float) -> dict[str, str]:
    """The CDR variables FreeSWITCH sets at hangup, from the leg's caller-profile times."""
    times = {k: int(leg.profile[f"Channel-{k}-Time"]) / 1e6 for k in ("Created", "Answered", "Bridged")}
    start, answered, bridged = times["Created"], times["Answered"], times["Bridged"]
    out: dict[str, str] = {}
    for label, at in (("start", start), ("answer", answered), ("bridge", bridged), ("end", end)):
        out[f"{label}_stamp"] = local_time(at) if at else ""
        out[f"{label}_epoch"], out[f"{label}_uepoch"] = str(int(at)), str(round(at * 1e6))
    billed = end - answered if answered else 0.0
    waited = (answered or end) - start
    out |= {"caller_id": f'"{leg.profile["Caller-ID-Name"]}" <{leg.profile["Caller-ID-Number"]}>'}
    out |= {"duration": str(int(end - start)), "billsec": str(int(billed)), "waitsec": str(int(waited))}
    out |= {"mduration": str(int((end - start) * 1000)), "billmsec": str(int(billed * 1000))}
    out |= {"uduration": str(round((end - start) * 1e6)), "billusec": str(round(billed * 1e6))}
    return {k: v for k, v in out.items() if v}
