"""The configuration as the rest of pbxlink sees it: frozen dataclasses, the error, shared constants.

This is the shared contract, kept apart from the parsing so that it reads as one page;
the loader modules next to it build these from the TOML file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal
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
    retention_time: str = "03:30"  # HH:MM, server time: when the daily retention run starts


RETENTION_DIRECTIONS = ("inbound", "outbound", "internal")
TRANSCODE_FORMATS = ("none", "mp3", "ogg", "opus")


@dataclass(frozen=True)
class RetentionPolicyConfig:
    """One `[[retention_policy]]`: the recordings it matches are kept `keep_days` after the call.

    Empty match lists mean every recording. A recording several policies match is kept as long as
    the longest says; `enabled = false` (the default) only previews what the policy would delete.
    """

    name: str
    keep_days: float
    queues: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    enabled: bool = False
    transcode: Literal["none", "mp3", "ogg", "opus"] = "none"
    transcode_after_days: float = 0.0  # WAVs older than this are transcoded (at the next daily run)


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
    retention_policies: tuple[RetentionPolicyConfig, ...] = ()
    #: redis://… : shared cache (and, later, the bus); None = in-process
    redis_url: str | None = field(default=None, repr=False)


class ConfigError(Exception):
    """A config file that cannot be used; the message is one line meant for the admin."""


def pbx_secret_env(name: str) -> str:
    """The environment variable that overrides a PBX's secret: PBXLINK_PBX_<NAME>_SECRET."""
    return "PBXLINK_PBX_" + re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_SECRET"
