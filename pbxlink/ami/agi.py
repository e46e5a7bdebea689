"""The FastAGI server: `AGI(agi://pbxlink:4573/lookup)` puts the caller's CRM name on the phones.

Asterisk connects as the dialplan runs AGI(); pbxlink looks the caller up (`CallerLookup`,
in a worker thread, for at most the budget), sets CALLERID(name), PBXLINK_CONTACT_ID,
PBXLINK_OWNER and PBXLINK_LOOKUP, and closes: the dialplan goes on (see agi_session.py).

panoramisk's FastAGI server is not used: it spins at 100% CPU, freezing its loop, when a
client closes before the end of the environment block, and fails on a hangup mid-command.
This one reads with deadlines and length caps, on asyncio in a thread of its own
(pbxlink/lookup_server.py); a port it cannot bind is an AgiBindError raised by start().
"""

from __future__ import annotations

import asyncio

from pbxlink.ami.agi_session import MAX_LINE, AgiSession, Timeouts
from pbxlink.config import AgiConfig, ConfigError
from pbxlink.domain.ports import CallerLookup
from pbxlink.lookup_server import BudgetedLookup, LookupServer

DEFAULT_TIMEOUTS = Timeouts()


class AgiBindError(ConfigError):
    """The FastAGI server cannot listen; the message says where, why and what to change.

    A ConfigError: `pbxlink run` ends with this one line, as for a mistake in the config file.
    """


class AgiServer(LookupServer):
    """Serves `AGI(agi://host:port/lookup)` on host:port (port 0: a free port, for tests).

    `budget` is the most a call waits for the lookup; Asterisk's replies to the SETs come on
    top (a millisecond each, as captured).
    """

    label = "FastAGI"
    slug = "agi"
    peer = "Asterisk"
    variable = "PBXLINK_LOOKUP"
    line_limit = MAX_LINE

    def __init__(
        self,
        lookup: CallerLookup,
        host: str = "127.0.0.1",
        port: int = 4573,
        budget: float = 0.3,
        *,
        lookup_threads: int = 8,
        pbx: str = "",
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
    ) -> None:
        super().__init__(lookup, host, port, budget, pbx=pbx, lookup_threads=lookup_threads)
        self.timeouts = timeouts

    @property
    def linger(self) -> float:
        return self.budget + self.timeouts.overall

    async def session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lookup: BudgetedLookup
    ) -> None:
        await AgiSession(reader, writer, lookup, self.timeouts).run()

    def bind_error(self, reason: str) -> AgiBindError:
        return AgiBindError(
            f"cannot listen on {self.where()} for {self.label}: {reason} — change listen in [agi] "
            "(and the agi:// address of AGI() in the dialplan to match)"
        )


def agi_server(cfg: AgiConfig, lookup: CallerLookup) -> AgiServer:
    """The FastAGI server the `[agi]` table asks for."""
    return AgiServer(lookup, cfg.host, cfg.port, cfg.budget)
