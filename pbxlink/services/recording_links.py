"""Signed, expiring links to a call's recording, for CRM call logs.

A CRM user who clicks the link has no pbxlink login: the signature is the permission.
The token names only the call (PBX and call id), never a file path, so the web side
looks the file up in the call log and checks it lies in a recording folder. It is signed
with the web secret key (the worker that writes CRM logs and the panel that serves the
links share it) under a salt of its own, so a token can never pass for a session cookie
or a CSRF token, nor one of those for a token.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from pbxlink.domain.calls import CallRecord

SALT = "pbxlink.recording-link"


class RecordingLinkError(Exception):
    """A link that does not open a recording."""


class RecordingLinkInvalid(RecordingLinkError):
    """Not signed by this site: tampered, truncated, or signed with another key."""


class RecordingLinkExpired(RecordingLinkError):
    """Genuine, but older than the links' lifetime; names the call so the page can point at it."""

    def __init__(self, pbx: str, call_id: str, signed_at: datetime | None) -> None:
        super().__init__(f"the link to call {pbx}:{call_id} has expired")
        self.pbx = pbx
        self.call_id = call_id
        self.signed_at = signed_at


class _Signer(TimestampSigner):
    """A timestamp signer reading the time from `clock`, so expiry is testable without waiting."""

    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class RecordingLinks:
    """Makes `<public_url>/r/<token>` links and checks their tokens; valid for `max_age_s` seconds."""

    def __init__(
        self, secret_key: str, public_url: str, max_age_s: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.public_url = public_url.rstrip("/")
        self.max_age_s = max_age_s
        self._serializer = URLSafeTimedSerializer(
            secret_key,
            salt=SALT,
            signer=_Signer,
            signer_kwargs={"digest_method": hashlib.sha256, "clock": clock},
        )

    def token(self, pbx: str, call_id: str) -> str:
        return self._serializer.dumps([pbx, call_id])

    def url(self, rec: CallRecord) -> str | None:
        """The link to the call's recording; None when the call was not recorded."""
        if not rec.recording:
            return None
        return f"{self.public_url}/r/{self.token(rec.pbx, rec.call_id)}"

    def verify(self, token: str) -> tuple[str, str]:
        """The (pbx, call_id) the token was signed for.

        Raises RecordingLinkExpired for a genuine token past its lifetime (the signature is
        checked first, so a forged token is never reported as expired), RecordingLinkInvalid
        for anything else.
        """
        try:
            payload = self._serializer.loads(token, max_age=math.ceil(self.max_age_s))
        except SignatureExpired as exc:
            pbx, call_id = self._call_of(self._loaded(exc.payload))
            raise RecordingLinkExpired(pbx, call_id, exc.date_signed) from None
        except BadData:
            raise RecordingLinkInvalid("the link is not signed by this pbxlink") from None
        return self._call_of(payload)

    def _loaded(self, raw: Any) -> Any:
        try:
            return self._serializer.load_payload(raw)
        except BadData:
            return None

    @staticmethod
    def _call_of(payload: Any) -> tuple[str, str]:
        if (
            isinstance(payload, list)
            and len(payload) == 2
            and all(isinstance(part, str) and part for part in payload)
        ):
            return payload[0], payload[1]
        raise RecordingLinkInvalid("the link does not name a call")
