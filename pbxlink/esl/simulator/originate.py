"""Reading an `originate` command line into the click-to-call the simulator plays.

`originate {vars}<call url> <exten>|&<app>(<args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>]
[<timeout>]`: the call url names the agent's phone (`user/201`, `sofia/internal/201@…`,
`loopback/201/default`), the exten or `&bridge(…)` the number to call, and the variables the
caller IDs (origination_* shown to the agent, effective_* sent to the customer).
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
    agent: str
    number: str | None  # None: an app other than bridge, no second leg
    shown: tuple[str, str]  # (number, name) the agent's phone shows
    sent: tuple[str, str]  # (number, name) the customer sees


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
    return OriginateRequest(_user(endpoint), number, shown, sent)


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
