"""PbxControl over ESL: every value is validated before it can reach the wire.

An ESL command is one line, ended by a blank line: a CR or LF in any value would let a
caller add headers or whole commands (`api system …`). Inside `originate`'s `{…}` a `,`
starts another variable, `'` quotes, `{`/`}` open or close the block and `^^` changes the
separator, so values may carry none of them; a value with spaces is quoted. Numbers are
dial strings only; extensions, contexts, variable names and uuids follow strict patterns.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import Future
from typing import Protocol

from pbxlink.domain.ports import OriginateHandle, OriginateRequest

DIAL = re.compile(r"\+?[0-9*#]{1,32}")
EXTENSION = re.compile(r"[A-Za-z0-9_*#+.-]{1,64}")
CONTEXT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
PATH = re.compile(r"/[A-Za-z0-9_./-]{1,250}")
_CALLER_ID = re.compile(r'\s*(?:"?(?P<name>[^"<>]*?)"?\s*)?<(?P<number>[^<>]*)>\s*|(?P<only>[^<>]*)')
_UNSAFE_VALUE = set("\r\n\0,'{}\\")
_UNSAFE_TEMPLATE = set("\r\n\0\t ,'\"")
TAG_VARIABLE = "pbxlink_tag"

log = logging.getLogger(__name__)


class Commands(Protocol):
    """What the control needs of the link (pbxlink.esl.client.EslClient)."""

    def api(self, command: str) -> str: ...

    def bgapi(self, command: str, *, job_uuid: str | None = None) -> Future[str]: ...


class EslControl:
    """Originate, hang up, transfer, record and set variables on one FreeSWITCH.

    `agent_dial` rings an agent: `user/{ext}` reaches a registered user on a stock FreeSWITCH
    or FusionPBX (`user/{ext}@pbx.example.com` for a multi-tenant one). The number is dialled
    through the dialplan (`<number> XML <context>`), or, with `number_dial` such as
    `sofia/gateway/carrier/{number}`, bridged straight to that dial string. An endpoint that
    is an outside number (a callback that rings the customer first) is dialled with
    `number_dial`, else through the dialplan of `dial_context` (`loopback/<number>/<context>`).
    """

    def __init__(
        self,
        name: str,
        link: Commands,
        *,
        agent_dial: str = "user/{ext}",
        number_dial: str | None = None,
        dial_context: str = "default",
    ) -> None:
        self.name = name
        self._link = link
        self.dial_context = _match("dial_context", dial_context, CONTEXT, "a dialplan context")
        self.agent_dial = _template("agent_dial", agent_dial, "{ext}")
        self.number_dial = None if number_dial is None else _template("number_dial", number_dial, "{number}")

    def originate(self, req: OriginateRequest) -> OriginateHandle:
        """Ring the agent `req.endpoint`; when it answers, call `req.exten`. Asynchronous on the PBX.

        The agent's phone shows `req.caller_id`, else the number it is about to call. The
        tag is the `pbxlink_tag` channel variable and the job's Job-UUID.
        """
        dial = self._first_leg(req.endpoint)
        if self.number_dial is not None and isinstance(req.exten, str) and DIAL.fullmatch(req.exten):
            number = req.exten
            target = f"&bridge({self.number_dial.replace('{number}', number)})"
        else:
            number = _match("exten", req.exten, EXTENSION, "an extension or number")
            target = f"{number} XML {_match('context', req.context, CONTEXT, 'a dialplan context')}"
        tag = req.the_tag()
        variables: dict[str, str] = {}
        if req.caller_id is not None or not _outside(req.endpoint):
            # An agent's phone shows whom it is about to call; an outside number rung first (a
            # broadcast with no caller ID set) shows the site's own outbound caller ID.
            name, cid = _caller_id(req.caller_id, number)
            variables = {"origination_caller_id_number": cid, "origination_caller_id_name": name}
        variables["originate_timeout"] = str(_timeout(req.timeout_s))
        for key, value in req.variables.items():
            if _match("variables", key, VARIABLE, "a channel variable name") == TAG_VARIABLE:
                raise ValueError(f"variables: {TAG_VARIABLE} is set by pbxlink itself")
            variables[key] = _value(f"variables[{key}]", value)
        variables[TAG_VARIABLE] = tag
        block = ",".join(f"{k}={_quoted(v)}" for k, v in variables.items())
        job = self._link.bgapi(_line(f"originate {{{block}}}{dial} {target}"), job_uuid=tag)
        job.add_done_callback(lambda done: self._outcome(done, dial, number, tag))
        return OriginateHandle(pbx=self.name, tag=tag)

    def _first_leg(self, endpoint: str) -> str:
        """The dial string of what rings first: an agent's phone, or an outside number."""
        if isinstance(endpoint, str) and DIAL.fullmatch(endpoint) and _outside(endpoint):
            if self.number_dial is not None:
                return self.number_dial.replace("{number}", endpoint)
            return f"loopback/{endpoint}/{self.dial_context}"
        return self.agent_dial.replace("{ext}", _match("endpoint", endpoint, EXTENSION, "an extension"))

    def _outcome(self, job: Future[str], dial: str, number: str, tag: str) -> None:
        """An originate that failed on the PBX is said in the log; the call record shows the rest."""
        if job.cancelled():
            return
        error = job.exception()
        answer = str(error) if error is not None else job.result().strip()
        if error is not None or not answer.startswith("+OK"):
            log.warning(
                "ESL %s: originate %s to %s (tag %s) failed: %s — check that the agent's phone is "
                "registered and the number routes in the dialplan",
                self.name,
                dial,
                number,
                tag,
                answer,
            )

    def hangup(self, call_id: str) -> None:
        """Hang up the call's leg `call_id` (the customer's); its bridged legs follow."""
        self._api(f"uuid_kill {_uuid(call_id)} NORMAL_CLEARING")

    def transfer(self, call_id: str, exten: str, context: str) -> None:
        """Send leg `call_id` to `exten` in the XML dialplan `context` (a blind transfer)."""
        exten = _match("exten", exten, EXTENSION, "an extension or number")
        context = _match("context", context, CONTEXT, "a dialplan context")
        self._api(f"uuid_transfer {_uuid(call_id)} {exten} XML {context}")

    def start_recording(self, call_id: str, path: str) -> None:
        """Record leg `call_id` (both directions) to `path`, an absolute file name on the PBX."""
        self._api(f"uuid_record {_uuid(call_id)} start {_path(path)}")

    def stop_recording(self, call_id: str, path: str | None = None) -> None:
        """Stop recording `path` on leg `call_id`, or every recording of that leg."""
        self._api(f"uuid_record {_uuid(call_id)} stop {'all' if path is None else _path(path)}")

    def set_variable(self, call_id: str, name: str, value: str) -> None:
        name = _match("name", name, VARIABLE, "a channel variable name")
        self._api(f"uuid_setvar {_uuid(call_id)} {name} {_value(name, value)}")

    def _api(self, command: str) -> None:
        answer = self._link.api(_line(command)).strip()
        if not answer.startswith("+OK"):
            raise RuntimeError(
                f"ESL {self.name}: {command.split(' ', 1)[0]} refused: {answer or 'no answer'}"
            )


