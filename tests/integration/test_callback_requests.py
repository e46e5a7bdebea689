"""`POST /api/v1/callback-requests` with the real callback service on SQLite and a PBX control that
records what it is asked: good requests are scheduled (and only the scheduler ever dials them),
hostile ones are refused with a clear message and leave nothing behind, floods are cut off by
rate limits counted in memory or in a real redis-server, and only the configured sites get CORS."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from pbxlink.web import create_app
from pbxlink.web.callback_requests import GATE_KEY
from pbxlink.web.server import make_server, urls_of
from waitress import wasyncore

from pbxlink.config import CallbackPolicyConfig, CallbacksConfig, Config, DatabaseConfig, WebConfig
from pbxlink.domain.ports import OriginateHandle, OriginateRequest
from pbxlink.services.callbacks import CallbackService
from pbxlink.services.rate_limit import Limit, MemoryCounters, RateLimiter, RedisCounters
from pbxlink.storage import callbacks as store
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from tests.redis_server import RedisServer
from tests.unit.test_config_integrations import error, load

URL = "/api/v1/callback-requests"
SHOP = "https://shop.example.com"
ALL_WEEK = tuple(((0, 24 * 60),) for _ in range(7))
WEBSITE = CallbackPolicyConfig(
    name="website", pbx="main", timezone="UTC", source="web", hours=ALL_WEEK, queue="600"
)
LOGGER = "pbxlink.web.callback_requests"


class RecordingControl:
    """The PBX as the callback service sees it: every originate it was asked for, nothing dialled."""

    name = "main"

    def __init__(self) -> None:
        self.originates: list[OriginateRequest] = []

    def originate(self, req: OriginateRequest) -> OriginateHandle:
        self.originates.append(req)
        return OriginateHandle("main", f"tag-{len(self.originates)}")

    def hangup(self, call_id: str) -> None:
        raise AssertionError("nothing here hangs up")


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()


def panel(config: Config, service: CallbackService | None) -> Flask:
    """The app as `create_app` builds it for `pbxlink run`."""
    return create_app(config, callbacks=service)


class Site:
    """The panel over a real SQLite database, with the website's callback policy and a recording PBX."""

    def __init__(self, tmp: Path, callbacks: CallbacksConfig, *, redis_url: str | None = None) -> None:
        url = f"sqlite:///{tmp}/pbxlink.db"
        self.database = connect(url)
        migrate(self.database)
        self.config = Config(
            path=None,
            database=DatabaseConfig(url),
            web=WebConfig(secret_key="k" * 32, public_url="https://pbx.example.com"),
            pbx=(),
            data_dir=tmp,
            callbacks=callbacks,
            callback_policies=(WEBSITE,),
            redis_url=redis_url,
        )
        self.control = RecordingControl()
        self.service = CallbackService.from_config(self.config, {"main": self.control})
        self.app = panel(self.config, self.service)
        self.client = self.app.test_client()

    def post(
        self,
        ip: str = "198.51.100.1",
        origin: str | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> Any:
        headers = {**(headers or {}), **({"Origin": origin} if origin else {})}
        return self.client.post(URL, headers=headers, environ_base={"REMOTE_ADDR": ip}, **kw)

    def callbacks(self) -> list[dict[str, Any]]:
        rows, total = store.page(None, 100)
        assert total == len(rows)
        return [store.to_dict(cb) for cb in rows]

    def dial_everything_due(self) -> list[OriginateRequest]:
        """Let the scheduler place whatever was queued, however far ahead it is due."""
        self.service.run_due(datetime.now(UTC) + timedelta(days=40))
        return self.control.originates


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path, CallbacksConfig(allowed_origins=(SHOP,)))
    yield s
    s.database.close()


