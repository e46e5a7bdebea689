"""The HTTP side every connector shares: one pooled session, timeouts, retries, Retry-After.

Errors come out as the `CrmError` kinds of `pbxlink.domain.crm`, with one-line messages
naming the CRM, the method and the path, and never a secret: tokens that travel in a
URL (a Bitrix24 webhook, an API key parameter) are replaced by `***` before any message
or log line is written.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from pbxlink import __version__
from pbxlink.domain.crm import CrmAuthError, CrmError, CrmRequestError, CrmUnavailable

log = logging.getLogger(__name__)

USER_AGENT = f"pbxlink/{__version__}"
MAX_MESSAGE = 200


class HttpClient:
    """Requests to one CRM. `retries` extra attempts on timeouts, connection errors, 429 and 5xx,
    with exponential backoff and full jitter; a 429's Retry-After is honoured when it is at most
    `max_retry_after` seconds, else the call fails at once with `CrmUnavailable.retry_after` set,
    so a durable queue can come back later instead of holding a thread for an hour."""

    def __init__(
        self,
        crm: str,
        base_url: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.5,
        max_retry_after: float = 10.0,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.crm = crm
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.secrets = tuple(s for s in secrets if s)
        self.sleep = sleep
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.session.headers.update(headers or {})

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/")) if "://" not in path else path

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        retry: bool = True,
    ) -> requests.Response:
        """One request with retries; returns a 2xx response or raises a `CrmError`."""
        url = self.url(path)
        what = f"{self.crm}: {method} {self.redact(urlsplit(url).path)}"
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                resp = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=headers,
                    timeout=timeout or self.timeout,
                )
            except requests.Timeout:
                error: CrmError = CrmUnavailable(f"{what}: no answer within {timeout or self.timeout:g} s")
            except requests.RequestException as exc:
                error = CrmUnavailable(f"{what}: cannot connect ({self.redact(_first_line(exc))})")
            else:
                if resp.status_code < 300:
                    return resp
                error = self.error_for(what, resp)
            if not error.retryable or last:
                raise error
            wait = self.wait_before(attempt, error)
            if wait is None:
                raise error
            log.info("%s; retry %d of %d in %.1f s", error, attempt, attempts - 1, wait)
            self.sleep(wait)
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`request`, then the body as JSON (a CrmRequestError when the CRM answered something else)."""
        resp = self.request(method, path, **kwargs)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise CrmRequestError(
                f"{self.crm}: {method} answered {resp.status_code} with a body that is not JSON"
            ) from None

    def error_for(self, what: str, resp: requests.Response) -> CrmError:
        detail = self.redact(_body_message(resp))
        status = f"{resp.status_code} {resp.reason or ''}".strip()
        message = f"{what}: {status}" + (f": {detail}" if detail else "")
        if resp.status_code in (401, 403):
            return CrmAuthError(message + " (check the API key/token and its permissions)")
        if resp.status_code == 429:
            return CrmUnavailable(message, retry_after=parse_retry_after(resp.headers.get("Retry-After")))
        if resp.status_code >= 500 or resp.status_code == 408:
            return CrmUnavailable(message, retry_after=parse_retry_after(resp.headers.get("Retry-After")))
        return CrmRequestError(message)

    def wait_before(self, attempt: int, error: CrmError) -> float | None:
        """Seconds to wait before the next attempt, or None when the CRM asked for longer than we wait."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return random.uniform(0, self.backoff * 2 ** (attempt - 1))

    def close(self) -> None:
        self.session.close()


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _body_message(resp: requests.Response) -> str:
    """The CRM's own words for an error, from the common JSON shapes, else the start of the body."""
    try:
        body = resp.json()
    except ValueError:
        return _first_line(resp.text)[:MAX_MESSAGE]
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "msg", "detail"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("code")
            if isinstance(value, str) and value:
                return _first_line(value)[:MAX_MESSAGE]
    return _first_line(str(body))[:MAX_MESSAGE]


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""
