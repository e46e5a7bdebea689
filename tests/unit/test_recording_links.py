"""Signed recording links: what they carry, how long they last, and that nothing forged passes."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from itsdangerous import URLSafeTimedSerializer

from pbxlink.domain.calls import CallRecord
from pbxlink.services.recording_links import SALT, RecordingLinkExpired, RecordingLinkInvalid, RecordingLinks

KEY = "k" * 64
DAY = 86400.0
T0 = 1_780_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def links(clock: Callable[[], float], key: str = KEY, days: float = 30) -> RecordingLinks:
    return RecordingLinks(key, "https://pbx.example.com/", days * DAY, clock=clock)


def call(recording: str | None = "/var/spool/asterisk/monitor/1700000001.1.wav") -> CallRecord:
    started = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    return CallRecord("main", "1700000001.1", "inbound", started, caller="+15550100007", recording=recording)


def token_of(url: str) -> str:
    assert url.startswith("https://pbx.example.com/r/")
    return url.removeprefix("https://pbx.example.com/r/")


def test_a_link_names_the_call_not_the_file_and_verifies_back_to_it() -> None:
    signer = links(Clock())
    url = signer.url(call())
    assert url is not None
    token = token_of(url)
    assert "/" not in token and "spool" not in token and ".wav" not in url
    assert signer.verify(token) == ("main", "1700000001.1")
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert payload == ["main", "1700000001.1"]  # readable, so it holds nothing secret


def test_an_unrecorded_call_gets_no_link() -> None:
    assert links(Clock()).url(call(recording=None)) is None
    assert links(Clock()).url(call(recording="")) is None


def test_links_expire_after_their_lifetime_and_say_which_call() -> None:
    clock = Clock()
    signer = links(clock, days=30)
    token = token_of(signer.url(call()) or "")
    clock.now = T0 + 30 * DAY  # the last second of its life
    assert signer.verify(token) == ("main", "1700000001.1")
    clock.now = T0 + 30 * DAY + 1
    with pytest.raises(RecordingLinkExpired) as exc:
        signer.verify(token)
    assert (exc.value.pbx, exc.value.call_id) == ("main", "1700000001.1")
    assert exc.value.signed_at == datetime.fromtimestamp(T0, UTC)
    assert links(clock, days=31).verify(token) == ("main", "1700000001.1")  # max_age is read when checked


def test_tampered_truncated_and_foreign_tokens_are_invalid_not_expired() -> None:
    clock = Clock()
    signer = links(clock)
    token = token_of(signer.url(call()) or "")
    payload, stamp, signature = token.split(".")
    other = base64.urlsafe_b64encode(json.dumps(["main", "1700000002.1"]).encode()).decode().rstrip("=")
    forged = [
        f"{other}.{stamp}.{signature}",  # another call under this call's signature
        f"{payload}.{stamp}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        token[:-5],
        f"{payload}.{stamp}",
        "",
        "../../etc/passwd",
        links(clock, key="x" * 64).token("main", "1700000001.1"),  # another site's key
        serializer(salt=None).dumps(["main", "1700000001.1"]),  # same key, not the links' salt
        signer.token("main", ""),
    ]
    clock.now = T0 + 365 * DAY  # long past expiry: a forgery is still "invalid", never "expired"
    for bad in forged:
        with pytest.raises(RecordingLinkInvalid):
            signer.verify(bad)


def serializer(salt: str | None) -> URLSafeTimedSerializer:
    """Signs as the links do (same key and digest), with whatever payload a test needs."""
    return URLSafeTimedSerializer(KEY, salt=salt, signer_kwargs={"digest_method": hashlib.sha256})


def test_a_token_signed_for_something_other_than_a_call_is_invalid() -> None:
    signer = links(time.time)
    raw = serializer(SALT)
    assert signer.verify(raw.dumps(["main", "1.1"])) == ("main", "1.1")  # the same signature scheme
    for payload in ({"pbx": "main"}, ["main"], ["main", 7], ["main", "1.1", "x"], "main:1.1"):
        with pytest.raises(RecordingLinkInvalid):
            signer.verify(raw.dumps(payload))
