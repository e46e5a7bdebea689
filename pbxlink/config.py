"""Configuration: one TOML file, every secret also settable from the environment.

The dataclasses are the shared contract; `load_config` builds them and turns every
mistake into a `ConfigError` whose message is one line naming the file and the key,
because an admin reads it on a terminal or in the journal, not in a traceback.

Relative paths in the file (`data_dir`, a `sqlite:///` database) are resolved against
the folder of the config file, so the same file means the same thing whatever the
working directory of the process that reads it.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

PbxType = Literal["asterisk", "freeswitch"]

DEFAULT_DATA_DIR = Path("/var/lib/pbxlink")
DEFAULT_PORTS: dict[str, int] = {"asterisk": 5038, "freeswitch": 8021}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_SECRET_KEY_LENGTH = 16


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***`, safe for logs and reprs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


@dataclass(frozen=True, repr=False)
class DatabaseConfig:
    url: str

    def __repr__(self) -> str:
        return f"DatabaseConfig(url={redact_url(self.url)!r})"


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PbxConfig:
    name: str
    type: PbxType
    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    ping_interval: float = 10.0
    connect_timeout: float = 5.0
    reconnect_max_delay: float = 30.0
    #: regexes with a named group `ext` that map a channel name to an agent extension; None = defaults
    agent_patterns: tuple[str, ...] | None = None
    #: device (a channel name without its `-<sequence>` suffix, e.g. "DAHDI/1") -> agent extension,
    #: for phones whose channel names do not carry the extension; checked before the patterns
    agent_devices: tuple[tuple[str, str], ...] = ()
    #: FreeSWITCH only: (host, port) where pbxlink serves the dialplan's `socket` app; None = no server
    outbound_listen: tuple[str, int] | None = None
    #: FreeSWITCH only: seconds the outbound socket may hold a call up before it goes on regardless
    outbound_budget: float = 1.0


@dataclass(frozen=True)
class Config:
    path: Path | None
    database: DatabaseConfig
    web: WebConfig
    pbx: tuple[PbxConfig, ...]
    data_dir: Path
    log_level: str = "INFO"


class ConfigError(Exception):
    """A config file that cannot be used; the message is one line meant for the admin."""


def pbx_secret_env(name: str) -> str:
    """The environment variable that overrides a PBX's secret: PBXLINK_PBX_<NAME>_SECRET."""
    return "PBXLINK_PBX_" + re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_SECRET"


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and check the config file at `path`, else at $PBXLINK_CONFIG; the environment wins for secrets."""
    env = os.environ if environ is None else environ
    if path is None or str(path) == "":
        path = env.get("PBXLINK_CONFIG") or None
    if path is None:
        raise ConfigError("no config file: pass --config FILE or set PBXLINK_CONFIG")
    return _Loader(Path(path), env).load()


_TOP_KEYS = ("database", "web", "pbx", "log", "data_dir")
_DATABASE_KEYS = ("url",)
_WEB_KEYS = ("listen", "secret_key")
_LOG_KEYS = ("level",)
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
_PBX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>[0-9]{1,5})")


class _Loader:
    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env

    def fail(self, where: str, message: str, key: str | None = None) -> ConfigError:
        """`FILE: [section] key: message`, or `FILE: [section]: message` when no one key is at fault."""
        head = " ".join(part for part in (where, key) if part)
        return ConfigError(f"{self.path}: {head}: {message}" if head else f"{self.path}: {message}")

    def load(self) -> Config:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise self.fail("", f"cannot read config file: {reason}") from None
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise self.fail("", f"TOML syntax error: {exc}") from None
        self.known(doc, _TOP_KEYS, "")
        base = self.path.resolve().parent
        data_dir = base / Path(self.string(doc, "data_dir", "", default=str(DEFAULT_DATA_DIR))).expanduser()
        return Config(
            path=self.path.resolve(),
            database=self.database(self.table(doc, "database"), base, data_dir),
            web=self.web(self.table(doc, "web")),
            pbx=self.pbxes(doc.get("pbx", [])),
            data_dir=data_dir,
            log_level=self.log_level(self.table(doc, "log")),
        )

    def known(self, table: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
        """Reject keys we do not know: a typo must not silently fall back to a default."""
        for key in table:
            if key not in keys:
                close = difflib.get_close_matches(key, keys, n=1)
                hint = f' (did you mean "{close[0]}"?)' if close else f" (known: {', '.join(keys)})"
                raise self.fail(where, f'unknown key "{key}"{hint}')

    def table(self, doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(f"[{key}]", f"expected a table, got {_show(value)}")
        return value

    def string(self, table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            raise self.fail(where, f'missing key "{key}"')
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"expected a non-empty string, got {_show(value)}", key=key)
        return value

    def secret(self, table: Mapping[str, Any], key: str, where: str, env_name: str) -> str | None:
        """The secret from the environment if set there, else from the file, else None."""
        from_env = self.env.get(env_name)
        if from_env:
            return from_env
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.fail(where, "expected a non-empty string in quotes", key=key)  # never echo a secret
        return value

    def number(self, table: Mapping[str, Any], key: str, where: str, default: float) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.fail(where, f"expected a positive number of seconds, got {_show(value)}", key=key)
        return float(value)

    def database(self, table: Mapping[str, Any], base: Path, data_dir: Path) -> DatabaseConfig:
        self.known(table, _DATABASE_KEYS, "[database]")
        url = self.env.get("PBXLINK_DATABASE_URL") or table.get("url")
        if url is None:
            return DatabaseConfig(f"sqlite:///{data_dir / 'pbxlink.db'}")
        if not isinstance(url, str):
            raise self.fail("[database]", f"expected a string, got {_show(url)}", key="url")
        scheme = url.partition(":")[0]
        if scheme == "sqlite" and url.startswith("sqlite:///"):
            return DatabaseConfig(f"sqlite:///{base / url.removeprefix('sqlite:///')}")
        if scheme in ("postgresql", "postgres") and urlsplit(url).path.strip("/"):
            return DatabaseConfig(url)
        raise self.fail(
            "[database]",
            f'"{redact_url(url)}" is not sqlite:///PATH nor postgresql://USER:PASSWORD@HOST/DBNAME',
            key="url",
        )

    def web(self, table: Mapping[str, Any]) -> WebConfig:
        self.known(table, _WEB_KEYS, "[web]")
        listen = table.get("listen", "127.0.0.1:8080")
        match = _LISTEN.fullmatch(listen) if isinstance(listen, str) else None
        if match is None or not 0 < int(match["port"]) < 65536:
            raise self.fail(
                "[web]", f'{_show(listen)} is not host:port (e.g. "127.0.0.1:8080")', key="listen"
            )
        key = self.secret(table, "secret_key", "[web]", "PBXLINK_WEB_SECRET_KEY")
        if key is not None and len(key) < MIN_SECRET_KEY_LENGTH:
            raise self.fail(
                "[web]",
                f"must be at least {MIN_SECRET_KEY_LENGTH} characters (or leave it out and one is generated)",
                key="secret_key",
            )
        return WebConfig(host=match["v6"] or match["host"], port=int(match["port"]), secret_key=key)

    def pbxes(self, entries: Any) -> tuple[PbxConfig, ...]:
        if not isinstance(entries, list):
            raise self.fail("", "expected [[pbx]] tables, one per PBX", key="pbx")
        pbxes = tuple(self.pbx(i, entry) for i, entry in enumerate(entries, 1))
        seen: dict[str, str] = {}
        for p in pbxes:
            env_name = pbx_secret_env(p.name)
            if env_name in seen:
                where = f"[[pbx]] {_show(p.name)}"
                raise self.fail(
                    where, f"clashes with {_show(seen[env_name])} (both use {env_name})", key="name"
                )
            seen[env_name] = p.name
        return pbxes

    def pbx(self, index: int, entry: Any) -> PbxConfig:
        where = f"[[pbx]] #{index}"
        if not isinstance(entry, dict):
            raise self.fail(where, f"expected a table, got {_show(entry)}")
        if isinstance(entry.get("name"), str):
            where = f"{where} {_show(entry['name'])}"
        self.known(entry, _PBX_KEYS, where)
        name = self.string(entry, "name", where)
        if not _PBX_NAME.fullmatch(name):
            raise self.fail(
                where, "must be 1-64 letters, digits, _ . - (a letter or digit first)", key="name"
            )
        pbx_type = self.string(entry, "type", where, default="asterisk")
        if pbx_type not in DEFAULT_PORTS:
            raise self.fail(where, f'{_show(pbx_type)} is not one of "asterisk", "freeswitch"', key="type")
        port = entry.get("port", DEFAULT_PORTS[pbx_type])
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise self.fail(where, f"expected a number 1-65535, got {_show(port)}", key="port")
        for key in _FREESWITCH_ONLY:
            if key in entry and pbx_type != "freeswitch":
                raise self.fail(
                    where,
                    f'only for type = "freeswitch" (the FreeSWITCH outbound socket), not {_show(pbx_type)}',
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
        match = _LISTEN.fullmatch(listen) if isinstance(listen, str) else None
        if match is None or not 0 < int(match["port"]) < 65536:
            raise self.fail(
                where,
                f'{_show(listen)} is not host:port (e.g. "127.0.0.1:8084", as in the dialplan\'s socket app)',
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
                f"(the call waits that long at most), got {_show(budget)}",
                key="outbound_budget",
            )
        return float(budget)

    def agent_devices(self, entry: Mapping[str, Any], where: str) -> tuple[tuple[str, str], ...]:
        devices = entry.get("agent_devices", {})
        if not isinstance(devices, dict):
            raise self.fail(
                where,
                f'expected a table like {{ "DAHDI/1" = "201" }}, got {_show(devices)}',
                key="agent_devices",
            )
        for device, ext in devices.items():
            if not isinstance(ext, str) or not re.fullmatch(r"[0-9A-Za-z_*#+.-]{1,32}", ext):
                raise self.fail(
                    where, f"expected an extension, got {_show(ext)}", key=f"agent_devices.{device}"
                )
        return tuple(devices.items())

    def agent_patterns(self, entry: Mapping[str, Any], where: str) -> tuple[str, ...] | None:
        patterns = entry.get("agent_patterns")
        if patterns is None:
            return None
        if not isinstance(patterns, list) or not patterns:
            raise self.fail(
                where, f"expected a non-empty list of regexes, got {_show(patterns)}", key="agent_patterns"
            )
        for i, pattern in enumerate(patterns, 1):
            if not isinstance(pattern, str):
                raise self.fail(where, f"expected a string, got {_show(pattern)}", key=f"agent_patterns #{i}")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise self.fail(
                    where, f"{_show(pattern)} is not a valid regex: {exc}", key=f"agent_patterns #{i}"
                ) from None
            if "ext" not in compiled.groupindex:
                raise self.fail(
                    where, f"{_show(pattern)} has no named group (?P<ext>...)", key=f"agent_patterns #{i}"
                )
        return tuple(patterns)

    def log_level(self, table: Mapping[str, Any]) -> str:
        self.known(table, _LOG_KEYS, "[log]")
        level = table.get("level", "INFO")
        if not isinstance(level, str) or level.upper() not in LOG_LEVELS:
            raise self.fail("[log]", f"{_show(level)} is not one of {', '.join(LOG_LEVELS)}", key="level")
        return level.upper()


def _show(value: Any) -> str:
    """A value as it would appear in TOML, for error messages (never used for secrets)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # quoted and escaped: stays on one line
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)
