"""`POST /api/v1/callback-requests`: the website's "call me back" form, open to anyone on the web.

Everything about a request is hostile until shown otherwise, so it is refused as early and as
cheaply as possible: the client's address is counted first (a flood is answered 429 before
its body is looked at), then the site it comes from (CORS: only the configured origins), the
body's type and size, the fields' types and characters, and only then the number, which is
counted too before the callback service sees it (and validates it again).

No login and no CSRF token: the form is posted cross-origin from the business's own site.
Answers are JSON, errors `{"error": ...}` meant to be shown to the visitor as they are.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState

from pbxlink.config import Config
from pbxlink.domain.calls import iso
from pbxlink.domain.phone import numbers
from pbxlink.services.callback_input import web_name, web_number
from pbxlink.services.callbacks import MAX_AHEAD
from pbxlink.services.rate_limit import Limit, RateLimiter, Verdict, make_counters

log = logging.getLogger(__name__)

bp = Blueprint("callback_requests", __name__, url_prefix="/api/v1")

SERVICE_KEY = "pbxlink.callbacks"
GATE_KEY = "pbxlink.callback_gate"
MAX_BODY = 4096  # bytes: a number, a name and a time fit many times over
CLOCK_SKEW = timedelta(minutes=5)  # a visitor's clock may be this far behind: "now" is still now
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FieldError(ValueError):
    """A refused field: the form marks it (`field` in the answer) next to the message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Gate:
    """What stands before the service: the counters, the limits, the allowed sites and proxies."""

    limiter: RateLimiter
    ip_limits: tuple[Limit, ...]
    number_limits: tuple[Limit, ...]
    origins: frozenset[str]
    proxies: tuple[Network, ...] = ()
    warned_unconfigured: bool = False  # said once per process: every visitor would repeat it

    @classmethod
    def from_config(cls, cfg: Config) -> Gate:
        c = cfg.callbacks
        own = {_origin_of(cfg.web.public_url)} if cfg.web.public_url else set()
        return cls(
            limiter=RateLimiter(make_counters(cfg.redis_url)),
            ip_limits=(Limit("ip", c.rate_per_ip_minute, 60.0), Limit("ip", c.rate_per_ip_day, 86400.0)),
            number_limits=(Limit("number", c.rate_per_number_day, 86400.0),),
            origins=frozenset(c.allowed_origins) | own,
            proxies=tuple(ipaddress.ip_network(p) for p in c.trusted_proxies),
        )

    def allows(self, origin: str) -> bool:
        """A configured site, or the panel itself (as the browser addressed it)."""
        origin = origin.lower()
        return origin in self.origins or origin == _origin_of(request.host_url)

    def client(self) -> str:
        """The peer, or behind our proxies the nearest X-Forwarded-For hop that is not one of them."""
        peer = request.remote_addr or "unknown"
        if not self.proxies or not self._trusted(peer):
            return peer
        hops = [h.strip() for h in ",".join(request.headers.getlist("X-Forwarded-For")).split(",")]
        for hop in reversed([h for h in hops if h]):
            if not self._trusted(hop):
                return hop if _address(hop) is not None else peer  # junk in the header: the proxy it came by
            peer = hop
        return peer

    def _trusted(self, addr: str) -> bool:
        ip = _address(addr)
        return ip is not None and any(ip in net for net in self.proxies)


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    state.app.extensions.setdefault(GATE_KEY, Gate.from_config(state.app.extensions["pbxlink.config"]))


