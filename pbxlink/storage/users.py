"""Panel users and API tokens: argon2 password hashes, tokens stored only as SHA-256.

Every check here runs in about the same time whether or not the user exists, so the
login form does not tell an attacker which usernames are real.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

import peewee as pw
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pbxlink.storage.database import writing
from pbxlink.storage.models import ApiToken, User, db_proxy, utcnow
from pbxlink.storage.recordings import audit

ROLES: tuple[str, ...] = ("agent", "supervisor", "admin")
MIN_PASSWORD_LENGTH = 8

_USERNAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
#: one extension, or several separated by commas ("201,202"): an agent answering on two phones
_EXTENSION = re.compile(r"(?=.{1,32}$)[A-Za-z0-9_*#+.-]+(?:,[A-Za-z0-9_*#+.-]+)*")

#: Module-wide so tests can swap in a cheap hasher; argon2's defaults are the production cost.
_hasher = PasswordHasher()
_dummy: dict[int, str] = {}


def create_user(username: str, password: str, role: str = "agent", extension: str | None = None) -> User:
    """Add a panel user; raises ValueError saying what is wrong (bad name, role, short password, taken)."""
    if not _USERNAME.fullmatch(username):
        raise ValueError("username must be 1-64 characters of letters, digits and _ . @ -")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    _check_extension(extension)
    _check_password(password)
    password_hash = _hasher.hash(password)
    try:
        with db_proxy.atomic():
            return User.create(  # type: ignore[no-any-return]
                username=username, password_hash=password_hash, role=role, extension=extension
            )
    except pw.IntegrityError:
        raise ValueError(f"user {username!r} already exists") from None


def set_password(user: User, password: str) -> None:
    """Replace the password; sessions tied to the old hash stop working (see web.auth)."""
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    user.save(only=[User.password_hash])


def authenticate(username: str, password: str) -> User | None:
    """The active user with this password, or None; upgrades the hash when argon2's parameters changed."""
    user = User.get_or_none(User.username == username)
    if user is None:
        _verify(_dummy_hash(), password)
        return None
    if not _verify(user.password_hash, password) or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        user.save(only=[User.password_hash])
    return user  # type: ignore[no-any-return]


def create_token(user: User, name: str) -> str:
    """A new bearer token for `user`; the plain value is returned once and never stored."""
    if not 1 <= len(name) <= 64:
        raise ValueError("token name must be 1-64 characters")
    token = secrets.token_urlsafe(32)
    ApiToken.create(user=user, name=name, token_sha256=_sha256(token))
    return token


def user_for_token(token: str) -> User | None:
    """The active user owning `token`, or None; records when the token was last used."""
    digest = _sha256(token)
    row = (
        ApiToken.select(ApiToken, User)
        .join(User)
        .where(ApiToken.token_sha256 == digest, User.active == True)  # noqa: E712
        .first()
    )
    if row is None:
        return None
    ApiToken.update(last_used_at=utcnow()).where(ApiToken.token_sha256 == digest).execute()
    return row.user  # type: ignore[no-any-return]


def list_users() -> list[User]:
    return list(User.select().order_by(User.username))


def update_user(
    user: User, by: str, *, role: str | None = None, extension: str | None = "", active: bool | None = None
) -> dict[str, Any]:
    """Change role, extension (None clears it, "" leaves it) or the active flag; audited as `by`.

    Raises ValueError when the change is invalid or would leave no active admin (nobody could
    manage the users any more). Returns the fields that changed, as {field: [before, after]}.
    """
    if role is not None and role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if extension != "":
        _check_extension(extension)
    wanted = {"role": role, "active": active, **({"extension": extension} if extension != "" else {})}
    with writing():
        fresh = User.get_by_id(user.id)
        changes = {k: [getattr(fresh, k), v] for k, v in wanted.items() if v is not None or k == "extension"}
        changes = {k: ba for k, ba in changes.items() if ba[0] != ba[1]}
        if not changes:
            return {}
        stays_admin = (role or fresh.role) == "admin" and (fresh.active if active is None else active)
        if fresh.is_admin and fresh.active and not stays_admin and _other_active_admins(fresh) == 0:
            raise ValueError(
                f"{fresh.username} is the last active admin: make another user admin first, "
                "or nobody could manage the users any more"
            )
        User.update({k: after for k, (_, after) in changes.items()}).where(User.id == fresh.id).execute()
        audit(
            by,
            "user.update",
            f"user:{fresh.username}",
            {k: {"before": b, "after": a} for k, (b, a) in changes.items()},
        )
    for name, (_, after) in changes.items():
        setattr(user, name, after)
    return changes


def reset_password(user: User, by: str, password: str | None = None) -> str:
    """Set `password` (or a generated one, returned to be shown once); every session of the user ends."""
    password = password if password is not None else generate_password()
    set_password(user, password)
    audit(by, "user.password", f"user:{user.username}")
    return password


def generate_password() -> str:
    """16 URL-safe characters (96 bits): easy to paste, too many to guess."""
    return secrets.token_urlsafe(12)


def log_out_everywhere(user: User, by: str) -> None:
    """End every panel session of `user` (the session signature includes session_version); tokens stay."""
    User.update(session_version=User.session_version + 1).where(User.id == user.id).execute()
    user.session_version = User.get_by_id(user.id).session_version
    audit(by, "user.logout_all", f"user:{user.username}")


def list_tokens(user: User | None = None) -> list[ApiToken]:
    """Tokens (name, created, last used; never the value), of `user` or of everyone, newest first."""
    query = ApiToken.select(ApiToken, User).join(User)
    if user is not None:
        query = query.where(ApiToken.user == user)
    return list(query.order_by(ApiToken.created_at.desc(), ApiToken.id.desc()))


def revoke_token(token_id: int, by: str, owner: User | None = None) -> ApiToken:
    """Delete a token, any (an admin, the CLI) or only one of `owner`'s; it stops working at once.

    Raises LookupError when there is no such token (the same answer for another user's token,
    so ids do not tell who has tokens).
    """
    query = ApiToken.select(ApiToken, User).join(User).where(ApiToken.id == token_id)
    token = (query if owner is None else query.where(ApiToken.user == owner)).first()
    if token is None:
        raise LookupError(f"no API token #{token_id}")
    token.delete_instance()
    audit(by, "token.revoke", f"user:{token.user.username}", {"token": token_id, "name": token.name})
    return token  # type: ignore[no-any-return]


def _other_active_admins(user: User) -> int:
    return int(User.select().where(User.role == "admin", User.active == True, User.id != user.id).count())  # noqa: E712


def _check_extension(extension: str | None) -> None:
    if extension is not None and not _EXTENSION.fullmatch(extension):
        raise ValueError(
            "extension must be 1-32 characters of letters, digits and _ * # + . - "
            '(several extensions separated by commas: "201,202")'
        )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _dummy_hash() -> str:
    """A hash made with the current parameters, so an unknown user costs as much as a known one."""
    key = id(_hasher)
    if key not in _dummy:
        _dummy[key] = _hasher.hash(secrets.token_hex(16))
    return _dummy[key]


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
