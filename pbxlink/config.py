"""Configuration: one TOML file, every secret also settable from the environment.

The dataclasses are the shared contract; `load_config` builds them and turns every
mistake into a `ConfigError` whose message is one line naming the file and the key,
because an admin reads it on a terminal or in the journal, not in a traceback.

Relative paths in the file (`data_dir`, a `sqlite:///` database) are resolved against
the folder of the config file, so the same file means the same thing whatever the
working directory of the process that reads it.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
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
    #: how others reach the panel (https://pbx.example.com): links in CRM call logs and webhooks
    public_url: str | None = None
    #: worker threads of the web server: each open live page or screen-pop page holds one
    threads: int = 64


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


@dataclass(frozen=True, repr=False)
class CrmConfig:
    """One `[[crm]]` table. `options` holds the type's own keys (checked by its connector module),
    with `PBXLINK_CRM_<NAME>_<KEY>` from the environment laid over the file's values."""

    name: str
    type: str
    options: Mapping[str, Any]
    timeout: float = 5.0
    enabled: bool = True

    def __repr__(self) -> str:
        return f"CrmConfig(name={self.name!r}, type={self.type!r})"  # options hold secrets


@dataclass(frozen=True)
class PhoneConfig:
    #: ISO 3166 region that national numbers belong to ("US", "GB", "DE" …)
    default_region: str = "US"
    #: digits compared from the end when a number cannot be put in E.164
    match_digits: int = 9


@dataclass(frozen=True)
class CacheConfig:
    ttl: float = 300.0  # seconds a found contact is reused
    negative_ttl: float = 60.0  # seconds "nobody has this number" is reused


@dataclass(frozen=True)
class OutboxConfig:
    """How CRM call logs and webhooks are retried: the waits between attempts (the last repeats)."""

    retry_delays: tuple[float, ...] = (10.0, 30.0, 120.0, 300.0, 900.0, 1800.0)
    give_up_after: float = 3 * 86400.0  # seconds of failing before a delivery is marked failed


@dataclass(frozen=True)
class AgiConfig:
    """The FastAGI server for `AGI(agi://pbxlink:4573/lookup)`; None in Config = not served."""

    host: str = "127.0.0.1"
    port: int = 4573
    budget: float = 0.3  # seconds a lookup may hold the call before it goes on with what is known


@dataclass(frozen=True, repr=False)
class WebhookConfig:
    """One `[[webhook]]`: every call event (or those in `events`) POSTed, signed with `secret`."""

    name: str
    url: str
    secret: str
    events: tuple[str, ...] = ()  # empty = every kind

    def __repr__(self) -> str:
        return f"WebhookConfig(name={self.name!r}, url={redact_url(self.url)!r})"


@dataclass(frozen=True)
class RecordingsConfig:
    """Where the PBX writes its recordings: only files inside these folders are ever served."""

    folders: tuple[Path, ...] = ()  # absolute (relative ones in the file are taken from its folder)
    link_days: float = 30  # days a recording link in a CRM call log stays valid


@dataclass(frozen=True)
class CallbacksConfig:
    """The website's "call me back" form: which sites may embed it, and how often one visitor may use it."""

    #: origins ("https://www.example.com") whose pages may post the form from the browser; never "*"
    allowed_origins: tuple[str, ...] = ()
    rate_per_ip_minute: int = 5
    rate_per_ip_day: int = 30
    rate_per_number_day: int = 3
    #: reverse proxies (addresses or networks) whose X-Forwarded-For names the real client
    trusted_proxies: tuple[str, ...] = ()


MISS_REASONS = ("no_answer", "busy", "abandoned", "queue_timeout", "not_offered")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Monday to Friday, 09:00-17:00 (per weekday, Monday first: opening ranges in minutes since midnight)
DEFAULT_HOURS: tuple[tuple[tuple[int, int], ...], ...] = tuple(
    ((9 * 60, 17 * 60),) if day < 5 else () for day in range(7)
)