def test_a_visitors_request_is_scheduled_and_only_the_scheduler_dials_it(site: Site) -> None:
    before = datetime.now(UTC)
    resp = site.post(origin=SHOP, json={"number": "(415) 555-0100", "name": " Ada\r\n Lovelace "})
    assert resp.status_code == 201 and resp.mimetype == "application/json"
    assert resp.json["status"] == "scheduled"
    due = datetime.fromisoformat(resp.json["due_at"])
    assert resp.json["due_at"].endswith("Z") and before - timedelta(seconds=1) <= due <= datetime.now(UTC)
    [cb] = site.callbacks()
    assert (cb["number"], cb["name"], cb["source"], cb["policy"]) == (
        "+14155550100",
        "Ada Lovelace",  # one line: the line break is gone
        "web",
        "website",
    )
    assert cb["status"] == "pending" and site.control.originates == []  # asking is not dialling

    [req] = site.dial_everything_due()
    assert req.exten == "+14155550100" and req.variables["PBXLINK_CUSTOMER"] == "+14155550100"


def test_a_form_post_and_a_preferred_time_work_too(site: Site) -> None:
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    paris = at.astimezone(timezone(timedelta(hours=1))).isoformat()  # any offset: the same instant
    resp = site.post(data={"number": "+44 20 7946 0958", "preferred_time": paris})
    assert resp.status_code == 201 and datetime.fromisoformat(resp.json["due_at"]) == at
    assert site.callbacks()[0]["number"] == "+442079460958"
    site.service.run_due(at - timedelta(minutes=1))
    assert site.control.originates == []  # not before the time the visitor chose


def test_a_second_request_for_the_same_number_tells_nothing_and_adds_nothing(site: Site) -> None:
    assert site.post(json={"number": "+1 415 555 0100", "name": "Ada"}).status_code == 201
    again = site.post(ip="198.51.100.2", json={"number": "415.555.0100", "name": "Mallory"})
    assert again.status_code == 200 and again.json == {"status": "already scheduled"}
    [cb] = site.callbacks()
    assert cb["name"] == "Ada"
    assert len(site.dial_everything_due()) == 1


N = "+14155550100"
JSON, FORM = "application/json", "application/x-www-form-urlencoded"


def j(**fields: Any) -> dict[str, Any]:
    return {"json": fields}


def raw(body: bytes, content_type: str | None = JSON) -> dict[str, Any]:
    return {"data": body, "content_type": content_type}


HOSTILE: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("CRLF header injection", j(number=N + "\r\nAction: Originate"), 400, "number"),
    ("LF in the number", j(number=N + "\nChannel: SIP/evil"), 400, "number"),
    ("letters", j(number="call me maybe"), 400, "number"),
    ("emergency", j(number="911"), 400, "number"),
    ("premium rate", j(number="+1 900 555 1234"), 400, "number"),
    ("too long", j(number="+1" + "2" * 200), 400, "number"),
    ("no number", j(name="Ada"), 400, "number"),
    ("number not text", j(number=14155550100), 400, "number"),
    ("number a list", j(number=[N]), 400, "number"),
    ("number an object", j(number={"e164": N}), 400, "number"),
    ("script in the name", j(number=N, name="<script>alert(1)</script>"), 400, "name"),
    ("NUL in the name", j(number=N, name="Ada\x00"), 400, "name"),
    ("name not text", j(number=N, name=42), 400, "name"),
    ("time unparsable", j(number=N, preferred_time="tomorrow"), 400, "preferred_time"),
    ("time past", j(number=N, preferred_time="2020-01-01T10:00Z"), 400, "preferred_time"),
    ("time naive", j(number=N, preferred_time="2099-01-01T10:00"), 400, "preferred_time"),
    ("time far", j(number=N, preferred_time="2099-01-01T10:00Z"), 400, "preferred_time"),
    ("time not text", j(number=N, preferred_time=1767225600), 400, "preferred_time"),
    ("form CRLF", raw(b"number=%2B14155550100%0D%0AAction%3A+Originate", FORM), 400, "number"),
    ("bad JSON", raw(b'{"number": "+14155550100"'), 400, None),
    ("JSON array", raw(b'["+14155550100"]'), 400, None),
    ("JSON string", raw(b'"+14155550100"'), 400, None),
    ("deep JSON", raw(b"[" * 2000 + b"]" * 2000), 400, None),
    ("not UTF-8", raw(b'{"number": "\xff\xfe"}'), 400, None),
    ("form not UTF-8", raw(b"number=%2B1415555%FF0100\xff", FORM), 400, None),
    ("1 MB body", j(number=N, name="A" * 1_048_576), 413, None),
    ("text/plain", raw(b'{"number": "+14155550100"}', "text/plain"), 415, None),
    ("multipart", {"data": {"number": N}, "content_type": "multipart/form-data"}, 415, None),
    ("XML", raw(b"<number>+14155550100</number>", "application/xml"), 415, None),
    ("no content type", raw(b'{"number": "+14155550100"}', None), 415, None),
]


