"""[callbacks] (the website's "call me back" form) and [[callback_policy]] (which calls are
called back, and how): the limits that keep callbacks from pestering customers or being abused."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from pbxlink.config.model import MISS_REASONS, CallbackPolicyConfig, CallbacksConfig, PbxConfig
from pbxlink.config.schedule import ScheduleSections
from pbxlink.config.values import show

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
_DID = re.compile(r"\+?[0-9][0-9 ().-]{0,39}")
_QUEUE = re.compile(r"[A-Za-z0-9_.+*#-]{1,64}")
_PRESENT_NUMBER = re.compile(r"\+?[0-9]{3,20}")
_SOUND = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_/.-]{0,127}")
_CONTEXT = re.compile(r"[A-Za-z0-9_.-]{1,48}")  # room for the "-customer-first" suffix


class CallbackSections(ScheduleSections):
    """[callbacks] and [[callback_policy]]; a policy's hours and time zone come from ScheduleSections."""

    def callbacks(self, table: Mapping[str, Any]) -> CallbacksConfig:
        import ipaddress

        self.known(table, _CALLBACKS_KEYS, "[callbacks]")
        origins = table.get("allowed_origins", [])
        if not isinstance(origins, list) or any(not isinstance(o, str) for o in origins):
            raise self.fail(
                "[callbacks]",
                f'expected a list of sites like ["https://www.example.com"], got {show(origins)}',
                key="allowed_origins",
            )
        rates = {}
        for key in ("rate_per_ip_minute", "rate_per_ip_day", "rate_per_number_day"):
            rate = table.get(key, getattr(CallbacksConfig, key))
            if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= MAX_RATE:
                raise self.fail(
                    "[callbacks]", f"expected a number of requests, 1-{MAX_RATE}, got {show(rate)}", key=key
                )
            rates[key] = rate
        proxies = table.get("trusted_proxies", [])
        if not isinstance(proxies, list):
            message = f'expected a list like ["127.0.0.1"], got {show(proxies)}'
            raise self.fail("[callbacks]", message, key="trusted_proxies")
        networks = []
        for proxy in proxies:
            try:
                networks.append(str(ipaddress.ip_network(proxy, strict=False)))
            except (TypeError, ValueError):
                raise self.fail(
                    "[callbacks]",
                    f'{show(proxy)} is not an address or network like "10.0.0.5" or "10.0.0.0/24"',
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
                f'{show(text)} is not a site like "https://www.example.com" (scheme and host, no path)',
                key="allowed_origins",
            )
        scheme = parts.scheme.lower()
        if ":" in host:
            host = f"[{host}]"
        default = 443 if scheme == "https" else 80
        return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")

    def callback_policies(
        self, entries: Any, pbxes: tuple[PbxConfig, ...]
    ) -> tuple[CallbackPolicyConfig, ...]:
        named = self.named_list(entries, "callback_policy")
        policies = tuple(self.callback_policy(where, entry, pbxes) for where, entry in named)
        web = [p.name for p in policies if p.source == "web"]
        if len(web) > 1:
            raise self.fail(
                f"[[callback_policy]] {show(web[1])}",
                f'{show(web[0])} already takes website requests: only one policy may have source = "web"',
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
                where, f"{show(pbx)} is not a [[pbx]] name (known: {', '.join(names)})", key="pbx"
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
            message = f"expected a number of attempts 1-{MAX_CALLBACK_ATTEMPTS}, got {show(attempts)}"
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
                where, f'expected a table like {{ queues = ["sales"] }}, got {show(match)}', key="match"
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
                    where, f"expected a list like {example}, got {show(value)}", key=f"match.{key}"
                )
            lists[key] = tuple(dict.fromkeys(value))
        source = match.get("source")
        if source is None:
            return lists["dids"], lists["queues"], "missed_call"
        if source != "web":
            raise self.fail(
                where, f'{show(source)} is not "web" (leave it out for missed calls)', key="match.source"
            )
        if lists["dids"] or lists["queues"]:
            raise self.fail(
                where, "website requests come in on no DID or queue: drop dids and queues", key="match.source"
            )
        return (), (), "web"

    def sound(self, entry: Mapping[str, Any], where: str) -> str | None:
        what = 'a sound file name like "custom/callback-intro" (letters, digits, _ - . /)'
        message = self.pattern(entry, "message", where, _SOUND, what)
        if message is not None and ".." in message:
            raise self.fail(where, f"{show(message)} may not contain ..", key="message")
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
                f"expected seconds, {minimum:g} to {MAX_CALLBACK_SECONDS:g} (30 days), got {show(value)}",
                key=key,
            )
        return float(value)