@dataclass(frozen=True)
class CallbackPolicyConfig:
    """One `[[callback_policy]]`: which missed calls (or website requests) are called back, when and how.

    `hours` holds, per weekday (Monday first), the opening ranges in minutes since midnight of
    `timezone`; pbxlink.domain.callback_policy turns them into instants.
    """

    name: str
    pbx: str
    timezone: str  # IANA name; the loader puts the server's own when the file leaves it out
    dids: tuple[str, ...] = ()  # empty and `queues` empty: any inbound call
    queues: tuple[str, ...] = ()
    source: Literal["missed_call", "web"] = "missed_call"
    reasons: tuple[str, ...] = MISS_REASONS
    min_wait: float = 5.0  # an abandon after less wait is a misdial
    delay: float = 60.0
    hours: tuple[tuple[tuple[int, int], ...], ...] = DEFAULT_HOURS
    holidays: tuple[date, ...] = ()
    max_attempts: int = 3
    retry_after: float = 600.0
    order: Literal["agent_first", "customer_first"] = "agent_first"
    ring: Literal["queue", "agent"] = "queue"  # agent first: ring the queue, or the agent who missed it
    queue: str | None = None  # the queue to ring (agent first) or to connect the customer to
    present_number: str | None = None  # the business number the customer sees
    message: str | None = None  # customer first: the sound played before the queue
    context: str = "pbxlink-callback"


@dataclass(frozen=True)
class Config:
    path: Path | None
    database: DatabaseConfig
    web: WebConfig
    pbx: tuple[PbxConfig, ...]
    data_dir: Path
    log_level: str = "INFO"
    crm: tuple[CrmConfig, ...] = ()
    phone: PhoneConfig = PhoneConfig()
    cache: CacheConfig = CacheConfig()
    agi: AgiConfig | None = None
    webhooks: tuple[WebhookConfig, ...] = ()
    outbox: OutboxConfig = OutboxConfig()
    recordings: RecordingsConfig = RecordingsConfig()
    callbacks: CallbacksConfig = CallbacksConfig()
    callback_policies: tuple[CallbackPolicyConfig, ...] = ()
    #: redis://… : shared cache (and, later, the bus); None = in-process
    redis_url: str | None = field(default=None, repr=False)


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


