"""PbxControl over AMI: every value is validated before it can reach the wire.

An AMI action is plain `Header: value` lines, so a CR or LF in any value would let a
caller inject headers or whole actions (a second Originate, a Command). Numbers are dial
strings only; names follow Asterisk's own character sets; variable values may not carry
the `,`/`|` that Asterisk splits on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from pbxlink.domain.ports import OriginateHandle, OriginateRequest

#: sends one action and returns the PBX's answer headers; raises on a lost link or timeout
Send = Callable[[dict[str, str | list[str]]], Mapping[str, object]]

DIAL = re.compile(r"\+?[0-9*#]{1,32}")
NAME = re.compile(r"[A-Za-z0-9_.+-]{1,80}")
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
CALL_ID = re.compile(r"[A-Za-z0-9_.-]{1,150}")
_UNSAFE = ("\r", "\n", "\0")
TAG_VARIABLE = "PBXLINK_TAG"
#: every Originate's ActionID is this and its tag: the tracker finds the call by it
ORIGINATE_ACTION = "pbxlink-originate-"


class AmiControl:
    """Originate and hang up on one Asterisk; `dial_context` is where endpoints are rung from.

    The default `from-internal` reaches both extensions and outside numbers on a stock
    FreePBX; plain Asterisk sites set their own (e.g. the context their phones dial in).
    """

    def __init__(self, name: str, send: Send, dial_context: str = "from-internal") -> None:
        self.name = name
        self._send = send
        self.dial_context = _name("dial_context", dial_context)

    def originate(self, req: OriginateRequest) -> OriginateHandle:
        """Ring `req.endpoint`; when it answers, run `req.context`/`req.exten`. Asynchronous on the PBX."""
        endpoint = _dial("endpoint", req.endpoint)
        action: dict[str, str | list[str]] = {
            "Action": "Originate",
            "Channel": f"Local/{endpoint}@{self.dial_context}",
            "Context": _name("context", req.context),
            "Exten": _name("exten", req.exten),
            "Priority": "1",
            "Timeout": str(_timeout_ms(req.timeout_s)),
            "Async": "true",
        }
        if req.caller_id is not None:
            action["CallerID"] = _text("caller_id", req.caller_id)
        tag = req.the_tag()
        variables = [f"{_variable(k)}={_value(k, v)}" for k, v in req.variables.items()]
        if any(v.startswith(f"{TAG_VARIABLE}=") for v in variables):
            raise ValueError(f"variables: {TAG_VARIABLE} is set by pbxlink itself")
        action["Variable"] = [*variables, f"{TAG_VARIABLE}={tag}"]
        # One ActionID per request, derived from its tag: the answer and the later
        # OriginateResponse correlate to it, and a duplicate is recognisable as such.
        action["ActionID"] = f"{ORIGINATE_ACTION}{tag}"
        self._checked(action)
        return OriginateHandle(pbx=self.name, tag=tag)

    def hangup(self, call_id: str) -> None:
        """Hang up the call whose first channel has Uniqueid `call_id` (its Linkedid); the bridge follows."""
        if not isinstance(call_id, str) or CALL_ID.fullmatch(call_id) is None:
            raise ValueError(f"call_id: {call_id!r} is not an Asterisk call id")
        self._checked({"Action": "Hangup", "Channel": call_id, "Cause": "16"})

    def _checked(self, action: dict[str, str | list[str]]) -> None:
        for key, value in action.items():
            for item in value if isinstance(value, list) else [value]:
                _text(key, item)  # last line of defence: nothing unsafe reaches the wire
        answer = self._send(action)
        if str(answer.get("Response", "")).lower() != "success":
            reason = answer.get("Message") or answer.get("Response")
            raise RuntimeError(f"AMI {self.name}: {action['Action']} refused: {reason}")


def _text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected text, got {type(value).__name__}")
    if any(c in value for c in _UNSAFE) or len(value) > 256:
        raise ValueError(f"{field}: contains CR, LF or NUL, or is too long")
    return value


def _dial(field: str, value: object) -> str:
    if not isinstance(value, str) or DIAL.fullmatch(value) is None:
        raise ValueError(f"{field}: {value!r} is not a dial string (digits, * and #, optional leading +)")
    return value


def _name(field: str, value: object) -> str:
    if not isinstance(value, str) or NAME.fullmatch(value) is None:
        raise ValueError(f"{field}: {value!r} is not a valid extension or context name")
    return value


def _variable(name: object) -> str:
    if not isinstance(name, str) or VARIABLE.fullmatch(name) is None:
        raise ValueError(f"variables: {name!r} is not a valid channel variable name")
    return name


def _value(name: str, value: object) -> str:
    text = _text(f"variables[{name}]", value)
    if "," in text or "|" in text:
        raise ValueError(f"variables[{name}]: may not contain ',' or '|'")
    return text


def _timeout_ms(seconds: object) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 1 <= seconds <= 600:
        raise ValueError(f"timeout_s: {seconds!r} is not between 1 and 600 seconds")
    return int(seconds * 1000)
