"""`pbxlink check` for a FreeSWITCH: what works, what does not, and the exact fix, in plain words.

A short-lived blocking session (its own socket and the FrameParser, no gevent, no
reconnects): connect, auth/request, `auth`, the event subscription pbxlink uses, a
`bgapi status` whose BACKGROUND_JOB must come back (events really flow), `api version`,
and `show channels as json` (the resync after every reconnect needs it). The password is
sent to the PBX and never appears in a result.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable

from pbxlink.config import PbxConfig
from pbxlink.domain.ports import CheckResult
from pbxlink.esl.feed import subscription
from pbxlink.esl.frames import Event, Frame, FrameParser

_Add = Callable[..., None]  # (ok, what, detail, warning=False)
_CONF = "event_socket.conf.xml"


class _Closed(Exception):
    pass


class _Session:
    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock, self.timeout = sock, timeout
        self.parser = FrameParser("check")
        self.items: list[Event | Frame] = []

    def next(self, wanted: Callable[[Event | Frame], bool], timeout: float | None = None) -> Event | Frame:
        """The first item (frame or event) that is `wanted`; others are dropped."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            while self.items:
                item = self.items.pop(0)
                if wanted(item):
                    return item
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise _Closed
            self.items.extend(self.parser.feed(data))

    def command(self, text: str) -> Frame:
        self.sock.sendall(f"{text}\n\n".encode())
        reply = self.next(
            lambda i: isinstance(i, Frame) and i.content_type in ("command/reply", "api/response")
        )
        assert isinstance(reply, Frame)
        return reply


def check_freeswitch(pbx: PbxConfig, timeout: float = 5.0) -> list[CheckResult]:
    """One CheckResult per line of `pbxlink check`; all ok means pbxlink will work with this FreeSWITCH."""
    results: list[CheckResult] = []
    where = f"{pbx.host}:{pbx.port}"

    def add(ok: bool, what: str, detail: str, warning: bool = False) -> None:
        results.append(CheckResult(ok=ok, what=f"{pbx.name}: {what}", detail=detail, warning=warning))

    try:
        sock = socket.create_connection((pbx.host, pbx.port), timeout)
    except ConnectionRefusedError:
        add(
            False,
            f"connect to {where}",
            f"connection refused by {where} — is FreeSWITCH running with mod_event_socket loaded? "
            f"{_CONF} listen-ip must be an address pbxlink can reach (not 127.0.0.1 if pbxlink runs "
            "elsewhere) and listen-port must match [[pbx]] port",
        )
        return results
    except TimeoutError:
        add(
            False,
            f"connect to {where}",
            f"timed out after {timeout:g}s connecting to {where} — wrong host, a firewall, "
            f"or {_CONF} listen-ip",
        )
        return results
    except OSError as exc:
        add(False, f"connect to {where}", f"cannot connect to {where}: {exc.strerror or exc}")
        return results
    add(True, f"connect to {where}", "TCP connection accepted")
    try:
        _converse(_Session(sock, timeout), pbx, add)
    except TimeoutError:
        add(False, "ESL conversation", f"{where} stopped answering (no reply within {timeout:g}s)")
    except (_Closed, OSError):
        add(False, "ESL conversation", f"{where} closed the connection")
    finally:
        sock.close()
    return results


def _converse(session: _Session, pbx: PbxConfig, add: _Add) -> None:
    try:
        first = session.next(lambda i: isinstance(i, Frame))
    except TimeoutError:
        return add(
            False,
            "ESL greeting",
            f"connected, but no auth/request within {session.timeout:g}s — is {pbx.host}:{pbx.port} "
            "FreeSWITCH's event socket, or a firewall or proxy that accepts any connection?",
        )
    assert isinstance(first, Frame)
    if first.content_type == "text/rude-rejection":
        return add(
            False,
            "ESL access",
            f"FreeSWITCH turned pbxlink's address away ({first.text.strip()}) — add it to the ACL that "
            f"{_CONF} `apply-inbound-acl` names (acl.conf.xml), then `reloadacl`",
        )
    if first.content_type != "auth/request":
        return add(False, "ESL greeting", "no auth/request — is this port FreeSWITCH's event socket?")
    add(True, "ESL greeting", "auth/request received")
    if any(c in pbx.secret for c in "\r\n\0"):
        return add(False, "authentication", "the secret contains a line break or NUL — fix the config")
    reply = session.command(f"auth {pbx.secret}").headers.get("Reply-Text", "")
    if not reply.startswith("+OK"):
        return add(
            False,
            "authentication",
            f"FreeSWITCH refused the password ({reply or 'no reason given'}) — set [[pbx]] secret "
            f"to the `password` in {_CONF}",
        )
    add(True, "authentication", "password accepted")
    events = subscription(None)
    reply = session.command(f"event plain {events}").headers.get("Reply-Text", "")
    if not reply.startswith("+OK"):
        return add(
            False,
            "event permissions",
            f"FreeSWITCH refused the subscription ({reply}) — allow these events for the ESL user "
            f"(esl-allowed-events): {events}",
        )
    job = str(uuid.uuid4())
    session.command(f"bgapi status\nJob-UUID: {job}")
    try:
        session.next(lambda i: isinstance(i, dict) and i.get("Job-UUID") == job)
        add(True, "event permissions", "subscribed; events arrive (a BACKGROUND_JOB came back)")
    except TimeoutError:
        add(
            False,
            "event permissions",
            "subscribed, but no event arrived — is the event system busy or are events filtered "
            "(esl-allowed-events must include BACKGROUND_JOB)?",
        )
    version = session.command("api version").text.strip()
    add(version.startswith("FreeSWITCH"), "FreeSWITCH version", version or "no answer to `api version`")
    channels = session.command("api show channels as json").text.strip()
    if channels.startswith("{"):
        add(True, "resync", "`show channels as json` works: calls are picked up again after a reconnect")
    else:
        add(
            False,
            "resync",
            f"`show channels as json` refused ({channels[:80]}) — allow the `show` API for the ESL "
            "user (esl-allowed-api), or calls open across a reconnect are lost",
        )
    session.sock.sendall(b"exit\n\n")