_TOP_KEYS = (
    "database",
    "web",
    "pbx",
    "log",
    "data_dir",
    "crm",
    "phone",
    "cache",
    "redis",
    "agi",
    "webhook",
    "outbox",
    "recordings",
    "callbacks",
    "callback_policy",
)
CRM_TYPES = ("hubspot", "pipedrive", "odoo", "bitrix24", "zoho", "rest")
_PHONE_KEYS = ("default_region", "match_digits")
_CACHE_KEYS = ("ttl", "negative_ttl")
_REDIS_KEYS = ("url",)
_AGI_KEYS = ("listen", "budget")
_OUTBOX_KEYS = ("retry_delays", "give_up_after")
_RECORDINGS_KEYS = ("folders", "link_days")
_CALLBACKS_KEYS = (
    "allowed_origins",
    "rate_per_ip_minute",
    "rate_per_ip_day",
    "rate_per_number_day",
    "trusted_proxies",
)
MAX_RATE = 1_000_000
_CALLBACK_POLICY_KEYS = (
    "name",
    "pbx",
    "match",
    "reasons",
    "min_wait",
    "delay",
    "timezone",
    "hours",
    "holidays",
    "max_attempts",
    "retry_after",
    "order",
    "ring",
    "queue",
    "present_number",
    "message",
    "context",
)
_MATCH_KEYS = ("dids", "queues", "source")
MAX_CALLBACK_ATTEMPTS = 10
MAX_CALLBACK_SECONDS = 30 * 86400.0
MIN_RETRY_AFTER = 60.0  # a customer rung again sooner than this is pestered, not called back
_TIME_RANGE = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")
_DID = re.compile(r"\+?[0-9][0-9 ().-]{0,39}")
_QUEUE = re.compile(r"[A-Za-z0-9_.+*#-]{1,64}")
_PRESENT_NUMBER = re.compile(r"\+?[0-9]{3,20}")
_SOUND = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_/.-]{0,127}")
_CONTEXT = re.compile(r"[A-Za-z0-9_.-]{1,48}")  # room for the "-customer-first" suffix
MAX_LINK_DAYS = 3650.0
_WEBHOOK_KEYS = ("name", "url", "secret", "events")
EVENT_KINDS = ("started", "updated", "ringing", "ring_ended", "answered", "transferred", "ended", "recording")
MAX_AGI_BUDGET = 5.0
_DATABASE_KEYS = ("url",)
_WEB_KEYS = ("listen", "secret_key", "public_url", "threads")
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
            pbx=(pbxes := self.pbxes(doc.get("pbx", []))),
            data_dir=data_dir,
            log_level=self.log_level(self.table(doc, "log")),
            crm=self.crms(doc.get("crm", [])),
            phone=self.phone(self.table(doc, "phone")),
            cache=self.cache(self.table(doc, "cache")),
            agi=self.agi(doc.get("agi")),
            webhooks=self.webhooks(doc.get("webhook", [])),
            redis_url=self.redis(self.table(doc, "redis")),
            outbox=self.outbox(self.table(doc, "outbox")),
            recordings=self.recordings(self.table(doc, "recordings"), base),
            callbacks=self.callbacks(self.table(doc, "callbacks")),
            callback_policies=self.callback_policies(doc.get("callback_policy", []), pbxes),
        )

    def outbox(self, table: Mapping[str, Any]) -> OutboxConfig:
        self.known(table, _OUTBOX_KEYS, "[outbox]")
        delays = table.get("retry_delays", list(OutboxConfig.retry_delays))
        if (
            not isinstance(delays, list)
            or not delays
            or any(isinstance(d, bool) or not isinstance(d, int | float) or d <= 0 for d in delays)
        ):
            raise self.fail(
                "[outbox]",
                f"expected a list of positive seconds like [10, 30, 120], got {_show(delays)}",
                key="retry_delays",
            )
        return OutboxConfig(
            retry_delays=tuple(float(d) for d in delays),
            give_up_after=self.number(table, "give_up_after", "[outbox]", OutboxConfig.give_up_after),
        )

    def recordings(self, table: Mapping[str, Any], base: Path) -> RecordingsConfig:
        self.known(table, _RECORDINGS_KEYS, "[recordings]")
        folders = table.get("folders", [])
        if not isinstance(folders, list) or any(not isinstance(f, str) or not f.strip() for f in folders):
            raise self.fail(
                "[recordings]",
                f'expected a list of folders like ["/var/spool/asterisk/monitor"], got {_show(folders)}',
                key="folders",
            )
        paths = tuple(Path(os.path.normpath(base / Path(f).expanduser())) for f in folders)
        if any(p == Path(p.anchor) for p in paths):
            raise self.fail(
                "[recordings]",
                "the filesystem root would let a link serve any file: name the recording folders themselves",
                key="folders",
            )
        days = table.get("link_days", RecordingsConfig.link_days)
        if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= MAX_LINK_DAYS:
            raise self.fail(
                "[recordings]",
                f"expected days, more than 0 and at most {MAX_LINK_DAYS:g}, got {_show(days)}",
                key="link_days",
            )
        return RecordingsConfig(folders=tuple(dict.fromkeys(paths)), link_days=float(days))

    def callbacks(self, table: Mapping[str, Any]) -> CallbacksConfig:
        import ipaddress

        self.known(table, _CALLBACKS_KEYS, "[callbacks]")
        origins = table.get("allowed_origins", [])
        if not isinstance(origins, list) or any(not isinstance(o, str) for o in origins):
            raise self.fail(
                "[callbacks]",
                f'expected a list of sites like ["https://www.example.com"], got {_show(origins)}',
                key="allowed_origins",
            )
        rates = {}
        for key in ("rate_per_ip_minute", "rate_per_ip_day", "rate_per_number_day"):
            rate = table.get(key, getattr(CallbacksConfig, key))
            if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= MAX_RATE:
                raise self.fail(
                    "[callbacks]", f"expected a number of requests, 1-{MAX_RATE}, got {_show(rate)}", key=key
                )
            rates[key] = rate
        proxies = table.get("trusted_proxies", [])
        if not isinstance(proxies, list):
            message = f'expected a list like ["127.0.0.1"], got {_show(proxies)}'
            raise self.fail("[callbacks]", message, key="trusted_proxies")
        networks = []
        for proxy in proxies:
            try:
                networks.append(str(ipaddress.ip_network(proxy, strict=False)))
            except (TypeError, ValueError):
                raise self.fail(
                    "[callbacks]",
                    f'{_show(proxy)} is not an address or network like "10.0.0.5" or "10.0.0.0/24"',
                    key="trusted_proxies",
                ) from None
        return CallbacksConfig(
            allowed_origins=tuple(dict.fromkeys(self.origin(o) for o in origins)),
            trusted_proxies=tuple(dict.fromkeys(networks)),
            **rates,
        )

    def origin(self, text: str) -> str:
        """`text` as browsers send it in `Origin`: lower case, punycode host, no default port."""
        if text.strip() == "*":
            raise self.fail(
                "[callbacks]",
                '"*" would let any site on the web post the form: list the sites one by one',
                key="allowed_origins",
            )
        parts = urlsplit(text.strip())
        try:
            port, host = parts.port, (parts.hostname or "").encode("idna").decode("ascii")
        except (ValueError, UnicodeError):
            port, host = None, ""
        if (
            parts.scheme.lower() not in ("http", "https")
            or not host
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise self.fail(
                "[callbacks]",
                f'{_show(text)} is not a site like "https://www.example.com" (scheme and host, no path)',
                key="allowed_origins",
            )
        scheme = parts.scheme.lower()
        if ":" in host:
            host = f"[{host}]"
        default = 443 if scheme == "https" else 80
        return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")

    def named_list(self, entries: Any, section: str) -> list[tuple[str, dict[str, Any]]]:
        """`[[section]]` tables, each with a unique `name`: (where-prefix, table) pairs."""
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise self.fail("", f"expected [[{section}]] tables", key=section)
        out: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        for i, entry in enumerate(entries, 1):
            where = f"[[{section}]] #{i}"
            name = self.string(entry, "name", where)
            where = f"{where} {_show(name)}"
            if not _PBX_NAME.fullmatch(name):
                raise self.fail(
                    where, "must be 1-64 letters, digits, _ . - (a letter or digit first)", key="name"
                )
            if name in seen:
                message = f"a second [[{section}]] is {_show(name)}: names must differ"
                raise self.fail(where, message, key="name")
            seen.add(name)
            out.append((where, entry))
        return out

    def crms(self, entries: Any) -> tuple[CrmConfig, ...]:
        crms = []
        for where, entry in self.named_list(entries, "crm"):
            crm_type = self.string(entry, "type", where)
            if crm_type not in CRM_TYPES:
                raise self.fail(where, f"{_show(crm_type)} is not one of {', '.join(CRM_TYPES)}", key="type")
            enabled = entry.get("enabled", True)
            if not isinstance(enabled, bool):
                raise self.fail(where, f"expected true or false, got {_show(enabled)}", key="enabled")
            prefix = "PBXLINK_CRM_" + re.sub(r"[^A-Z0-9]", "_", entry["name"].upper()) + "_"
            from_env = {
                k[len(prefix) :].lower(): v for k, v in self.env.items() if k.startswith(prefix) and v
            }
            options = {k: v for k, v in entry.items() if k not in ("name", "type", "timeout", "enabled")}
            crms.append(
                CrmConfig(
                    name=entry["name"],
                    type=crm_type,
                    options={**options, **from_env},
                    timeout=self.number(entry, "timeout", where, CrmConfig.timeout),
                    enabled=enabled,
                )
            )
        return tuple(crms)

    def phone(self, table: Mapping[str, Any]) -> PhoneConfig:
        import phonenumbers

        self.known(table, _PHONE_KEYS, "[phone]")
        region = table.get("default_region", PhoneConfig.default_region)
        if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise self.fail(
                "[phone]", f'{_show(region)} is not a region code like "US", "GB", "DE"', key="default_region"
            )
        digits = table.get("match_digits", PhoneConfig.match_digits)
        if isinstance(digits, bool) or not isinstance(digits, int) or not 7 <= digits <= 15:
            raise self.fail(
                "[phone]", f"expected a number of digits 7-15, got {_show(digits)}", key="match_digits"
            )
        return PhoneConfig(default_region=region.upper(), match_digits=digits)

    def cache(self, table: Mapping[str, Any]) -> CacheConfig:
        self.known(table, _CACHE_KEYS, "[cache]")
        return CacheConfig(
            ttl=self.number(table, "ttl", "[cache]", CacheConfig.ttl),
            negative_ttl=self.number(table, "negative_ttl", "[cache]", CacheConfig.negative_ttl),
        )

    def redis(self, table: Mapping[str, Any]) -> str | None:
        self.known(table, _REDIS_KEYS, "[redis]")
        url = self.env.get("PBXLINK_REDIS_URL") or table.get("url")
        if url is None:
            return None
        if not isinstance(url, str) or urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            shown = redact_url(url) if isinstance(url, str) else _show(url)
            raise self.fail("[redis]", f'"{shown}" is not redis://[:PASSWORD@]HOST:PORT/DB', key="url")
        return url

    def agi(self, table: Any) -> AgiConfig | None:
        if table is None:
            return None
        if not isinstance(table, dict):
            raise self.fail("[agi]", f"expected a table, got {_show(table)}")
        self.known(table, _AGI_KEYS, "[agi]")
        listen = table.get("listen", "127.0.0.1:4573")
        match = _LISTEN.fullmatch(listen) if isinstance(listen, str) else None
        if match is None or not 0 < int(match["port"]) < 65536:
            raise self.fail(
                "[agi]", f'{_show(listen)} is not host:port (e.g. "127.0.0.1:4573")', key="listen"
            )
        budget = table.get("budget", AgiConfig.budget)
        if (
            isinstance(budget, bool)
            or not isinstance(budget, int | float)
            or not 0 < budget <= MAX_AGI_BUDGET
        ):
            raise self.fail(
                "[agi]",
                f"expected seconds, more than 0 and at most {MAX_AGI_BUDGET:g} (the call waits that long "
                f"at most), got {_show(budget)}",
                key="budget",
            )
        return AgiConfig(host=match["v6"] or match["host"], port=int(match["port"]), budget=float(budget))

    def webhooks(self, entries: Any) -> tuple[WebhookConfig, ...]:
        hooks = []
        for where, entry in self.named_list(entries, "webhook"):
            self.known(entry, _WEBHOOK_KEYS, where)
            url = self.string(entry, "url", where)
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
                raise self.fail(where, f"{_show(redact_url(url))} is not an http(s):// URL", key="url")
            env_name = "PBXLINK_WEBHOOK_" + re.sub(r"[^A-Z0-9]", "_", entry["name"].upper()) + "_SECRET"
            secret = self.secret(entry, "secret", where, env_name)
            if secret is None or len(secret) < MIN_SECRET_KEY_LENGTH:
                raise self.fail(
                    where,
                    f"needs a secret of at least {MIN_SECRET_KEY_LENGTH} characters (or set {env_name}): "
                    "receivers check the signature with it",
                    key="secret",
                )
            events = entry.get("events", [])
            if not isinstance(events, list) or any(e not in EVENT_KINDS for e in events):
                raise self.fail(
                    where, f"expected a list of event kinds from {', '.join(EVENT_KINDS)}", key="events"
                )
            hooks.append(WebhookConfig(name=entry["name"], url=url, secret=secret, events=tuple(events)))
        return tuple(hooks)

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
        public_url = table.get("public_url")
        if public_url is not None and (
            not isinstance(public_url, str) or urlsplit(public_url).scheme not in ("http", "https")
        ):
            raise self.fail("[web]", f"{_show(public_url)} is not an http(s):// URL", key="public_url")
        threads = table.get("threads", WebConfig.threads)
        if isinstance(threads, bool) or not isinstance(threads, int) or not 4 <= threads <= 2000:
            raise self.fail(
                "[web]",
                f"expected 4-2000 (one per open live page, plus a few), got {_show(threads)}",
                key="threads",
            )
        return WebConfig(
            host=match["v6"] or match["host"],
            port=int(match["port"]),
            secret_key=key,
            public_url=public_url.rstrip("/") if public_url else None,
            threads=threads,
        )

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

    def callback_policies(
        self, entries: Any, pbxes: tuple[PbxConfig, ...]
    ) -> tuple[CallbackPolicyConfig, ...]:
        named = self.named_list(entries, "callback_policy")
        policies = tuple(self.callback_policy(where, entry, pbxes) for where, entry in named)
        web = [p.name for p in policies if p.source == "web"]
        if len(web) > 1:
            raise self.fail(
                f"[[callback_policy]] {_show(web[1])}",
                f'{_show(web[0])} already takes website requests: only one policy may have source = "web"',
                key="match.source",
            )
        return policies

    def callback_policy(
        self, where: str, entry: Mapping[str, Any], pbxes: tuple[PbxConfig, ...]
    ) -> CallbackPolicyConfig:
        self.known(entry, _CALLBACK_POLICY_KEYS, where)
        names = [p.name for p in pbxes]
        if not names:
            raise self.fail(where, "needs a [[pbx]] to place its calls through", key="pbx")
        pbx = self.string(entry, "pbx", where, default=names[0])
        if pbx not in names:
            raise self.fail(
                where, f"{_show(pbx)} is not a [[pbx]] name (known: {', '.join(names)})", key="pbx"
            )
        dids, queues, source = self.callback_match(entry.get("match", {}), where)
        reasons = entry.get("reasons", list(MISS_REASONS))
        if not isinstance(reasons, list) or not reasons or any(r not in MISS_REASONS for r in reasons):
            raise self.fail(where, f"expected a list from {', '.join(MISS_REASONS)}", key="reasons")
        order = self.choice(entry, "order", where, ("agent_first", "customer_first"))
        ring = self.choice(entry, "ring", where, ("queue", "agent"))
        if order == "customer_first" and "ring" in entry:
            raise self.fail(where, 'only for order = "agent_first" (whom to ring first)', key="ring")
        if order == "agent_first" and "message" in entry:
            raise self.fail(
                where, 'only for order = "customer_first" (what the customer hears)', key="message"
            )
        queue = self.pattern(entry, "queue", where, _QUEUE, 'a queue name or number like "600"')
        if queue is None and (order == "customer_first" or ring == "queue" or source == "web"):
            what = "ring" if order == "agent_first" else "connect the customer to"
            raise self.fail(where, f'missing key "queue": the queue to {what}')
        attempts = entry.get("max_attempts", CallbackPolicyConfig.max_attempts)
        if (
            isinstance(attempts, bool)
            or not isinstance(attempts, int)
            or not 1 <= attempts <= MAX_CALLBACK_ATTEMPTS
        ):
            message = f"expected a number of attempts 1-{MAX_CALLBACK_ATTEMPTS}, got {_show(attempts)}"
            raise self.fail(where, message, key="max_attempts")
        return CallbackPolicyConfig(
            name=entry["name"],
            pbx=pbx,
            timezone=self.timezone(entry, where),
            dids=dids,
            queues=queues,
            source=source,
            reasons=tuple(dict.fromkeys(reasons)),
            min_wait=self.seconds(entry, "min_wait", where, CallbackPolicyConfig.min_wait),
            delay=self.seconds(entry, "delay", where, CallbackPolicyConfig.delay),
            hours=self.opening_hours(entry.get("hours"), where),
            holidays=self.holidays(entry.get("holidays", []), where),
            max_attempts=attempts,
            retry_after=self.seconds(
                entry, "retry_after", where, CallbackPolicyConfig.retry_after, MIN_RETRY_AFTER
            ),
            order=cast(Literal["agent_first", "customer_first"], order),
            ring=cast(Literal["queue", "agent"], ring),
            queue=queue,
            present_number=self.pattern(entry, "present_number", where, _PRESENT_NUMBER, "a phone number"),
            message=self.sound(entry, where),
            context=self.pattern(
                entry, "context", where, _CONTEXT, "a dialplan context of at most 48 letters, digits, _ . -"
            )
            or CallbackPolicyConfig.context,
        )

    def callback_match(
        self, match: Any, where: str
    ) -> tuple[tuple[str, ...], tuple[str, ...], Literal["missed_call", "web"]]:
        if not isinstance(match, dict):
            raise self.fail(
                where, f'expected a table like {{ queues = ["sales"] }}, got {_show(match)}', key="match"
            )
        self.known(match, _MATCH_KEYS, f"{where} match")
        lists: dict[str, tuple[str, ...]] = {}
        for key, pattern, example in (
            ("dids", _DID, '["+15551230000"]'),
            ("queues", _QUEUE, '["sales", "600"]'),
        ):
            value = match.get(key, [])
            if not isinstance(value, list) or any(
                not isinstance(v, str) or not pattern.fullmatch(v) for v in value
            ):
                raise self.fail(
                    where, f"expected a list like {example}, got {_show(value)}", key=f"match.{key}"
                )
            lists[key] = tuple(dict.fromkeys(value))
        source = match.get("source")
        if source is None:
            return lists["dids"], lists["queues"], "missed_call"
        if source != "web":
            raise self.fail(
                where, f'{_show(source)} is not "web" (leave it out for missed calls)', key="match.source"
            )
        if lists["dids"] or lists["queues"]:
            raise self.fail(
                where, "website requests come in on no DID or queue: drop dids and queues", key="match.source"
            )
        return (), (), "web"

    def choice(self, table: Mapping[str, Any], key: str, where: str, options: tuple[str, ...]) -> str:
        """`table[key]`, one of `options`; the first is the default."""
        value = table.get(key, options[0])
        if value not in options:
            shown = ", ".join(f'"{o}"' for o in options)
            raise self.fail(where, f"{_show(value)} is not one of {shown}", key=key)
        return str(value)

    def pattern(
        self, table: Mapping[str, Any], key: str, where: str, pattern: re.Pattern[str], what: str
    ) -> str | None:
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not pattern.fullmatch(value)):
            raise self.fail(where, f"{_show(value)} is not {what}", key=key)
        return value

    def sound(self, entry: Mapping[str, Any], where: str) -> str | None:
        what = 'a sound file name like "custom/callback-intro" (letters, digits, _ - . /)'
        message = self.pattern(entry, "message", where, _SOUND, what)
        if message is not None and ".." in message:
            raise self.fail(where, f"{_show(message)} may not contain ..", key="message")
        return message

    def seconds(
        self, table: Mapping[str, Any], key: str, where: str, default: float, minimum: float = 0.0
    ) -> float:
        value = table.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not minimum <= value <= MAX_CALLBACK_SECONDS
        ):
            raise self.fail(
                where,
                f"expected seconds, {minimum:g} to {MAX_CALLBACK_SECONDS:g} (30 days), got {_show(value)}",
                key=key,
            )
        return float(value)

    def timezone(self, entry: Mapping[str, Any], where: str) -> str:
        import zoneinfo

        name = entry.get("timezone")
        if name is None:
            return self.server_timezone()
        try:
            zoneinfo.ZoneInfo(name)
        except (TypeError, ValueError, KeyError, OSError):  # KeyError: ZoneInfoNotFoundError
            raise self.fail(
                where,
                f'{_show(name)} is not a time zone like "Europe/Berlin" or "America/New_York"',
                key="timezone",
            ) from None
        return str(name)

    def server_timezone(self) -> str:
        """This machine's zone by its IANA name ($TZ, else what /etc/localtime links to), else UTC."""
        import zoneinfo

        candidates = [self.env.get("TZ", "").lstrip(":")]
        with contextlib.suppress(OSError):
            candidates.append(os.path.realpath("/etc/localtime").partition("/zoneinfo/")[2])
        for name in candidates:
            with contextlib.suppress(TypeError, ValueError, KeyError, OSError):
                if name:
                    zoneinfo.ZoneInfo(name)
                    return name
        return "UTC"

    def opening_hours(self, table: Any, where: str) -> tuple[tuple[tuple[int, int], ...], ...]:
        if table is None:
            return DEFAULT_HOURS
        if not isinstance(table, dict):
            example = '{ mon = "09:00-17:00", sat = ["09:00-12:00"] }'
            raise self.fail(where, f"expected a table like {example}, got {_show(table)}", key="hours")
        self.known(table, WEEKDAYS, f"{where} hours")
        days = []
        for day in WEEKDAYS:
            value = table.get(day, [])
            ranges = [value] if isinstance(value, str) else value
            if not isinstance(ranges, list) or any(not isinstance(r, str) for r in ranges):
                message = f'expected "09:00-17:00" or a list of such ranges, got {_show(value)}'
                raise self.fail(where, message, key=f"hours.{day}")
            parsed = sorted(self.time_range(r, where, f"hours.{day}") for r in ranges)
            if any(a[1] > b[0] for a, b in itertools.pairwise(parsed)):
                raise self.fail(where, "ranges overlap: list each opening once", key=f"hours.{day}")
            days.append(tuple(parsed))
        if not any(days):
            raise self.fail(where, "every day is closed: no callback could ever be placed", key="hours")
        return tuple(days)

    def time_range(self, text: str, where: str, key: str) -> tuple[int, int]:
        m = _TIME_RANGE.fullmatch(text.strip())
        if m is not None and int(m[2]) < 60 and int(m[4]) < 60:
            start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
            if start < end <= 24 * 60:
                return start, end
        message = f'{_show(text)} is not a range like "09:00-17:30" within one day (00:00 to 24:00)'
        raise self.fail(where, message, key=key)

    def holidays(self, value: Any, where: str) -> tuple[date, ...]:
        days = [_date(item) for item in value] if isinstance(value, list) else [None]
        if any(day is None for day in days):
            message = f'expected a list of dates like ["2026-12-25"], got {_show(value)}'
            raise self.fail(where, message, key="holidays")
        return tuple(sorted({day for day in days if day is not None}))

    def log_level(self, table: Mapping[str, Any]) -> str:
        self.known(table, _LOG_KEYS, "[log]")
        level = table.get("level", "INFO")
        if not isinstance(level, str) or level.upper() not in LOG_LEVELS:
            raise self.fail("[log]", f"{_show(level)} is not one of {', '.join(LOG_LEVELS)}", key="level")
        return level.upper()


def _date(item: Any) -> date | None:
    """A holiday: a TOML date (2026-12-25) or the same in quotes; None for anything else."""
    if isinstance(item, datetime) or not isinstance(item, date | str):
        return None
    if isinstance(item, date):
        return item
    try:
        return date.fromisoformat(item) if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", item) else None
    except ValueError:
        return None


def _show(value: Any) -> str:
    """A value as it would appear in TOML, for error messages (never used for secrets)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # quoted and escaped: stays on one line
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)
