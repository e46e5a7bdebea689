"""The HTTP base every connector stands on, against a local server: retries, Retry-After, errors, secrets."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pbxlink.crm.http import HttpClient
from pbxlink.domain.crm import CrmAuthError, CrmRequestError, CrmUnavailable
from tests.crm.fake import FakeCrm, Reply

SECRET = "s3cr3t-token-value"


@pytest.fixture
def crm() -> Iterator[FakeCrm]:
    with FakeCrm() as fake:
        fake.route("GET", r"/v1/things", lambda req, m: Reply(200, {"things": [1, 2]}))
        fake.route("GET", rf"/rest/{SECRET}/echo", lambda req, m: Reply(200, {"ok": True}))
        yield fake


def client(crm: FakeCrm, slept: list[float] | None = None, **kw: object) -> HttpClient:
    sleeps = slept if slept is not None else []
    return HttpClient(
        "acme",
        crm.url,
        timeout=kw.pop("timeout", 2.0),
        secrets=[SECRET],
        sleep=sleeps.append,
        **kw,  # type: ignore[arg-type]
    )


def test_json_and_pooled_session(crm: FakeCrm) -> None:
    http = client(crm, headers={"Authorization": f"Bearer {SECRET}"})
    assert http.json("GET", "/v1/things") == {"things": [1, 2]}
    assert http.json("GET", "v1/things") == {"things": [1, 2]}
    first = crm.calls("GET", "/v1/things")[0]
    assert first.headers["Authorization"] == f"Bearer {SECRET}"
    assert first.headers["User-Agent"].startswith("pbxlink/")


def test_server_errors_are_retried_with_backoff_then_reported(crm: FakeCrm) -> None:
    slept: list[float] = []
    crm.fail_next(Reply(502, {"message": "bad gateway"}), times=2)
    assert client(crm, slept).json("GET", "/v1/things") == {"things": [1, 2]}
    assert len(slept) == 2 and all(0 <= s <= 1.0 for s in slept)
    crm.fail_next(Reply(503, "down for maintenance"), times=3)
    with pytest.raises(CrmUnavailable) as exc:
        client(crm).json("GET", "/v1/things")
    assert str(exc.value) == "acme: GET /v1/things: 503 Service Unavailable: down for maintenance"
    assert len(crm.calls("GET", "/v1/things")) == 3 + 3  # each call: the first attempt and 2 retries


def test_short_retry_after_is_honoured(crm: FakeCrm) -> None:
    slept: list[float] = []
    crm.fail_next(Reply(429, {"message": "slow down"}, {"Retry-After": "2"}))
    assert client(crm, slept).json("GET", "/v1/things") == {"things": [1, 2]}
    assert slept == [2.0]


def test_long_retry_after_fails_at_once_with_the_wait(crm: FakeCrm) -> None:
    slept: list[float] = []
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    crm.fail_next(Reply(429, {"message": "daily limit"}, {"Retry-After": later}))
    with pytest.raises(CrmUnavailable) as exc:
        client(crm, slept).json("GET", "/v1/things")
    assert slept == [] and exc.value.retry_after is not None and 3500 < exc.value.retry_after <= 3600
    assert exc.value.retryable


def test_auth_errors_are_not_retried_and_say_what_to_check(crm: FakeCrm) -> None:
    crm.fail_next(Reply(401, {"status": "error", "message": "Authentication credentials not found"}))
    with pytest.raises(CrmAuthError) as exc:
        client(crm).json("GET", "/v1/things")
    assert "401" in str(exc.value) and "check the API key" in str(exc.value)
    assert not exc.value.retryable and len(crm.calls()) == 1


def test_other_client_errors_carry_the_crms_words(crm: FakeCrm) -> None:
    with pytest.raises(CrmRequestError) as exc:
        client(crm).json("GET", "/v1/nothing")
    assert str(exc.value) == "acme: GET /v1/nothing: 404 Not Found: no route for GET /v1/nothing"
    crm.route("GET", r"/v1/html", lambda req, m: Reply(200, "<html>oops</html>"))
    with pytest.raises(CrmRequestError, match="not JSON"):
        client(crm).json("GET", "/v1/html")


def test_a_crm_that_never_answers_fails_within_the_timeout(crm: FakeCrm) -> None:
    crm.fail_next(Reply(200, {}, delay=3.0), times=3)
    started = time.monotonic()
    with pytest.raises(CrmUnavailable, match=r"no answer within 0\.3 s"):
        client(crm, timeout=0.3, retries=1).json("GET", "/v1/things")
    assert time.monotonic() - started < 2.0


def test_unreachable_crm(crm: FakeCrm) -> None:
    http = HttpClient("acme", "http://127.0.0.1:9", timeout=0.5, retries=0)
    with pytest.raises(CrmUnavailable, match="acme: GET /v1/things: cannot connect"):
        http.json("GET", "/v1/things")


def test_secrets_in_the_url_never_reach_messages(crm: FakeCrm) -> None:
    http = client(crm, retries=0)
    assert http.json("GET", f"/rest/{SECRET}/echo") == {"ok": True}
    crm.fail_next(Reply(500, {"error": f"bad token {SECRET}"}))
    with pytest.raises(CrmUnavailable) as exc:
        http.json("GET", f"/rest/{SECRET}/echo")
    assert SECRET not in str(exc.value) and "/rest/***/echo" in str(exc.value)
