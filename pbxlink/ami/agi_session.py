"""One FastAGI call: read Asterisk's environment, look the caller up, SET the variables, close.

The exchange, as captured in tests/fixtures/asterisk/agi_lookup.agi: Asterisk connects and
sends `agi_name: value` lines, then a blank line. pbxlink sends one command a line and reads
Asterisk's reply (`200 result=1`) before sending the next (Asterisk reads the socket through a
stdio buffer: a second command sent early can sit there unseen), then closes. AGI() returns
with AGISTATUS=SUCCESS and the dialplan goes on; Asterisk writes a last `HANGUP` line as it
lets go of the socket.

When the channel hangs up meanwhile, Asterisk sends `HANGUP` (or answers a command with
`511`): pbxlink stops there. Every read has a deadline and every line a length cap, so
whatever the other end does or fails to do, a session ends within budget + overall seconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote

from pbxlink.lookup_server import MAX_NAME, BudgetedLookup, Found, clean_number, clean_text, found, one_line

log = logging.getLogger(__name__)

SCRIPT = "lookup"  # agi://host:port/lookup, the one script served
MAX_LINE = 4096  # Asterisk's own AGI buffer is 2048 bytes
MAX_ENV_LINES = 200  # Asterisk sends ~22, plus one per AGI() argument (at most 127)
MAX_ENV_CHARS = 64 * 1024

_ENV_KEY = re.compile(r"agi_[A-Za-z0-9_]{1,60}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\([a-z]{1,16}\))?")


@dataclass(frozen=True)
class Timeouts:
    """How long pbxlink waits for Asterisk at each step (the lookup has its own budget)."""

    environment: float = 2.0  # Asterisk writes its environment at once: more is a hung or foreign client
    reply: float = 1.0  # for the reply to each command
    overall: float = 5.0  # a session lasts at most budget + overall, whatever happens


class NotAgi(ValueError):
    """What the client sent is not FastAGI; the message says what was wrong."""


def quote(value: str, cap: int = MAX_NAME) -> str:
    """`value` as one AGI argument: one line, capped, in double quotes, `"` and `\\` escaped.

    Asterisk's argument parser (parse_args in res_agi.c) takes a backslash as "the next
    character as it is" and a double quote as the start or end of quoting; the value is
    stored as it comes (SET VARIABLE expands nothing, so `$` needs no escaping).
    """
    text = one_line(value, cap)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_variable(name: str, value: str) -> bytes:
    """The `SET VARIABLE name "value"` command line."""
    if not _VARIABLE.fullmatch(name):
        raise ValueError(f"not an Asterisk variable name: {name!r}")  # our constants only: a bug
    return f"SET VARIABLE {name} {quote(value)}\n".encode()


def commands(outcome: Found) -> list[bytes]:
    """The SETs for a lookup's outcome: the name first (as captured), PBXLINK_LOOKUP always, last."""
    named = [
        ("CALLERID(name)", outcome.name),
        ("PBXLINK_CONTACT_ID", outcome.contact_id),
        ("PBXLINK_OWNER", outcome.owner),
    ]
    return [*(set_variable(k, v) for k, v in named if v), set_variable("PBXLINK_LOOKUP", outcome.status)]


def request(script: str) -> tuple[str, dict[str, str]]:
    """`lookup?num=%2B1555…` as ("lookup", {"num": "+1555…"}); a `+` stays a `+`, as dialplans write it."""
    path, _, query = script.partition("?")
    params: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        params.setdefault(unquote(key), unquote(value))
    return path.strip("/"), params