@bp.after_request
def _cors(response: Response) -> Response:
    """Readable by the configured sites only, named one by one (never `*`)."""
    response.vary.add("Origin")
    response.headers["Cache-Control"] = "no-store"
    origin = request.headers.get("Origin")
    if origin and _gate().allows(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response


@bp.route("/callback-requests", methods=["OPTIONS"])
def preflight() -> Response:
    origin = request.headers.get("Origin")
    if not origin or not _gate().allows(origin):
        return _error(403, "This site may not request callbacks here.")
    asked = request.headers.get("Access-Control-Request-Headers", "").split(",")
    headers = {h.strip().lower() for h in asked} - {"", "content-type"}
    if request.headers.get("Access-Control-Request-Method", "POST") != "POST" or headers:
        return _error(403, "Only POST with a Content-Type header is allowed here.")
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = "POST"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = "600"
    return response


@bp.post("/callback-requests")
def create() -> Response:
    gate = _gate()
    client = gate.client()
    verdict = gate.limiter.hit(_rate_subject(client), gate.ip_limits)
    if not verdict.allowed:
        return _too_many(verdict, f"client {client}", "from your address")
    origin = request.headers.get("Origin")
    if origin and not gate.allows(origin):
        log.info("callback request refused: origin %r is not in [callbacks] allowed_origins", origin[:200])
        return _error(403, "This site may not request callbacks here.")
    service = current_app.extensions.get(SERVICE_KEY)
    if service is None:
        return _unavailable(gate, "callbacks are not configured on this pbxlink")
    if request.mimetype not in CONTENT_TYPES:
        return _error(415, "Send the request as JSON (application/json) or as a form.")
    too_big = (request.content_length or 0) > MAX_BODY  # said up front: not even read
    raw = b"" if too_big else request.stream.read(MAX_BODY + 1)
    if too_big or len(raw) > MAX_BODY:
        return _error(413, f"The request is too large (at most {MAX_BODY} bytes).")
    try:
        fields = _fields(raw)
        number = _number(fields.get("number"))
        name = _name(fields.get("name"))
        preferred_at = _preferred_at(fields.get("preferred_time"))
    except FieldError as exc:
        return _error(400, str(exc), exc.field)
    except ValueError as exc:
        return _error(400, str(exc))

    verdict = gate.limiter.hit(number, gate.number_limits)
    if not verdict.allowed:
        return _too_many(verdict, f"number {number}", "for this number")
    try:
        callback, created = service.request_from_web(number, name, preferred_at)
    except ValueError as exc:
        return _error(400, _sentence(str(exc)))
    except RuntimeError as exc:  # the service's word for "no policy takes website requests"
        return _unavailable(gate, str(exc))
    if not created:
        log.info(
            "website callback request from %s: callback #%s for %s already open", client, callback.id, number
        )
        return _json(200, {"status": "already scheduled"})  # nothing about the open callback itself
    due_at = iso(callback.due_at)
    log.info(
        "website callback request from %s: callback #%s for %s, due %s", client, callback.id, number, due_at
    )
    return _json(201, {"status": "scheduled", "due_at": due_at})


def _fields(raw: bytes) -> dict[str, Any]:
    """The body as a flat mapping (first value of a repeated form field)."""
    try:
        if request.mimetype == "application/json":
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError('Expected a JSON object like {"number": "+15551234567"}.')
            return body
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except UnicodeDecodeError as exc:
        raise ValueError("The request body is not UTF-8.") from exc
    except RecursionError as exc:
        raise ValueError("The request body is nested too deeply.") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"The request body is not valid JSON ({exc.msg}).") from exc
    fields: dict[str, Any] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


def _number(value: Any) -> str:
    """The number in E.164, by the service's own rules (it checks again): refused here, it costs nothing."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise FieldError("number", "Please enter your phone number.")
    try:
        return web_number(value, numbers())
    except ValueError as exc:
        raise FieldError("number", _sentence(str(exc))) from None


def _name(value: Any) -> str | None:
    try:
        return web_name(value)
    except ValueError as exc:
        raise FieldError("name", _sentence(str(exc))) from None


def _preferred_at(value: Any) -> datetime | None:
    """An aware time, not (much) in the past nor too far ahead; None = as soon as possible."""
    if value is None or value == "":
        return None
    example = "e.g. 2026-03-02T14:30+01:00."
    if not isinstance(value, str) or len(value) > 40:
        raise FieldError(
            "preferred_time", f"The preferred time must be an ISO 8601 time with its UTC offset, {example}"
        )
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise FieldError("preferred_time", f"The preferred time is not an ISO 8601 time, {example}") from None
    if at.tzinfo is None:
        raise FieldError(
            "preferred_time", f"The preferred time needs its UTC offset (Z or +01:00), {example}"
        )
    now = datetime.now(UTC)
    if at < now - CLOCK_SKEW:
        raise FieldError("preferred_time", "The preferred time is in the past.")
    if at > now + MAX_AHEAD:
        raise FieldError("preferred_time", f"The preferred time is more than {MAX_AHEAD.days} days ahead.")
    return max(at.astimezone(UTC), now)


def _unavailable(gate: Gate, why: str) -> Response:
    if not gate.warned_unconfigured:
        gate.warned_unconfigured = True
        log.warning("website callback requests refused (503): %s; add a [[callback_policy]] for them", why)
    return _error(503, "Callback requests are not available at the moment; please call us instead.")


def _too_many(verdict: Verdict, who: str, from_whom: str) -> Response:
    assert verdict.limit is not None
    if verdict.first_refusal:  # one line per offender and window, however many requests follow
        log.warning(
            "callback requests refused for %s: more than %s; refused until the window ends in %d s",
            who,
            verdict.limit.describe(),
            verdict.retry_after,
        )
    response = _error(429, f"Too many callback requests {from_whom}; try again {_in(verdict.wait)}.")
    response.headers["Retry-After"] = str(verdict.retry_after)
    return response


def _in(seconds: float) -> str:
    if seconds <= 60:
        return "in a minute"
    if seconds < 3600:
        return f"in {math.ceil(seconds / 60)} minutes"
    return f"in {math.ceil(seconds / 3600)} hours"


def _sentence(message: str) -> str:
    """A service's message as the form shows it: capitalised, with a full stop."""
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


def _rate_subject(client: str) -> str:
    """An IPv6 client counts by its /64: one home or host holds a whole /64 to hop through."""
    ip = _address(client)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return client


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _gate() -> Gate:
    gate: Gate = current_app.extensions[GATE_KEY]
    return gate


def _error(status: int, message: str, field: str | None = None) -> Response:
    return _json(status, {"error": message, "field": field} if field else {"error": message})


def _json(status: int, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response