@pytest.mark.parametrize(("case", "request_kwargs", "status", "field"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_refused_clearly_and_nothing_reaches_the_pbx(
    site: Site, case: str, request_kwargs: dict[str, Any], status: int, field: str | None
) -> None:
    resp = site.post(origin=SHOP, **request_kwargs)
    assert resp.status_code == status, resp.json
    assert resp.mimetype == "application/json" and resp.headers["X-Content-Type-Options"] == "nosniff"
    body = resp.json
    assert isinstance(body["error"], str) and 10 < len(body["error"]) < 200 and "\n" not in body["error"]
    assert body.get("field") == field
    assert resp.headers["Access-Control-Allow-Origin"] == SHOP  # the form can show the reason
    assert site.callbacks() == []
    assert site.dial_everything_due() == []


def test_the_refusals_read_as_sentences(site: Site) -> None:
    answers = {
        "+14155550100\r\nAction: Originate": "The number may not contain line breaks or control characters.",
        "12345": "Short codes, service and emergency numbers cannot be dialled.",
        "": "Please enter your phone number.",
    }
    for number, message in answers.items():
        assert site.post(json={"number": number}).json["error"] == message


def test_ten_thousand_requests_from_one_address_are_cut_off_fast(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    site.app.extensions[GATE_KEY].limiter.clock = Clock(datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC))
    statuses: dict[int, int] = {}
    waits = set()
    started = time.perf_counter()
    for i in range(10_000):
        resp = site.post(ip="203.0.113.9", json={"number": f"+1 212 736 {i:04d}"})
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        if resp.status_code == 429:
            waits.add(resp.headers["Retry-After"])
    elapsed = time.perf_counter() - started
    print(f"10,000 requests from one address: {statuses} in {elapsed:.2f} s")
    assert statuses == {201: 5, 429: 9_995}
    # Until 30 requests the minute's window (ending 10:01:00); from the 31st, the day's (ending at midnight).
    assert waits == {"30", str(13 * 3600 + 59 * 60 + 30)}
    assert len(site.callbacks()) == 5 and site.control.originates == []
    assert resp.json == {"error": "Too many callback requests from your address; try again in 14 hours."}
    refusals = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert refusals == [  # one line per limit crossed, not one per refused request
        "callback requests refused for client 203.0.113.9: more than 5 per minute; "
        "refused until the window ends in 30 s",
        "callback requests refused for client 203.0.113.9: more than 30 per day; "
        "refused until the window ends in 50370 s",
    ]
    assert elapsed < 10, f"{elapsed:.1f} s"  # about 2.5 s on 2 cores; a regression here is an outage


def test_a_flooding_address_is_refused_before_its_body_is_read(site: Site) -> None:
    for i in range(5):
        assert site.post(ip="203.0.113.9", json={"number": f"+1 212 736 100{i}"}).status_code == 201
    huge = site.post(ip="203.0.113.9", data=b"x" * 1_048_576, content_type="application/json")
    assert huge.status_code == 429 and int(huge.headers["Retry-After"]) >= 1
    assert site.post(ip="203.0.113.10", json={"number": "+1 212 736 2000"}).status_code == 201  # others go on


def test_windows_end_and_the_day_limit_holds_until_midnight(site: Site) -> None:
    clock = Clock(datetime(2026, 3, 2, 23, 0, 0, tzinfo=UTC))
    site.app.extensions[GATE_KEY].limiter.clock = clock
    n = iter(range(1000))
    for _minute in range(5):  # each minute: 5 pass, the 6th is refused (and counts for the day too)
        codes = [site.post(json={"number": f"+1 212 736 {next(n):04d}"}).status_code for _ in range(6)]
        assert codes == [201] * 5 + [429]
        clock.at += timedelta(minutes=1)
    refused = site.post(json={"number": "+1 212 736 9999"})  # the 31st today, in a fresh minute
    assert refused.status_code == 429 and refused.headers["Retry-After"] == str(55 * 60)
    assert refused.json["error"] == "Too many callback requests from your address; try again in 55 minutes."
    clock.at = datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC)
    assert site.post(json={"number": "+1 212 736 9999"}).status_code == 201
    assert len(site.callbacks()) == 26


def test_one_number_is_limited_whichever_address_asks(site: Site) -> None:
    forms = ["+1 415 555 0100", "(415) 555-0100", "415.555.0100", "+14155550100"]
    answers = [site.post(ip=f"198.51.100.{i}", json={"number": f}) for i, f in enumerate(forms, 1)]
    assert [a.status_code for a in answers] == [201, 200, 200, 429]
    assert answers[-1].json["error"].startswith("Too many callback requests for this number; try again in ")
    assert site.post(ip="198.51.100.9", json={"number": "+1 415 555 0101"}).status_code == 201
    assert len(site.callbacks()) == 2


def test_behind_a_trusted_proxy_the_forwarded_client_counts(tmp_path: Path) -> None:
    s = Site(tmp_path, CallbacksConfig(trusted_proxies=("10.0.0.0/8",)))
    n = iter(range(100))

    def via(peer: str, forwarded: str) -> int:
        number = f"+1 212 736 {next(n):04d}"
        return int(
            s.post(ip=peer, json={"number": number}, headers={"X-Forwarded-For": forwarded}).status_code
        )

    # Two visitors behind the proxy chain are counted apart; the proxies themselves are skipped.
    assert [via("10.0.0.2", "198.51.100.7, 10.0.0.3") for _ in range(6)] == [201] * 5 + [429]
    assert via("10.0.0.2", "198.51.100.8") == 201
    # A client that is not a proxy cannot pick its address by writing the header itself.
    assert [via("203.0.113.5", f"192.0.2.{i}") for i in range(6)] == [201] * 5 + [429]
    # Junk in the header counts against the proxy it came through, not against nobody.
    assert [via("10.0.0.9", "not-an-address") for _ in range(6)] == [201] * 5 + [429]
    s.database.close()


def test_an_ipv6_client_counts_by_its_64(site: Site) -> None:
    codes = [
        site.post(ip=f"2001:db8:1:2::{i}", json={"number": f"+1 212 736 30{i:02d}"}) for i in range(1, 7)
    ]
    assert [c.status_code for c in codes] == [201] * 5 + [429]
    assert site.post(ip="2001:db8:1:3::1", json={"number": "+1 212 736 3100"}).status_code == 201


def test_cors_names_the_configured_sites_only(site: Site) -> None:
    ips = (f"198.51.100.{i}" for i in range(1, 100))  # one address each: this is not about rate limits
    ok = site.post(origin=SHOP, json={"number": "+1 415 555 0100"})
    assert ok.status_code == 201 and ok.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in ok.headers["Vary"] and ok.headers["Cache-Control"] == "no-store"
    for other in (
        "https://evil.example",
        "http://shop.example.com",
        "https://shop.example.com.evil.example",
        "https://shop.example.com:8443",
        "null",
    ):
        refused = site.post(next(ips), origin=other, json={"number": "+1 415 555 0101"})
        assert (
            refused.status_code == 403
            and refused.json["error"] == "This site may not request callbacks here."
        )
        assert "Access-Control-Allow-Origin" not in refused.headers and "Origin" in refused.headers["Vary"]
    assert [c["number"] for c in site.callbacks()] == ["+14155550100"]
    # Not cross-site: the panel itself (its public address, or as the browser reached it), and non-browsers.
    for number, origin in (("0102", "https://pbx.example.com"), ("0103", "http://localhost"), ("0104", None)):
        assert site.post(next(ips), origin=origin, json={"number": f"+1 415 555 {number}"}).status_code == 201


def test_the_preflight_answers_configured_sites_for_post_with_json(site: Site) -> None:
    def preflight(origin: str, method: str = "POST", headers: str = "content-type") -> Any:
        return site.client.options(
            URL,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": headers,
            },
        )

    ok = preflight(SHOP)
    assert ok.status_code == 204 and ok.headers["Access-Control-Allow-Origin"] == SHOP
    assert ok.headers["Access-Control-Allow-Methods"] == "POST"
    assert ok.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert ok.headers["Access-Control-Max-Age"] == "600" and "Origin" in ok.headers["Vary"]
    for refused in (
        preflight("https://evil.example"),
        preflight(SHOP, method="DELETE"),
        preflight(SHOP, headers="content-type, x-requested-with"),
    ):
        assert refused.status_code == 403 and refused.json["error"]
        assert refused.headers.get("Access-Control-Allow-Methods") is None
    assert "Access-Control-Allow-Origin" not in preflight("https://evil.example").headers
    assert "*" not in "".join(f"{k}: {v}" for k, v in ok.headers.items() if k.startswith("Access-Control"))


