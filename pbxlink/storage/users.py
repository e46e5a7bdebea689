"""Panel users and API tokens: argon2 password hashes, tokens stored only as SHA-256.

Every check here runs in about the same time whether or not the user exists, so the
login form does not tell an attacker which usernames are real.
"""

from __future__ import annotations

import hashlib
import re
import secrets

import peewee as pw
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pbxlink.storage.models import ApiToken, User, db_proxy, utcnow

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
    if extension is not None and not _EXTENSION.fullmatch(extension):
        raise ValueError(
            "extension must be 1-32 characters of letters, digits and _ * # + . - "
            '(several extensions separated by commas: "201,202")'
        )
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
