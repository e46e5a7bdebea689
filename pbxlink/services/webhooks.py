"""Webhooks: every call event (or the kinds a hook asks for) POSTed to its URL, signed, through the outbox.

The body is the event's JSON; `X-Pbxlink-Signature` is `sha256=<hex>`, an HMAC-SHA256 with
the hook's secret over `<X-Pbxlink-Timestamp>.<body>`, so a receiver can tell the POST
came from us, unchanged and recently (`verify_signature`, docs/webhooks.md). Each event
has a deterministic delivery key (`X-Pbxlink-Delivery`): a replayed event is queued once,
and a receiver that sees a key again (a retry after its answer was lost) can skip it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.cookiejar
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from pbxlink.config import WebhookConfig
from pbxlink.crm.http import USER_AGENT, parse_retry_after
from pbxlink.domain.calls import CallEvent
from pbxlink.domain.ports import Handler
from pbxlink.services.outbox import Deliver, DeliveryError, Enqueue, enqueue_all

KIND = "webhook"
MAX_DETAIL = 200
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]+")


def delivery_key(event: CallEvent) -> str:
    """pbx:call_id:kind:<digest of the event>: the same event always gets the same key."""
    canonical = json.dumps(event.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return f"{event.call.pbx}:{event.call.call_id}:{event.kind}:{digest}"


def webhook_handler(hooks: Sequence[WebhookConfig], enqueue: Enqueue, notify: Callable[[], None]) -> Handler:
    """A bus handler queuing one delivery per hook that wants the event's kind."""

    def on_event(ev: CallEvent) -> None:
        wanted = [hook for hook in hooks if not hook.events or ev.kind in hook.events]
        if not wanted:
            return
        key, payload = delivery_key(ev), ev.to_dict()
        if enqueue_all(enqueue, [(KIND, hook.name, key, payload) for hook in wanted], f"webhook event {key}"):
            notify()

    return on_event


def body_of(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Pbxlink-Signature value: sha256=<hex HMAC-SHA256 over b"<timestamp>.<body>">."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str, timestamp: str, body: bytes, header: str, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """Whether `header` (X-Pbxlink-Signature) signs `body` sent at `timestamp` (X-Pbxlink-Timestamp)
    with `secret`, and the timestamp is within `tolerance_s` of now (an old POST replayed is refused).

    Self-contained (standard library only) so that receivers written in Python can copy it.
    """
    if not re.fullmatch(r"[0-9]{1,12}", timestamp) or not header.startswith("sha256="):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").encode())


def webhook_deliverer(
    hooks: Sequence[WebhookConfig], session: requests.Session | None = None, timeout: float = 5.0
) -> Deliver:
    """POST one queued event to the hook named by the row's target. 2xx is delivered; 408, 429 and
    5xx, timeouts and connection errors are retried (after Retry-After when given); any other
    answer (410 Gone: the receiver asks us to stop; a redirect; another 4xx) fails the delivery."""
    by_name = {hook.name: hook for hook in hooks}
    client = session or _session()

    def deliver(payload: dict[str, Any], target: str, key: str) -> str | None:
        hook = by_name.get(target)
        if hook is None:
            raise DeliveryError(f"webhook {target}: not in the config (any more)", retryable=False)
        body = body_of(payload)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Pbxlink-Event": str(payload.get("kind", "")),
            "X-Pbxlink-Delivery": key,
            "X-Pbxlink-Timestamp": timestamp,
            "X-Pbxlink-Signature": sign(hook.secret, timestamp, body),
        }
        try:
            resp = client.post(hook.url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
        except requests.Timeout:
            raise DeliveryError(f"webhook {target}: no answer within {timeout:g} s", retryable=True) from None
        except requests.RequestException as exc:
            reason = _ERRNO.search(str(exc))  # never the whole message: it holds the URL
            host = urlsplit(hook.url).hostname
            raise DeliveryError(
                f"webhook {target}: cannot connect to {host} ({reason[0] if reason else type(exc).__name__})",
                retryable=True,
            ) from None
        status = int(resp.status_code)
        if status < 300:
            return f"HTTP {status}"
        raise _refusal(target, resp)

    return deliver


def _refusal(target: str, resp: requests.Response) -> DeliveryError:
    status = int(resp.status_code)
    said = " ".join(resp.text[:MAX_DETAIL].split())
    message = f"webhook {target}: the receiver answered {status} {resp.reason or ''}".rstrip()
    message += f": {said}" if said else ""
    if status in (408, 429) or status >= 500:
        return DeliveryError(
            message, retryable=True, retry_after=parse_retry_after(resp.headers.get("Retry-After"))
        )
    if status == 410:
        return DeliveryError(
            message + " (it asks not to be sent any more: fix or remove the hook)", retryable=False
        )
    if 300 <= status < 400:
        location = urlsplit(resp.headers.get("Location", "")).hostname or "elsewhere"
        return DeliveryError(
            message + f" (redirects to {location}: put the final URL in the config)", retryable=False
        )
    return DeliveryError(message, retryable=False)


def _session() -> requests.Session:
    """A pooled session that keeps no cookies: one receiver's cookie must not travel to the next POST."""
    session = requests.Session()
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
