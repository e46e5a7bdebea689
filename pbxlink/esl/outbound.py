"""The outbound socket server: FreeSWITCH's dialplan `socket` app hands pbxlink each call at its start.

The ESL equivalent of FastAGI: pbxlink looks the caller up (`CallerLookup`, in a worker
thread) and sets `effective_caller_id_name`, `pbxlink_caller_name`, `pbxlink_route`,
`pbxlink_contact_id`, `pbxlink_owner` and `pbxlink_lookup` on the channel, then lets the
dialplan resume (see outbound_session.py).

It runs on asyncio in a thread of its own with its own loop (pbxlink/lookup_server.py), so
many calls are served at once and nothing else in pbxlink can hold one up. greenswitch's
OutboundESLServer is not used: it calls sys.exit() when it cannot bind. Here a bind failure
is an OutboundBindError raised by start(), with what to do about it.
"""

from __future__ import annotations

import asyncio

from pbxlink.config import ConfigError, PbxConfig
from pbxlink.domain.ports import CallerLookup
from pbxlink.esl.outbound_session import CallSession
from pbxlink.lookup_server import BudgetedLookup, LookupServer


class OutboundBindError(ConfigError):
    """The outbound socket server cannot listen; the message says where, why and what to change.

    A ConfigError: `pbxlink run` ends with this one line, as for a mistake in the config file.
    """


class OutboundServer(LookupServer):
    """Serves the `socket` app of one FreeSWITCH on host:port (port 0: a free port, for tests).

    `budget` is the most a call waits for pbxlink (connect reply, lookup, sets); `grace` is
    how long pbxlink then waits for FreeSWITCH to close the socket (the call is no longer held).
    """

    label = "FreeSWITCH outbound socket"
    slug = "outbound"
    peer = "FreeSWITCH"
    variable = "pbxlink_lookup"

    def __init__(
        self,
        lookup: CallerLookup,
        host: str = "127.0.0.1",
        port: int = 8084,
        budget: float = 1.0,
        *,
        pbx: str = "",
        lookup_threads: int = 8,
        grace: float = 2.0,
    ) -> None:
        super().__init__(lookup, host, port, budget, pbx=pbx, lookup_threads=lookup_threads)
        self.grace = grace

    @property
    def linger(self) -> float:
        return self.budget + self.grace

    async def session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lookup: BudgetedLookup
    ) -> None:
        await CallSession(reader, writer, lookup, self.budget, self.grace).run()

    def bind_error(self, reason: str) -> OutboundBindError:
        key = f'outbound_listen in [[pbx]] "{self.pbx}"' if self.pbx else "the address"
        return OutboundBindError(
            f"cannot listen on {self.where()} for the {self.label}: {reason} — "
            f"change {key} (and the socket app's address in the dialplan to match)"
        )


def outbound_server(pbx: PbxConfig, lookup: CallerLookup) -> OutboundServer | None:
    """The outbound socket server a `[[pbx]]` entry asks for, or None without `outbound_listen`."""
    if pbx.outbound_listen is None:
        return None
    host, port = pbx.outbound_listen
    return OutboundServer(lookup, host, port, pbx.outbound_budget, pbx=pbx.name)
