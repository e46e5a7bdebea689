"""`pbxlink check` for an Asterisk: what works, what does not, and the exact fix, in plain words.

A short-lived raw session (its own socket and the FrameParser, no reconnects): connect,
banner, Login with events off, then CoreSettings and two CLI commands, `manager show
user` (the read/write permissions) and `manager show settings` (timestampevents).
The secret is sent to the PBX and never appears in a result.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator

from pbxlink.ami.protocol import PERMISSION_CLASSES, RAW_KEY, Frame, FrameParser
from pbxlink.config import PbxConfig
from pbxlink.domain.ports import CheckResult

#: read classes pbxlink needs, and what is lost without each
NEEDED_READ = {
    "call": "channels, dials, bridges, transfers and hangups",
    "agent": "queue events (joins, agents rung, abandons)",
    "dialplan": "VarSet of MIXMONITOR_FILENAME: the recording of each call",
    "system": "FullyBooted/Shutdown: calls cut by a PBX restart",
}
#: write classes pbxlink needs: (any one of these classes, what for)
NEEDED_WRITE = (
    (("system", "reporting"), "CoreShowChannels, to resync after every reconnect"),
    (("originate",), "Originate, for click-to-call, callbacks and campaigns"),
    (("system", "call"), "Hangup"),
)
_HEADERS = {"Response", "ActionID", "Message", "Privilege"}
#: every manager.conf class; `all` in `manager show user` means each of them is granted
_ALL = frozenset(PERMISSION_CLASSES)
_Add = Callable[..., None]  # (ok, what, detail, warning=False)


class _Closed(Exception):
    pass


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self.reader, self.writer, self.timeout = reader, writer, timeout
        self.parser = FrameParser(name="check")
        self.frames: list[Frame] = []
        self.n = 0

    async def banner(self) -> str | None:
        while self.parser.banner is None and not self.frames:
            if not await self._read():
                break
        return self.parser.banner

    async def action(self, headers: dict[str, str]) -> Frame:
        """Send an action and return its Response frame (events in between are dropped)."""
        self.n += 1
        action_id = f"pbxlink-check-{self.n}"
        lines = [f"{k}: {v}\r\n" for k, v in {**headers, "ActionID": action_id}.items()]
        self.writer.write(("".join(lines) + "\r\n").encode())
        while True:
            while self.frames:
                frame = self.frames.pop(0)
                if "Response" in frame and frame.get("ActionID") == action_id:
                    return frame
            if not await self._read():
                raise _Closed(headers["Action"])

    async def _read(self) -> bool:
        data = await asyncio.wait_for(self.reader.read(65536), self.timeout)
        self.frames.extend(self.parser.feed(data))
        return bool(data)


def check_asterisk(pbx: PbxConfig, timeout: float = 5.0) -> list[CheckResult]:
    """One CheckResult per line of `pbxlink check`; all ok means pbxlink will work with this PBX."""
    results: list[CheckResult] = []
    asyncio.run(_check(pbx, timeout, results))
    return results


async def _check(pbx: PbxConfig, timeout: float, results: list[CheckResult]) -> None:
    where = f"{pbx.host}:{pbx.port}"

    def add(ok: bool, what: str, detail: str, warning: bool = False) -> None:
        results.append(CheckResult(ok=ok, what=f"{pbx.name}: {what}", detail=detail, warning=warning))

    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(pbx.host, pbx.port), timeout)
    except ConnectionRefusedError:
        return add(
            False,
            f"connect to {where}",
            f"connection refused by {where} — is Asterisk running, is AMI enabled "
            "(manager.conf [general] enabled = yes, port, bindaddr)?",
        )
    except TimeoutError:
        return add(
            False,
            f"connect to {where}",
            f"timed out after {timeout:g}s connecting to {where} — wrong host, a firewall, or bindaddr",
        )
    except OSError as exc:
        return add(False, f"connect to {where}", f"cannot connect to {where}: {exc.strerror or exc}")
    add(True, f"connect to {where}", "TCP connection accepted")
    session = _Session(reader, writer, timeout)
    try:
        await _converse(session, pbx, add)
    except TimeoutError:
        add(False, "AMI conversation", f"{where} stopped answering (no reply within {timeout:g}s)")
    except (_Closed, ConnectionError) as exc:
        add(False, "AMI conversation", f"{where} closed the connection during {exc}")
    finally:
        writer.close()


async def _converse(session: _Session, pbx: PbxConfig, add: _Add) -> None:
    banner = await session.banner()
    if banner is None:
        return add(False, "AMI banner", "no 'Asterisk Call Manager/…' banner — is this port an AMI server?")
    add(True, "AMI banner", banner)
    if any(c in pbx.username + pbx.secret for c in "\r\n\0"):
        return add(False, "login", "username or secret contains a line break or NUL — fix the config")
    login = await session.action(
        {"Action": "Login", "Username": pbx.username, "Secret": pbx.secret, "Events": "off"}
    )
    if login.get("Response") != "Success":
        return add(
            False,
            f"login as {pbx.username}",
            f"authentication failed for user {pbx.username} ({login.get('Message', 'no reason given')}) "
            f"— check secret in [[pbx]] and manager.conf [{pbx.username}], and its permit/deny",
        )
    add(True, f"login as {pbx.username}", "authentication accepted")
    settings = await session.action({"Action": "CoreSettings"})
    version = settings.get("AsteriskVersion")
    add(bool(version), "Asterisk version", f"Asterisk {version}, AMI {settings.get('AMIversion')}")
    user = _lines(await session.action({"Action": "Command", "Command": f"manager show user {pbx.username}"}))
    if user is None:
        _unverified(add, pbx.username, "the AMI user may not run Command")
    elif (read := _field(user, "read perm")) is None or (write := _field(user, "write perm")) is None:
        _unverified(add, pbx.username, f"Asterisk did not list user {pbx.username}")
    else:
        _permissions(add, pbx.username, read, write)
    shown = _lines(await session.action({"Action": "Command", "Command": "manager show settings"}))
    stamped = None if shown is None else _field(shown, "Timestamp events")
    if stamped is None:
        add(
            True,
            "timestampevents",
            "not verified: `manager show settings` needs `command` in write=; make sure manager.conf "
            "[general] has timestampevents = yes",
            warning=True,
        )
    elif stamped.lower() == "yes":
        add(True, "timestampevents", "events carry the PBX's own Timestamp")
    else:
        add(
            False,
            "timestampevents",
            "off: call times will be receive times, late by any network or load delay — set "
            "timestampevents = yes in manager.conf [general], then `manager reload`",
        )
    session.writer.write(b"Action: Logoff\r\n\r\n")


def _permissions(add: _Add, user: str, read: str, write: str) -> None:
    granted = _classes(read)
    missing = [c for c in NEEDED_READ if c not in granted]
    if missing:
        why = "; ".join(f"{c}: {NEEDED_READ[c]}" for c in missing)
        wanted = ",".join(sorted(granted - {"<none>"} | set(missing)))
        add(
            False,
            "read permissions",
            f"user {user} may not read {', '.join(missing)} ({why}) — in manager.conf [{user}] "
            f"set read = {wanted}, then `manager reload`",
        )
    else:
        add(True, "read permissions", f"{read} (covers {', '.join(NEEDED_READ)})")
    allowed = _classes(write)
    lacking = [(any_of, why) for any_of, why in NEEDED_WRITE if not allowed & set(any_of)]
    if lacking:
        fix = ",".join(sorted(allowed - {"<none>"} | {any_of[0] for any_of, _ in lacking}))
        add(
            False,
            "write permissions",
            f"user {user} may not send "
            + "; ".join(f"{why} (needs {' or '.join(any_of)})" for any_of, why in lacking)
            + f" — in manager.conf [{user}] set write = {fix}, then `manager reload`",
        )
    else:
        add(True, "write permissions", write)


def _unverified(add: _Add, user: str, reason: str) -> None:
    add(
        True,
        "read permissions",
        f"not verified: {reason}. Make sure read= in manager.conf [{user}] includes "
        f"{','.join(NEEDED_READ)} (adding `command` to write= lets `pbxlink check` verify it)",
        warning=True,
    )


def _classes(spec: str) -> set[str]:
    names = {part.strip().lower() for part in spec.split(",") if part.strip()}
    return set(_ALL) if "all" in names else names


def _lines(frame: Frame) -> list[str] | None:
    """The CLI output of a Command answer, old (`Response: Follows`) or new (`Output:`) style."""
    if frame.get("Response") not in ("Success", "Follows"):
        return None
    return list(_output(frame))


def _output(frame: Frame) -> Iterator[str]:
    for key, value in frame.items():
        if key in _HEADERS:
            continue
        for item in value if isinstance(value, list) else [value]:
            yield item if key == RAW_KEY else f"{key}: {item}"


def _field(lines: list[str], name: str) -> str | None:
    pattern = re.compile(rf"^\s*{re.escape(name)}:\s*(.*?)\s*$", re.IGNORECASE)
    for line in lines:
        if m := pattern.match(line):
            return m.group(1)
    return None