def test_without_callbacks_configured_the_form_answers_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    s = Site(tmp_path, CallbacksConfig())
    no_service = panel(s.config, None).test_client()
    no_policy = panel(s.config, CallbackService([], {"main": s.control})).test_client()
    for client in (no_service, no_policy):
        for _ in range(2):
            resp = client.post(URL, json={"number": "+1 415 555 0100"})
            assert resp.status_code == 503
            assert (
                resp.json["error"]
                == "Callback requests are not available at the moment; please call us instead."
            )
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 2 and all("add a [[callback_policy]]" in w for w in warnings)  # once per app
    assert s.callbacks() == []
    s.database.close()


@pytest.mark.redis
def test_redis_counts_are_shared_by_web_processes_and_hold_while_redis_is_down(
    tmp_path: Path, redis_cache_url: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pbxlink.services.rate_limit")
    a = Site(tmp_path, CallbacksConfig(), redis_url=redis_cache_url)
    b = panel(a.config, a.service).test_client()  # a second web process on the same database and Redis
    n = iter(range(100))

    def post(client: Any, ip: str) -> int:
        body = {"number": f"+1 212 736 {next(n):04d}"}
        return int(client.post(URL, json=body, environ_base={"REMOTE_ADDR": ip}).status_code)

    assert [post(a.client, "203.0.113.9"), post(b, "203.0.113.9"), post(a.client, "203.0.113.9")] == [201] * 3
    assert [post(b, "203.0.113.9"), post(b, "203.0.113.9"), post(a.client, "203.0.113.9")] == [201, 201, 429]
    keys = redis.Redis.from_url(redis_cache_url).keys("*")
    assert keys and all(
        k.startswith(b"pbxlink:rate:ip:") or k.startswith(b"pbxlink:rate:number:") for k in keys
    )
    assert not any(b"203.0.113" in k or b"212736" in k for k in keys)  # hashed: no addresses, no numbers

    counters: RedisCounters = a.app.extensions[GATE_KEY].limiter.counters
    counters.retry_interval = 0.2
    redis_server.stop()
    try:
        assert [post(a.client, "192.0.2.1") for _ in range(6)] == [201] * 5 + [429]  # counted here meanwhile
        assert "rate limits: Redis at redis://127.0.0.1" in caplog.text
    finally:
        redis_server.start()
    time.sleep(0.3)
    assert post(a.client, "192.0.2.2") == 201
    assert "answers again" in caplog.text
    assert redis.Redis.from_url(redis_cache_url).keys("pbxlink:rate:ip:*")  # back to counting in Redis
    a.database.close()


def test_counters_in_memory_stay_bounded_under_a_spread_out_flood(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC))
    counters = MemoryCounters(max_keys=1000, clock=clock)
    limiter = RateLimiter(counters, clock=clock)
    limits = (Limit("ip", 5, 60.0), Limit("ip", 30, 86400.0))
    for i in range(5000):  # 5000 addresses, once each: two live counters apiece
        assert limiter.hit(f"192.0.2.{i}", limits).allowed
    assert len(counters) <= 1000 and "configure [redis] url" in caplog.text
    assert all(limiter.hit("192.0.2.4999", limits).allowed for _ in range(4))  # the newest counts are kept
    assert not limiter.hit("192.0.2.4999", limits).allowed
    assert caplog.text.count("forgetting the") == 1  # said once, not at every sweep
    clock.at += timedelta(days=1)  # every window over: the sweep empties it
    assert limiter.hit("192.0.2.1", limits).allowed and len(counters) == 2


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """`app` on a real waitress server on a free port (its base URL), stopped with every connection after."""
    server = make_server(app, "127.0.0.1", 0, threads=4)
    server.adj.asyncore_loop_timeout = 0.05  # the loop notices it was stopped at once, not after 1 s
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield urls_of(server)[0].rstrip("/")
    finally:
        server.task_dispatcher.shutdown(timeout=3)
        server.close()
        wasyncore.close_all(server._map)  # keep-alive connections too, or the loop serves them on
        thread.join(timeout=3)
        assert not thread.is_alive()