class AgiSession:
    """Serves one FastAGI connection; never raises, never outlives budget + timeouts.overall."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        lookup: BudgetedLookup,
        timeouts: Timeouts,
    ) -> None:
        self.reader, self.writer, self.lookup, self.timeouts = reader, writer, lookup, timeouts
        peer = writer.get_extra_info("peername")
        # what every log line names: the peer until the environment says which call this is
        self.who = "connection from " + (f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?")

    async def run(self) -> None:
        try:
            async with asyncio.timeout(self.lookup.budget + self.timeouts.overall):
                await self._serve()
        except TimeoutError:
            log.warning(
                "FastAGI %s: not over after %g s; closed (is Asterisk overloaded?)",
                self.who,
                self.lookup.budget + self.timeouts.overall,
            )
        except Exception:
            log.exception("FastAGI %s: unexpected error; closed, the dialplan goes on", self.who)
        finally:
            transport = self.writer.transport
            if transport.get_write_buffer_size():
                transport.abort()  # the other end stopped reading: do not wait for a flush that never comes
            else:
                transport.close()

    async def _serve(self) -> None:
        env = await self._environment()
        if env is None:
            return
        call = f"{one_line(env.get('agi_uniqueid', '?'), 40)} ({one_line(env.get('agi_channel', '?'), 80)})"
        self.who = f"call {call}"
        script, params = request(env.get("agi_network_script", ""))
        if script != SCRIPT:
            log.warning(
                "FastAGI %s: no script %.40r here, nothing set; call agi://<pbxlink>:<port>/%s in the "
                "dialplan",
                self.who,
                script,
                SCRIPT,
            )
            text = f"pbxlink: no FastAGI script {script!r} here, only {SCRIPT!r}"
            await self._send([f"VERBOSE {quote(text, 120)} 1\n".encode()])
            return
        number = clean_number(params.get("num")) or clean_number(env.get("agi_callerid"))
        status, info = await self.lookup(number, call)
        await self._send(commands(found(status, info, call, clean_text)))

    async def _environment(self) -> dict[str, str] | None:
        """The `agi_*` lines up to the blank line, or None (logged) when they do not come complete."""
        env: dict[str, str] = {}
        size = 0
        try:
            async with asyncio.timeout(self.timeouts.environment):
                while line := await self._line():
                    key, sep, value = line.partition(":")
                    size += len(line)
                    if not sep or not _ENV_KEY.fullmatch(key):
                        raise NotAgi(f"{line[:40]!r} is not an agi_* line")
                    if len(env) >= MAX_ENV_LINES or size > MAX_ENV_CHARS:
                        raise NotAgi(f"more than {MAX_ENV_LINES} lines or {MAX_ENV_CHARS} characters")
                    env[key] = value.removeprefix(" ")
        except TimeoutError:
            log.warning(
                "FastAGI %s: no complete AGI environment within %g s (%d lines); closed. Is it Asterisk?",
                self.who,
                self.timeouts.environment,
                len(env),
            )
        except (asyncio.IncompleteReadError, ConnectionError):
            log.info("FastAGI %s: closed before the end of its environment (%d lines)", self.who, len(env))
        except NotAgi as exc:
            log.warning("FastAGI %s: not a FastAGI client (%s); closed", self.who, exc)
        else:
            return env
        return None

    async def _send(self, lines: list[bytes]) -> None:
        """Each command, then Asterisk's reply to it, until done or the caller hangs up."""
        refused: list[str] = []
        for done, line in enumerate(lines):
            self.writer.write(line)
            try:
                async with asyncio.timeout(self.timeouts.reply):
                    await self.writer.drain()
                    reply = await self._reply()
            except TimeoutError:
                log.warning(
                    "FastAGI %s: no reply to command %d of %d within %g s; closed, the dialplan goes on",
                    self.who,
                    done + 1,
                    len(lines),
                    self.timeouts.reply,
                )
                return
            except NotAgi as exc:
                log.warning("FastAGI %s: not Asterisk's reply (%s); closed", self.who, exc)
                return
            except (asyncio.IncompleteReadError, ConnectionError):
                log.info(
                    "FastAGI %s: Asterisk closed the connection after %d of %d commands; the caller "
                    "probably hung up",
                    self.who,
                    done,
                    len(lines),
                )
                return
            if reply == "HANGUP" or reply.startswith("511"):
                log.info("FastAGI %s: the caller hung up after %d of %d commands", self.who, done, len(lines))
                return
            if not reply.startswith("200"):
                refused.append(one_line(reply, 80))
        if refused:
            log.warning(
                "FastAGI %s: Asterisk refused %d of %d commands (%s); the dialplan goes on",
                self.who,
                len(refused),
                len(lines),
                "; ".join(refused),
            )

    async def _reply(self) -> str:
        """Asterisk's reply to a command; a `520-` usage text is read to its last line, `520 …`."""
        reply = await self._line()
        if reply.startswith("520-"):
            while not reply.startswith("520 "):
                reply = await self._line()
        return reply

    async def _line(self) -> str:
        try:
            raw = await self.reader.readuntil(b"\n")  # at most MAX_LINE: the server's StreamReader limit
        except asyncio.LimitOverrunError:
            raise NotAgi(f"a line longer than {MAX_LINE} bytes") from None
        return raw.rstrip(b"\r\n").decode("utf-8", "replace")
