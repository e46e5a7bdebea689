"""The users page (admins): add users, change their role and extensions, disable and enable them,
reset a password, end every session of a user. Every change is in the audit log (by the storage).

A generated password is shown once, like a new API token (see web.account).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from pbxlink.storage.models import User
from pbxlink.storage.recordings import audit
from pbxlink.storage.users import (
    ROLES,
    create_user,
    generate_password,
    list_tokens,
    list_users,
    log_out_everywhere,
    reset_password,
    revoke_token,
    update_user,
)

from .account import show_once, take_shown
from .auth import admin_required

bp = Blueprint("users", __name__)


@bp.get("/users")
@admin_required
def index() -> ResponseReturnValue:
    return _list_page()


@bp.post("/users")
@admin_required
def add() -> ResponseReturnValue:
    form = request.form
    name, role = form.get("username", "").strip(), form.get("role", "agent")
    extension = form.get("extension", "").strip() or None
    typed = form.get("password_choice") == "typed"
    password = form.get("password", "") if typed else generate_password()
    if typed and password != form.get("again", ""):
        return _list_page("The two passwords differ; nobody was added.", form)
    try:
        create_user(name, password, role=role, extension=extension)
    except ValueError as exc:
        return _list_page(f"Not added: {exc}.", form)
    audit(
        current_user.username, "user.add", f"user:{name}", {"after": {"role": role, "extension": extension}}
    )
    if not typed:
        show_once(f"Password of {name}", password)
    flash(f"{name} is added as {role}.")
    return redirect(url_for(".index"))


@bp.get("/users/<int:user_id>")
@admin_required
def edit(user_id: int) -> ResponseReturnValue:
    return _edit_page(_user(user_id))


@bp.post("/users/<int:user_id>")
@admin_required
def save(user_id: int) -> ResponseReturnValue:
    user = _user(user_id)
    try:
        changed = update_user(
            user,
            current_user.username,
            role=request.form.get("role", user.role),
            extension=request.form.get("extension", "").strip() or None,
        )
    except ValueError as exc:
        return _edit_page(user, f"Not saved: {exc}.", request.form)
    flash(f"{user.username}: {', '.join(changed) + ' saved' if changed else 'nothing changed'}.")
    return redirect(url_for(".edit", user_id=user_id))


@bp.post("/users/<int:user_id>/active")
@admin_required
def set_active(user_id: int) -> ResponseReturnValue:
    user = _user(user_id)
    active = request.form.get("active") == "1"
    if not active and user.id == current_user.user.id:
        return _edit_page(user, "You cannot disable yourself: ask another admin.")
    try:
        update_user(user, current_user.username, active=active)
    except ValueError as exc:
        return _edit_page(user, f"Not disabled: {exc}.")
    flash(
        f"{user.username} is enabled: they can log in again."
        if active
        else f"{user.username} is disabled: their sessions and API tokens stopped working."
    )
    return redirect(url_for(".edit", user_id=user_id))


@bp.post("/users/<int:user_id>/password")
@admin_required
def new_password(user_id: int) -> ResponseReturnValue:
    user = _user(user_id)
    show_once(f"New password of {user.username}", reset_password(user, current_user.username))
    flash(f"{user.username} has a new password; their sessions have ended.")
    return redirect(url_for(".edit", user_id=user_id))


@bp.post("/users/<int:user_id>/logout")
@admin_required
def logout_everywhere(user_id: int) -> ResponseReturnValue:
    user = _user(user_id)
    log_out_everywhere(user, current_user.username)
    flash(f"Every session of {user.username} has ended; they must log in again.")
    return redirect(url_for(".edit", user_id=user_id))


@bp.post("/users/<int:user_id>/tokens/<int:token_id>/revoke")
@admin_required
def revoke(user_id: int, token_id: int) -> ResponseReturnValue:
    user = _user(user_id)
    try:
        token = revoke_token(token_id, current_user.username, owner=user)
    except LookupError:
        flash("That token no longer exists: nothing was revoked.", "error")
    else:
        flash(f"Token “{token.name}” of {user.username} is revoked.")
    return redirect(url_for(".edit", user_id=user_id))


def _user(user_id: int) -> User:
    user = User.get_or_none(User.id == user_id)
    if user is None:
        abort(404)
    return user  # type: ignore[no-any-return]


def _list_page(error: str | None = None, form: Any = None) -> ResponseReturnValue:
    body = render_template(
        "users/index.html", users=list_users(), roles=ROLES, shown=take_shown(), error=error, form=form or {}
    )
    return body, 400 if error else 200, {"Cache-Control": "no-store"}


def _edit_page(user: User, error: str | None = None, form: Any = None) -> ResponseReturnValue:
    body = render_template(
        "users/edit.html",
        user=user,
        roles=ROLES,
        tokens=list_tokens(user),
        shown=take_shown(),
        error=error,
        form=form or {},
        me=user.id == current_user.user.id,
    )
    return body, 400 if error else 200, {"Cache-Control": "no-store"}