def test_a_real_server_refuses_a_chunked_megabyte(site: Site) -> None:
    with serving(site.app) as base:
        chunks = (b'{"number": "+14155550100", "name": "' + b"A" * 65536 for _ in range(16))
        big = requests.post(base + URL, data=chunks, headers={"Content-Type": JSON}, timeout=10)
        assert big.status_code == 413 and big.json()["error"].startswith("The request is too large")
        body = json.dumps({"number": "+1 415 555 0100"})
        ok = requests.post(base + URL, data=body, headers={"Content-Type": JSON, "Origin": SHOP}, timeout=10)
        assert ok.status_code == 201 and ok.headers["Access-Control-Allow-Origin"] == SHOP
    assert len(site.callbacks()) == 1


# --- the [callbacks] section ---------------------------------------------------------------------


def test_the_callbacks_section_is_read_and_normalised(tmp_path: Path) -> None:
    assert load(tmp_path, "").callbacks == CallbacksConfig()
    cfg = load(
        tmp_path,
        """
[callbacks]
allowed_origins = ["HTTPS://Shop.Example.com/", "https://shop.example.com:443", "http://[::1]:8080",
                   "https://bücher.example"]
rate_per_ip_minute = 2
rate_per_ip_day = 10
rate_per_number_day = 1
trusted_proxies = ["10.0.0.0/8", "127.0.0.1", "::1"]
""",
    )
    assert cfg.callbacks == CallbacksConfig(
        allowed_origins=("https://shop.example.com", "http://[::1]:8080", "https://xn--bcher-kva.example"),
        rate_per_ip_minute=2,
        rate_per_ip_day=10,
        rate_per_number_day=1,
        trusted_proxies=("10.0.0.0/8", "127.0.0.1/32", "::1/128"),
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('allowed_origins = ["*"]', '"*" would let any site on the web post the form'),
        ('allowed_origins = "https://shop.example.com"', "expected a list of sites"),
        ('allowed_origins = ["https://shop.example.com/contact"]', "(scheme and host, no path)"),
        ('allowed_origins = ["shop.example.com"]', "is not a site like"),
        ('allowed_origins = ["ftp://shop.example.com"]', "is not a site like"),
        ('allowed_origins = ["https://user@shop.example.com"]', "is not a site like"),
        ("rate_per_ip_minute = 0", "rate_per_ip_minute: expected a number of requests, 1-1000000, got 0"),
        ("rate_per_number_day = true", "rate_per_number_day: expected a number of requests"),
        ("rate_per_ip_day = 2.5", "rate_per_ip_day: expected a number of requests"),
        ('trusted_proxies = ["10.0.0.300"]', '"10.0.0.300" is not an address or network'),
        ('trusted_proxies = "10.0.0.1"', "trusted_proxies: expected a list"),
        ("rate_per_ip_minut = 3", 'unknown key "rate_per_ip_minut" (did you mean "rate_per_ip_minute"?)'),
    ],
)
def test_mistakes_in_the_callbacks_section_name_the_key(tmp_path: Path, body: str, expected: str) -> None:
    message = error(tmp_path, f"[callbacks]\n{body}\n")
    assert "[callbacks]" in message and expected in message and "\n" not in message
