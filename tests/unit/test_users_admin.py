"""Managing users and tokens in the storage (roles, the last active admin, tokens, log out everywhere),
against a real SQLite database; every change lands in the audit log with its before and after."""

from __future__ import annotations

import json

import pytest

from pbxlink.storage.models import ApiToken, AuditEntry, User
from pbxlink.storage.users import (
    authenticate,
    create_token,
    create_user,
    list_tokens,
    list_users,
    log_out_everywhere,
    reset_password,
    revoke_token,
    update_user,
    user_for_token,
)
from tests.unit.test_users import db  # noqa: F401  (the fixture: a migrated SQLite database, a cheap hasher)


def audits(action: str) -> list[tuple[str, str, dict]]:
    rows = AuditEntry.select().where(AuditEntry.action == action).order_by(AuditEntry.id)
    return [(a.user, a.target, json.loads(a.detail) if a.detail else None) for a in rows]


def test_role_extension_and_active_change_with_before_and_after_in_the_audit_log() -> None:
    ann = create_user("ann", "long enough", extension="201")
    changed = update_user(ann, "boss", role="supervisor", extension="201,202")
    assert changed == {"role": ["agent", "supervisor"], "extension": ["201", "201,202"]}
    assert (User.get_by_id(ann.id).role, User.get_by_id(ann.id).extension) == ("supervisor", "201,202")
    assert update_user(ann, "boss", role="supervisor") == {}  # nothing changed, nothing audited
    update_user(ann, "boss", extension=None)
    assert User.get_by_id(ann.id).extension is None
    assert audits("user.update") == [
        (
            "boss",
            "user:ann",
            {
                "role": {"before": "agent", "after": "supervisor"},
                "extension": {"before": "201", "after": "201,202"},
            },
        ),
        ("boss", "user:ann", {"extension": {"before": "201,202", "after": None}}),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "root"}, "role must be one of"),
        ({"extension": "20 1"}, "extension"),
        ({"extension": "1,,2"}, "ext"),
    ],
)
def test_invalid_changes_are_refused_and_change_nothing(kwargs, message) -> None:
    ann = create_user("ann", "long enough", extension="201")
    with pytest.raises(ValueError, match=message):
        update_user(ann, "boss", **kwargs)
    assert (User.get_by_id(ann.id).role, User.get_by_id(ann.id).extension) == ("agent", "201")
    assert audits("user.update") == []


def test_the_last_active_admin_can_be_neither_demoted_nor_disabled() -> None:
    root = create_user("root", "long enough", role="admin")
    for change in ({"role": "agent"}, {"active": False}):
        with pytest.raises(ValueError, match="root is the last active admin"):
            update_user(root, "root", **change)
    assert User.get_by_id(root.id).is_admin and User.get_by_id(root.id).active
    # A disabled admin does not count; a second active one does.
    other = create_user("other", "long enough", role="admin")
    update_user(other, "root", active=False)
    with pytest.raises(ValueError, match="last active admin"):
        update_user(root, "root", role="supervisor")
    update_user(other, "root", active=True)
    update_user(root, "other", role="supervisor")
    assert [(u.username, u.role) for u in list_users()] == [("other", "admin"), ("root", "supervisor")]


def test_a_disabled_user_can_neither_log_in_nor_use_a_token_until_enabled() -> None:
    ann = create_user("ann", "long enough")
    token = create_token(ann, "script")
    update_user(ann, "boss", active=False)
    assert authenticate("ann", "long enough") is None and user_for_token(token) is None
    update_user(ann, "boss", active=True)
    assert authenticate("ann", "long enough") is not None and user_for_token(token) is not None
    assert [d for *_, d in audits("user.update")] == [
        {"active": {"before": True, "after": False}},
        {"active": {"before": False, "after": True}},
    ]


def test_a_reset_password_is_generated_works_and_is_never_in_the_audit_log() -> None:
    ann = create_user("ann", "long enough")
    password = reset_password(ann, "boss")
    assert len(password) >= 16
    assert authenticate("ann", password) is not None and authenticate("ann", "long enough") is None
    assert audits("user.password") == [("boss", "user:ann", None)]
    with pytest.raises(ValueError, match="at least 8"):
        reset_password(ann, "boss", "short")


def test_log_out_everywhere_moves_the_session_version_on() -> None:
    ann = create_user("ann", "long enough")
    assert ann.session_version == 0
    log_out_everywhere(ann, "ann")
    log_out_everywhere(ann, "boss")
    assert ann.session_version == 2 == User.get_by_id(ann.id).session_version
    assert [(u, t) for u, t, _ in audits("user.logout_all")] == [("ann", "user:ann"), ("boss", "user:ann")]


def test_tokens_are_listed_without_their_value_and_revoked_by_their_owner_or_anyone_for_an_admin() -> None:
    ann, bob = create_user("ann", "long enough"), create_user("bob", "long enough")
    first, second = create_token(ann, "report"), create_token(ann, "sync")
    bobs = create_token(bob, "bob's")
    assert [t.name for t in list_tokens(ann)] == ["sync", "report"]
    assert {t.name for t in list_tokens()} == {"sync", "report", "bob's"}
    assert all(len(t.token_sha256) == 64 and first not in t.token_sha256 for t in list_tokens())
    bob_token = list_tokens(bob)[0]
    with pytest.raises(LookupError, match=f"no API token #{bob_token.id}"):
        revoke_token(bob_token.id, "ann", owner=ann)  # not ann's: as if it did not exist
    assert user_for_token(bobs) is not None
    report = next(t for t in list_tokens(ann) if t.name == "report")
    revoke_token(report.id, "ann", owner=ann)
    assert user_for_token(first) is None and user_for_token(second) is not None
    revoke_token(bob_token.id, "cli")  # the CLI and admins revoke any token
    assert user_for_token(bobs) is None
    with pytest.raises(LookupError):
        revoke_token(bob_token.id, "cli")
    assert ApiToken.select().count() == 1
    assert [(u, t, d) for u, t, d in audits("token.revoke")] == [
        ("ann", "user:ann", {"token": report.id, "name": "report"}),
        ("cli", "user:bob", {"token": bob_token.id, "name": "bob's"}),
    ]
