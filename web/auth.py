"""Logging in and out of the panel (flask-login), and who may see which call.

Failed logins are counted per client address; after too many the form answers 429
without checking the password, so guessing is slow even for a known username.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from pbxlink.storage.models import User
from pbxlink.storage.users import authenticate

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

LIMITER_KEY = "pbxlink.login_limiter"
#: failed logins per account, from any address: slows a guesser spread over many addresses, without
#: letting one address lock a user out (that takes this many failures within the window)
ACCOUNT_LIMITER_KEY = "pbxlink.account_login_limiter"
BAD_LOGIN = "Wrong username or password."


class PanelUser(UserMixin):  # type: ignore[misc]
    """A `User` as flask-login and the views see it."""

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        # The fingerprint of the password hash ends every session when the password changes.
        return f"{self.user.get_id()}.{_fingerprint(self.user)}"

    @property
    def username(self) -> str:
        return str(self.user.username)

    @property
    def role(self) -> str:
        return str(self.user.role)

    @property
    def extension(self) -> str | None:
        return self.user.extension  # type: ignore[no-any-return]

    @property
    def extensions(self) -> tuple[str, ...]:
        """The extensions the user answers on: `User.extension` may list several ("201,202")."""
        return tuple(dict.fromkeys(e for e in (p.strip() for p in (self.extension or "").split(",")) if e))

    @property
    def sees_all(self) -> bool:
        """Supervisors and admins see every call; an agent only the calls they talked on."""
        return self.role in ("supervisor", "admin")

    def can_see(self, call: Mapping[str, Any]) -> bool:
        if self.sees_all:
            return True
        talked = {call.get("agent"), *(call.get("agents") or ())}
        return any(ext in talked for ext in self.extensions)


class LoginLimiter:
    """Failed logins per client address in a sliding window; thread-safe, in memory (one process)."""

    def __init__(
        self, max_failures: int = 10, window: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, addr: str) -> float:
        """Seconds until `addr` may try again; 0 when it may try now."""
        now = self._clock()
        with self._lock:
            stamps = self._failures.get(addr)
            if stamps is None:
                return 0.0
            while stamps and stamps[0] <= now - self.window:
                stamps.popleft()
            if not stamps:
                del self._failures[addr]
                return 0.0
            if len(stamps) < self.max_failures:
                return 0.0
            return stamps[-self.max_failures] + self.window - now

    def failed(self, addr: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) > 10_000:  # many addresses: drop the ones whose window has passed
                self._failures = {a: s for a, s in self._failures.items() if s and s[-1] > now - self.window}
            self._failures.setdefault(addr, deque(maxlen=self.max_failures)).append(now)


def init_app(app: Flask) -> None:
    manager = LoginManager(app)
    manager.user_loader(_load_user)
    manager.unauthorized_handler(_unauthorized)
    app.extensions[LIMITER_KEY] = LoginLimiter()
    app.extensions[ACCOUNT_LIMITER_KEY] = LoginLimiter(max_failures=50, window=900.0)


def wants_json() -> bool:
    """API and event-stream clients get JSON errors, people get pages."""
    return request.path.startswith("/api/") or request.path in ("/calls/stream", "/pops/stream")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    target = safe_next(request.args.get("next")) or url_for("calls.index")
    if request.method == "GET":
        return redirect(target) if current_user.is_authenticated else render_template("auth/login.html")

    addr = request.remote_addr or "unknown"
    limiter: LoginLimiter = current_app.extensions[LIMITER_KEY]
    username = request.form.get("username", "")
    account: LoginLimiter = current_app.extensions[ACCOUNT_LIMITER_KEY]
    account_key = username.strip().lower()[:64]
    for wait, who in (
        (limiter.retry_after(addr), "from your address"),
        (account.retry_after(account_key), ""),
    ):
        if wait > 0:
            log.warning("login refused: too many failed logins %s", who or f"for user {account_key!r}")
            error = f"Too many failed logins {who or 'for this user'}; try again in a few minutes."
            resp = make_response(render_template("auth/login.html", username=username, error=error), 429)
            resp.headers["Retry-After"] = str(math.ceil(wait))
            return resp

    user = authenticate(username, request.form.get("password", ""))
    if user is None:
        limiter.failed(addr)
        account.failed(account_key)
        log.info("login failed from %s", addr)
        return render_template("auth/login.html", username=username, error=BAD_LOGIN)
    session.clear()  # a fresh session (and CSRF token) for the logged-in user
    session.permanent = True  # expires PERMANENT_SESSION_LIFETIME after the last request
    login_user(PanelUser(user))
    log.info("user %s logged in from %s", user.username, addr)
    return redirect(target)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (no open redirect, incl. `//host` and `/\\host`)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def _fingerprint(user: User) -> str:
    key = str(current_app.secret_key).encode()
    signed = f"{user.password_hash}|{user.session_version}".encode()  # a new password or "log out everywhere"
    return hmac.new(key, signed, hashlib.sha256).hexdigest()[:20]


def _load_user(user_id: str) -> PanelUser | None:
    raw_id, _, fingerprint = user_id.partition(".")
    if not raw_id.isdigit():
        return None
    user = User.get_or_none(id=int(raw_id), active=True)
    if user is None or not hmac.compare_digest(fingerprint, _fingerprint(user)):
        return None
    return PanelUser(user)


def _unauthorized() -> ResponseReturnValue:
    if wants_json():
        return jsonify(error="login required"), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def admin_required(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Logged in as an admin, else the login page (or 401), or 403 for other roles."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if not current_user.is_authenticated:
            return _unauthorized()
        if current_user.role != "admin":
            abort(403, "this page is for admins")
        return view(*args, **kwargs)

    return wrapped
