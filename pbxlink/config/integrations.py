"""The sections around the PBX: storage, web panel, log, CRMs, phone numbers, cache, redis,
FastAGI, webhooks, the delivery outbox and recordings."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pbxlink.config.model import (
    LOG_LEVELS,
    MIN_SECRET_KEY_LENGTH,
    AgiConfig,
    CacheConfig,
    CrmConfig,
    DatabaseConfig,
    OutboxConfig,
    PhoneConfig,
    RecordingsConfig,
    WebConfig,
    WebhookConfig,
    redact_url,
)
from pbxlink.config.values import LISTEN, Values, show

CRM_TYPES = ("hubspot", "pipedrive", "odoo", "bitrix24", "zoho", "rest")
_PHONE_KEYS = ("default_region", "match_digits")
_CACHE_KEYS = ("ttl", "negative_ttl")
_REDIS_KEYS = ("url",)
_AGI_KEYS = ("listen", "budget")
_OUTBOX_KEYS = ("retry_delays", "give_up_after")
_RECORDINGS_KEYS = ("folders", "link_days", "retention_time")
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
MAX_LINK_DAYS = 3650.0
_WEBHOOK_KEYS = ("name", "url", "secret", "events")
EVENT_KINDS = ("started", "updated", "ringing", "ring_ended", "answered", "transferred", "ended", "recording")
MAX_AGI_BUDGET = 5.0
_DATABASE_KEYS = ("url",)
_WEB_KEYS = ("listen", "secret_key", "public_url", "threads")
_LOG_KEYS = ("level",)


class IntegrationSections(Values):
    """One method per section, returning its dataclass ([redis] and [log]: their one value)."""

    def database(self, table: Mapping[str, Any], base: Path, data_dir: Path) -> DatabaseConfig:
        self.known(table, _DATABASE_KEYS, "[database]")
        url = self.env.get("PBXLINK_DATABASE_URL") or table.get("url")
        if url is None:
            return DatabaseConfig(f"sqlite:///{data_dir / 'pbxlink.db'}")
        if not isinstance(url, str):
            raise self.fail("[database]", f"expected a string, got {show(url)}", key="url")
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
        match = LISTEN.fullmatch(listen) if isinstance(listen, str) else None
        if match is None or not 0 < int(match["port"]) < 65536:
            raise self.fail("[web]", f'{show(listen)} is not host:port (e.g. "127.0.0.1:8080")', key="listen")
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
            raise self.fail("[web]", f"{show(public_url)} is not an http(s):// URL", key="public_url")
        threads = table.get("threads", WebConfig.threads)
        if isinstance(threads, bool) or not isinstance(threads, int) or not 4 <= threads <= 2000:
            raise self.fail(
                "[web]",
                f"expected 4-2000 (one per open live page, plus a few), got {show(threads)}",
                key="threads",
            )
        return WebConfig(
            host=match["v6"] or match["host"],
            port=int(match["port"]),
            secret_key=key,
            public_url=public_url.rstrip("/") if public_url else None,
            threads=threads,
        )

    def log_level(self, table: Mapping[str, Any]) -> str:
        self.known(table, _LOG_KEYS, "[log]")
        level = table.get("level", "INFO")
        if not isinstance(level, str) or level.upper() not in LOG_LEVELS:
            raise self.fail("[log]", f"{show(level)} is not one of {', '.join(LOG_LEVELS)}", key="level")
        return level.upper()

    def crms(self, entries: Any) -> tuple[CrmConfig, ...]:
        crms = []
        for where, entry in self.named_list(entries, "crm"):
            crm_type = self.string(entry, "type", where)
            if crm_type not in CRM_TYPES:
                raise self.fail(where, f"{show(crm_type)} is not one of {', '.join(CRM_TYPES)}", key="type")
            enabled = entry.get("enabled", True)
            if not isinstance(enabled, bool):
                raise self.fail(where, f"expected true or false, got {show(enabled)}", key="enabled")
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
                "[phone]", f'{show(region)} is not a region code like "US", "GB", "DE"', key="default_region"
            )
        digits = table.get("match_digits", PhoneConfig.match_digits)
        if isinstance(digits, bool) or not isinstance(digits, int) or not 7 <= digits <= 15:
            raise self.fail(
                "[phone]", f"expected a number of digits 7-15, got {show(digits)}", key="match_digits"
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
            shown = redact_url(url) if isinstance(url, str) else show(url)
            raise self.fail("[redis]", f'"{shown}" is not redis://[:PASSWORD@]HOST:PORT/DB', key="url")
        return url

    def agi(self, table: Any) -> AgiConfig | None:
        if table is None:
            return None
        if not isinstance(table, dict):
            raise self.fail("[agi]", f"expected a table, got {show(table)}")
        self.known(table, _AGI_KEYS, "[agi]")
        listen = table.get("listen", "127.0.0.1:4573")
        match = LISTEN.fullmatch(listen) if isinstance(listen, str) else None
        if match is None or not 0 < int(match["port"]) < 65536:
            raise self.fail("[agi]", f'{show(listen)} is not host:port (e.g. "127.0.0.1:4573")', key="listen")
        budget = table.get("budget", AgiConfig.budget)
        if (
            isinstance(budget, bool)
            or not isinstance(budget, int | float)
            or not 0 < budget <= MAX_AGI_BUDGET
        ):
            raise self.fail(
                "[agi]",
                f"expected seconds, more than 0 and at most {MAX_AGI_BUDGET:g} (the call waits that long "
                f"at most), got {show(budget)}",
                key="budget",
            )
        return AgiConfig(host=match["v6"] or match["host"], port=int(match["port"]), budget=float(budget))

    def webhooks(self, entries: Any) -> tuple[WebhookConfig, ...]:
        hooks = []
        for where, entry in self.named_list(entries, "webhook"):
            self.known(entry, _WEBHOOK_KEYS, where)
            url = self.string(entry, "url", where)
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
                raise self.fail(where, f"{show(redact_url(url))} is not an http(s):// URL", key="url")
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
                f"expected a list of positive seconds like [10, 30, 120], got {show(delays)}",
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
                f'expected a list of folders like ["/var/spool/asterisk/monitor"], got {show(folders)}',
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
                f"expected days, more than 0 and at most {MAX_LINK_DAYS:g}, got {show(days)}",
                key="link_days",
            )
        at = table.get("retention_time", RecordingsConfig.retention_time)
        if not isinstance(at, str) or not _HH_MM.fullmatch(at):
            raise self.fail(
                "[recordings]",
                f'expected a time of day like "03:30" (server time), got {show(at)}',
                key="retention_time",
            )
        return RecordingsConfig(folders=tuple(dict.fromkeys(paths)), link_days=float(days), retention_time=at)
