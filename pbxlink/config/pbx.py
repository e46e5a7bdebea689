"""The [[pbx]] tables: how to reach each PBX and how its channels map to agents."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from pbxlink.config.model import DEFAULT_PORTS, PbxConfig, PbxType, pbx_secret_env
from pbxlink.config.values import LISTEN, NAME, Values, show

_PBX_KEYS = (
    "name",
    "type",
    "host",
    "port",
    "username",
    "secret",
    "ping_interval",
    "connect_timeout",
    "reconnect_max_delay",
    "agent_patterns",
    "agent_devices",
    "outbound_listen",
    "outbound_budget",
)
_FREESWITCH_ONLY = ("outbound_listen", "outbound_budget")
#: An outbound socket budget beyond this is a mistake (milliseconds written as seconds?): it holds calls up.
MAX_OUTBOUND_BUDGET = 10.0


class PbxSections(Values):
    """[[pbx]]: names must differ even as env names, as each secret comes from PBXLINK_PBX_<NAME>_SECRET."""

    def pbxes(self, entries: Any) -> tuple[PbxConfig, ...]:
        if not isinstance(entries, list):
            raise self.fail("", "expected [[pbx]] tables, one per PBX", key="pbx")
        pbxes = tuple(self.pbx(i, entry) for i, entry in enumerate(entries, 1))
        seen: dict[str, str] = {}
        for p in pbxes:
            env_name = pbx_secret_env(p.name)
            if env_name in seen:
                where = f"[[pbx]] {show(p.name)}"
                raise self.fail(
                    where, f"clashes with {show(seen[env_name])} (both use {env_name})", key="name"
                )
            seen[env_name] = p.name
        return pbxes

    def pbx(self, index: int, entry: Any) -> PbxConfig:
        where = f"[[pbx]] #{index}"
        if not isinstance(entry, dict):
            raise self.fail(where, f"expected a table, got {show(entry)}")
        if isinstance(entry.get("name"), str):
            where = f"{where} {show(entry['name'])}"
        self.known(entry, _PBX_KEYS, where)
        name = self.string(entry, "name", where)
        if not NAME.fullmatch(name):
            raise self.fail(
                where, "must be 1-64 letters, digits, _ . - (a letter or digit first)", key="name"
            )
        pbx_type = self.string(entry, "type", where, default="asterisk")
        if pbx_type not in DEFAULT_PORTS:
            raise self.fail(where, f'{show(pbx_type)} is not one of "asterisk", "freeswitch"', key="type")
        port = entry.get("port", DEFAULT_PORTS[pbx_type])
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise self.fail(where, f"expected a number 1-65535, got {show(port)}", key="port")
        for key in _FREESWITCH_ONLY:
            if key in entry and pbx_type != "freeswitch":
                raise self.fail(
                    where,
                    f'only for type = "freeswitch" (the FreeSWITCH outbound socket), not {show(pbx_type)}',
                    key=key,
                )
        env_name = pbx_secret_env(name)
        secret = self.secret(entry, "secret", where, env_name)
        if secret is None:
            raise self.fail(where, f'missing key "secret" (or set {env_name})')
        return PbxConfig(
            name=name,
            type=cast(PbxType, pbx_type),
            host=self.string(entry, "host", where),
            port=port,
            username=self.string(entry, "username", where),
            secret=secret,
            ping_interval=self.number(entry, "ping_interval", where, PbxConfig.ping_interval),
            connect_timeout=self.number(entry, "connect_timeout", where, PbxConfig.connect_timeout),
            reconnect_max_delay=self.number(
                entry, "reconnect_max_delay", where, PbxConfig.reconnect_max_delay
            ),
            agent_patterns=self.agent_patterns(entry, where),
            agent_devices=self.agent_devices(entry, where),
            outbound_listen=self.outbound_listen(entry, where),
            outbound_budget=self.outbound_budget(entry, where),
        )

    def outbound_listen(self, entry: Mapping[str, Any], where: str) -> tuple[str, int] | None:
        listen = entry.get("outbound_listen")
        if listen is None:
            return None
        match = LISTEN.fullmatch(listen) if isinstance(listen, str) else None
        if match is None or not 0 < int(match["port"]) < 65536:
            raise self.fail(
                where,
                f'{show(listen)} is not host:port (e.g. "127.0.0.1:8084", as in the dialplan\'s socket app)',
                key="outbound_listen",
            )
        return match["v6"] or match["host"], int(match["port"])

    def outbound_budget(self, entry: Mapping[str, Any], where: str) -> float:
        budget = entry.get("outbound_budget", PbxConfig.outbound_budget)
        if (
            isinstance(budget, bool)
            or not isinstance(budget, int | float)
            or not 0 < budget <= MAX_OUTBOUND_BUDGET
        ):
            raise self.fail(
                where,
                f"expected seconds, more than 0 and at most {MAX_OUTBOUND_BUDGET:g} "
                f"(the call waits that long at most), got {show(budget)}",
                key="outbound_budget",
            )
        return float(budget)

    def agent_devices(self, entry: Mapping[str, Any], where: str) -> tuple[tuple[str, str], ...]:
        devices = entry.get("agent_devices", {})
        if not isinstance(devices, dict):
            raise self.fail(
                where,
                f'expected a table like {{ "DAHDI/1" = "201" }}, got {show(devices)}',
                key="agent_devices",
            )
        for device, ext in devices.items():
            if not isinstance(ext, str) or not re.fullmatch(r"[0-9A-Za-z_*#+.-]{1,32}", ext):
                raise self.fail(
                    where, f"expected an extension, got {show(ext)}", key=f"agent_devices.{device}"
                )
        return tuple(devices.items())

    def agent_patterns(self, entry: Mapping[str, Any], where: str) -> tuple[str, ...] | None:
        patterns = entry.get("agent_patterns")
        if patterns is None:
            return None
        if not isinstance(patterns, list) or not patterns:
            raise self.fail(
                where, f"expected a non-empty list of regexes, got {show(patterns)}", key="agent_patterns"
            )
        for i, pattern in enumerate(patterns, 1):
            if not isinstance(pattern, str):
                raise self.fail(where, f"expected a string, got {show(pattern)}", key=f"agent_patterns #{i}")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise self.fail(
                    where, f"{show(pattern)} is not a valid regex: {exc}", key=f"agent_patterns #{i}"
                ) from None
            if "ext" not in compiled.groupindex:
                raise self.fail(
                    where, f"{show(pattern)} has no named group (?P<ext>...)", key=f"agent_patterns #{i}"
                )
        return tuple(patterns)
