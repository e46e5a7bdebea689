"""My account (every logged-in user): change my password, my API tokens, log out everywhere.

A new password or token is shown once: the POST keeps it in the session and redirects, the
next page takes it out again, so a reload no longer shows it (and it is never stored
anywhere else; the database keeps only its hash).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user

from pbxlink.storage.recordings import audit
from pbxlink.storage.users import (
    authenticate,
    create_token,
    list_tokens,
    log_out_everywhere,
    reset_password,
    revoke_token,
)

from .auth import LIMITER_KEY, LoginLimiter, PanelUser

bp = Blueprint("account", __name__)

SHOWN_KEY = "pbxlink.shown_once"


def show_once(label: str, value: str) -> None:
    """Keep a secret for the next page only (see the module's docstring)."""
    session[SHOWN_KEY] = {"label": label, "value": value}


def take_shown() -> dict[str, str] | None:
    """The secret to show on this page, gone from the session from now on."""
    shown: dict[str, str] | None = session.pop(SHOWN_KEY, None)
    return shown


@bp.get("/account")
@login_required
def index() -> ResponseReturnValue:
    return _page()


@bp.post("/account/password")
@login_required
def change_password() -> ResponseReturnValue:
    me = _me()
    new, again = request.form.get("new", ""), request.form.get("again", "")
    limiter: LoginLimiter = current_app.extensions[LIMITER_KEY]  # a stolen session must not guess either
    addr = request.remote_addr or "unknown"
    if limiter.retry_after(addr) > 0:
        return _refused("password_error", "Too many wrong passwords from your address; try again later.", 429)
    if authenticate(me.username, request.form.get("current", "")) is None:
        limiter.failed(addr)
        return _refused("password_error", "The current password is wrong; nothing was changed.")
    if new != again:
        return _refused("password_error", "The two new passwords differ; nothing was changed.")
    try:
        reset_password(me, me.username, new)
    except ValueError as exc:
        return _refused("password_error", f"The new {exc}.")
    login_user(PanelUser(me))  # this session signs the new password; the others no longer match
    flash("Your password is changed. Your other sessions have ended; this one stays.")
    return redirect(url_for(".index"))


@bp.post("/account/tokens")
@login_required
def add_token() -> ResponseReturnValue:
    me = _me()
    name = request.form.get("name", "").strip()
    try:
        token = create_token(me, name)
    except ValueError as exc:
        return _refused("token_error", f"The {exc}.")
    audit(me.username, "token.add", f"user:{me.username}", {"name": name})
    show_once(f"API token “{name}”", token)
    return redirect(url_for(".index"))


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke(token_id: int) -> ResponseReturnValue:
    me = _me()
    try:
        token = revoke_token(token_id, me.username, owner=me)
    except LookupError:
        flash("That token no longer exists: nothing was revoked.", "error")
    else:
        flash(f"Token “{token.name}” is revoked: it stopped working at once.")
    return redirect(url_for(".index"))


@bp.post("/account/logout-everywhere")
@login_required
def logout_everywhere() -> ResponseReturnValue:
    log_out_everywhere(_me(), current_user.username)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


def _me() -> Any:
    return current_user.user


def _refused(field: str, message: str, status: int = 400) -> ResponseReturnValue:
    return _page(status, **{field: message})


def _page(status: int = 200, **errors: str) -> ResponseReturnValue:
    body = render_template("account/index.html", tokens=list_tokens(_me()), shown=take_shown(), **errors)
    return body, status, {"Cache-Control": "no-store"}