def _outside(number: str) -> bool:
    """An outside number rather than an extension: international, or 7 digits and more."""
    return number.startswith("+") or sum(c.isdigit() for c in number) >= 7


def _match(field: str, value: object, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise ValueError(f"{field}: {value!r} is not {what}")
    return value


def _uuid(call_id: object) -> str:
    return _match("call_id", call_id, UUID, "a FreeSWITCH channel uuid")


def _path(path: object) -> str:
    value = _match("path", path, PATH, "an absolute file name of letters, digits, _ . - /")
    if "/../" in value + "/" or "//" in value:
        raise ValueError(f"path: {path!r} may not contain .. or //")
    return value


def _value(field: str, value: object) -> str:
    if not isinstance(value, str) or len(value) > 256:
        raise ValueError(f"{field}: expected text of at most 256 characters")
    if _UNSAFE_VALUE.intersection(value) or value.startswith("^^") or not value.isprintable():
        raise ValueError(f"{field}: may not contain , ' {{ }} \\ or control characters, nor start with ^^")
    return value


def _quoted(value: str) -> str:
    return f"'{value}'" if " " in value else value


def _caller_id(caller_id: str | None, number: str) -> tuple[str, str]:
    """(name, number) from `"Name" <number>`, `Name <number>`, `<number>` or a bare number."""
    if caller_id is None:
        return number, number
    m = _CALLER_ID.fullmatch(caller_id) if isinstance(caller_id, str) and caller_id.isprintable() else None
    if m is None:
        raise ValueError(f"caller_id: {caller_id!r} is not `Name <number>` or a number")
    cid = _match("caller_id", (m["number"] if m["only"] is None else m["only"]).strip(), DIAL, "a number")
    return _value("caller_id", (m["name"] or "").strip() or cid), cid


def _timeout(seconds: object) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 1 <= seconds <= 600:
        raise ValueError(f"timeout_s: {seconds!r} is not between 1 and 600 seconds")
    return int(seconds)


def _template(field: str, template: str, placeholder: str) -> str:
    if template.count(placeholder) != 1 or _UNSAFE_TEMPLATE.intersection(template):
        raise ValueError(f"{field}: {template!r} needs {placeholder} once and no spaces, commas or quotes")
    return template


def _line(command: str) -> str:
    """The last line of defence: whatever was built, nothing but one printable line reaches the wire."""
    if not command.isprintable():
        raise ValueError("command: contains CR, LF, NUL or another control character")
    return command
