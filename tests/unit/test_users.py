"""Panel users and API tokens against a real SQLite database."""

from __future__ import annotations

import hashlib

import pytest
from argon2 import PasswordHasher

from pbxlink.storage import users
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import ApiToken, User, db_proxy
from pbxlink.storage.users import authenticate, create_token, create_user, set_password, user_for_token

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class CountingHasher(PasswordHasher):
    """A cheap hasher that counts verifications, to see the dummy check for unknown users."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture(autouse=True)
def db(tmp_path, monkeypatch):
    monkeypatch.setattr(users, "_hasher", CHEAP)
    database = connect(f"sqlite:///{tmp_path}/pbxlink.db")
    migrate(database)
    yield database
    database.close()


def test_created_user_logs_in_with_their_password_only() -> None:
    create_user("alice", "correct horse", role="supervisor", extension="201")
    assert create_user("ann", "correct horse", extension="201,202").extension == "201,202"
    user = authenticate("alice", "correct horse")
    assert user is not None
    assert (user.username, user.role, user.extension) == ("alice", "supervisor", "201")
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash
    assert authenticate("alice", "wrong horse") is None
    assert authenticate("ALICE", "correct horse") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"username": "bad name"}, "username"),
        ({"username": ""}, "username"),
        ({"username": "x" * 65}, "username"),
        ({"role": "root"}, "role must be one of agent, supervisor, admin"),
        ({"password": "short"}, "at least 8 characters"),
        ({"extension": "20 1"}, "extension"),
        ({"extension": "201,,202"}, "extension"),
        ({"extension": "201, 202"}, "extension"),
        ({"extension": "201,202," + "2" * 30}, "extension"),
    ],
)
def test_invalid_users_are_refused_with_a_clear_message(kwargs, message) -> None:
    args = {"username": "bob", "password": "long enough", **kwargs}
    with pytest.raises(ValueError, match=message):
        create_user(**args)
    assert User.select().count() == 0


def test_a_taken_username_is_refused() -> None:
    create_user("bob@example.com", "long enough")
    with pytest.raises(ValueError, match=r"user 'bob@example\.com' already exists"):
        create_user("bob@example.com", "other password")


def test_unknown_and_inactive_users_cost_a_verification_and_get_nothing(monkeypatch) -> None:
    hasher = CountingHasher()
    monkeypatch.setattr(users, "_hasher", hasher)
    create_user("carol", "long enough")
    User.update(active=False).where(User.username == "carol").execute()

    assert authenticate("nobody", "long enough") is None
    assert hasher.verified == 1  # against the dummy hash, as long as a real one
    assert authenticate("carol", "long enough") is None
    assert hasher.verified == 2


def test_a_hash_made_with_old_parameters_is_upgraded_on_login(monkeypatch) -> None:
    create_user("dave", "long enough")
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    monkeypatch.setattr(users, "_hasher", stronger)

    assert authenticate("dave", "long enough") is not None
    stored = User.get(User.username == "dave").password_hash
    assert not stronger.check_needs_rehash(stored)
    assert authenticate("dave", "long enough") is not None


def test_set_password_replaces_the_old_one() -> None:
    user = create_user("erin", "first password")
    with pytest.raises(ValueError, match="at least 8"):
        set_password(user, "short")
    set_password(user, "second password")
    assert authenticate("erin", "first password") is None
    assert authenticate("erin", "second password") is not None


def test_tokens_are_stored_only_as_sha256_and_identify_their_user() -> None:
    user = create_user("frank", "long enough")
    token = create_token(user, "crm export")

    row = ApiToken.get()
    assert len(token) >= 43
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert row.last_used_at is None
    dumped = db_proxy.execute_sql("SELECT * FROM api_token").fetchall()
    assert token not in repr(dumped)

    found = user_for_token(token)
    assert found is not None and found.username == "frank"
    assert ApiToken.get().last_used_at is not None
    assert user_for_token(token + "x") is None
    assert user_for_token("") is None


def test_a_token_of_a_deactivated_user_stops_working() -> None:
    user = create_user("grace", "long enough")
    token = create_token(user, "script")
    User.update(active=False).where(User.id == user.id).execute()
    assert user_for_token(token) is None


def test_each_token_is_new() -> None:
    user = create_user("heidi", "long enough")
    assert create_token(user, "a") != create_token(user, "a")
    with pytest.raises(ValueError, match="token name"):
        create_token(user, "")
