"""Reading an `originate` command line into the click-to-call or callback the simulator plays.

`originate {vars}<call url> <exten>|&<app>(<args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>]
[<timeout>]`: the call url names the first party (an agent's phone `user/201`,
`sofia/internal/201@…`, `loopback/201/default`; a queue; for a customer-first callback the
customer's number), the exten or `&bridge(…)` whom to call next, the context which flow, and
the variables the caller IDs (origination_* shown to the first party, effective_* sent to the
customer). Every `{}` variable is set on the channels the originate makes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

USAGE = (
    "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
    "[<cid_name>] [<cid_num>] [<timeout_sec>]\n"
)
DEFAULT_CID = ("0000000000", "FreeSWITCH")


@dataclass(frozen=True)
class OriginateRequest:
    endpoint: str  # the user part of the call url: an agent, a queue or a customer's number
    number: str | None  # None: an app other than bridge, no second leg
    shown: tuple[str, str]  # (number, name) the agent's phone shows
    sent: tuple[str, str]  # (number, name) the customer sees
    context: str = "default"  # the dialplan context the exten runs in
    variables: tuple[tuple[str, str], ...] = ()
    timeout: float = 60.0  # originate_timeout: how long the first party may ring


def parse_originate(text: str) -> OriginateRequest | None:
    """The request, or None when the line does not have originate's shape."""
    text = text.strip()
    variables: dict[str, str] = {}
    if text.startswith("{"):
        end = text.find("}")
        if end < 0:
            return None
        variables = _variables(text[1:end])
        text = text[end + 1 :]
    url, _, rest = text.partition(" ")
    application = re.match(r"\s*&(\w+)\(([^)]*)\)\s*", rest)
    if application:
        number = _user(application.group(2)) if application.group(1) == "bridge" else None
        args = rest[application.end() :].split()
    else:
        args = rest.split()
        if not args:
            return None
        number, args = args[0], args[1:]
    endpoint = re.sub(r"^\[[^\]]*\]", "", url)
    if not endpoint:
        return None
    shown = (
        variables.get("origination_caller_id_number") or (args[3] if len(args) > 3 else DEFAULT_CID[0]),
        variables.get("origination_caller_id_name") or (args[2] if len(args) > 2 else DEFAULT_CID[1]),
    )
    sent = (
        variables.get("effective_caller_id_number") or shown[0],
        variables.get("effective_caller_id_name") or shown[1],
    )
    timeout = variables.get("originate_timeout", "")
    return OriginateRequest(
        _user(endpoint),
        number,
        shown,
        sent,
        args[1] if len(args) > 1 else "default",
        tuple(variables.items()),
        float(timeout) if timeout.isdigit() and int(timeout) > 0 else 60.0,
    )


def _variables(text: str) -> dict[str, str]:
    """`a=1,b='x y'` (values may be quoted)."""
    out = {}
    for item in re.findall(r"(\w+)=('[^']*'|[^,]*)", text):
        out[item[0]] = item[1].strip("'")
    return out


def _user(endpoint: str) -> str:
    """The user part of a dial string: `user/201@d`, `sofia/internal/sip:201@h`, `loopback/201/default`."""
    parts = endpoint.strip().split("/")
    user = parts[1] if parts[0] == "loopback" and len(parts) > 1 else parts[-1]
    return user.removeprefix("sip:").split("@", 1)[0]
