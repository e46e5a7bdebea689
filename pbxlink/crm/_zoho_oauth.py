"""Zoho access tokens from a refresh token (<accounts>/oauth/v2/token, grant_type=refresh_token).

A token is kept until a minute before its `expires_in` and shared by every thread, so
pbxlink asks Zoho Accounts about once an hour: Accounts allows only a few tokens per
refresh token every ten minutes. Only a 401 INVALID_TOKEN (expired early, revoked) makes
the API caller drop the token and fetch a new one, once; a scope mismatch never does,
as a new token would carry the same scopes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pbxlink.crm.http import HttpClient
from pbxlink.domain.crm import CrmAuthError, CrmRequestError, CrmUnavailable

EARLY = 60.0  # seconds before expiry a token is no longer used
BUSY_WAIT = 60.0  # what to tell the outbox when Accounts says "too many requests"


class ZohoAuth:
    def __init__(
        self,
        http: HttpClient,
        accounts_url: str,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.accounts_url = accounts_url
        self.form = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }
        self.clock = clock
        self._secrets = http.secrets
        self._token: str | None = None
        self._api_domain = ""
        self._until = 0.0
        self._lock = threading.Lock()

    def token(self) -> tuple[str, str]:
        """A valid access token and the API domain (https://www.zohoapis.<dc>) Zoho named with it."""
        with self._lock:
            if self._token is None or self.clock() >= self._until:
                self._fetch()
            assert self._token is not None
            return self._token, self._api_domain

    def drop(self, refused: str) -> None:
        """Forget `refused` (Zoho said INVALID_TOKEN), unless another thread has replaced it already."""
        with self._lock:
            if refused == self._token:
                self._token = None

    def _fetch(self) -> None:
        url = f"{self.accounts_url}/oauth/v2/token"
        try:
            body: Any = self.http.json("POST", url, data=self.form)
        except CrmRequestError as exc:  # Accounts answers 400 "Access Denied" when asked too often
            if "too many requests" in str(exc).lower():
                raise CrmUnavailable(f"{exc} (pbxlink tries again later)", retry_after=BUSY_WAIT) from None
            raise
        body = body if isinstance(body, dict) else {}
        error = str(body.get("error") or "")
        if error or not body.get("access_token"):
            raise CrmAuthError(
                f"{self.http.crm}: Zoho Accounts refused a new access token: {_explain(error)}"
            )
        domain = str(body.get("api_domain") or "").rstrip("/")
        if not domain.startswith(("https://", "http://")):
            raise CrmRequestError(f"{self.http.crm}: Zoho Accounts named no api_domain with the token")
        self._token, self._api_domain = str(body["access_token"]), domain
        self._until = self.clock() + float(body.get("expires_in") or 3600) - EARLY
        self.http.secrets = (*self._secrets, self._token)  # redacted like the configured secrets


def _explain(error: str) -> str:
    if error == "invalid_code":
        return (
            "invalid_code: the refresh_token is revoked or was made for another data centre than "
            "accounts_url; make a new one"
        )
    if error == "invalid_client":
        return (
            "invalid_client: check client_id and client_secret, and that accounts_url is your data centre's"
        )
    return error or "no access_token in the answer"
