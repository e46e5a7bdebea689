"""`pbxlink user passwd|disable|enable|logout` and `pbxlink token list|revoke`, run through `pbxlink.cli.main`
(its config loading and one-line errors) on a real config file and SQLite database."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from pbxlink import cli
from pbxlink.config import load_config
from pbxlink.storage import users
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import AuditEntry, User
from pbxlink.storage.users import authenticate, create_token, create_user, user_for_token
from tests.unit import test_cli

config_file = test_cli.config  # the fixture: a config file in tmp_path


@pytest.fixture
def run(config_file: Path, monkeypatch, capsys):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    database = connect(load_config(config_file, environ={}).database.url)
    migrate(database)
    create_user("root", "root password", role="admin")
    create_user("ann", "ann password", extension="201")

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        status = cli.main(["--config", str(config_file), *argv])
        out, err = capsys.readouterr()
        return status, out, err

    yield run
    database.close()


def audit_actions() -> list[tuple[str, str, str]]:
    return [(a.user, a.action, a.target) for a in AuditEntry.select().order_by(AuditEntry.id)]


def test_passwd_reads_stdin_or_generates_and_ends_the_sessions(run) -> None:
    assert run("user", "passwd", "ann", stdin="brand new pw\n") == (
        0,
        "password of ann changed; their sessions have ended\n",
        "",
    )
    assert authenticate("ann", "brand new pw") is not None
    status, out, err = run("user", "passwd", "ann", "--generate")
    assert status == 0 and "cannot be shown again" in err
    assert authenticate("ann", out.strip()) is not None
    assert run("user", "passwd", "ann", stdin="short\n")[0:2] == (1, "")
    assert run("user", "passwd", "nobody", stdin="long enough\n")[2] == (
        "pbxlink: error: no user 'nobody' (see `pbxlink user list`)\n"
    )
    assert audit_actions() == [("cli", "user.password", "user:ann")] * 2


def test_disable_enable_and_the_last_admin(run) -> None:
    token = create_token(User.get(User.username == "ann"), "script")
    assert run("user", "disable", "ann") == (0, "ann disabled\n", "")
    assert user_for_token(token) is None and authenticate("ann", "ann password") is None
    assert run("user", "disable", "ann")[1] == "ann was disabled already: nothing changed\n"
    assert run("user", "enable", "ann") == (0, "ann enabled\n", "")
    assert user_for_token(token) is not None
    status, _, err = run("user", "disable", "root")
    assert status == 1 and err.startswith("pbxlink: error: root is the last active admin")
    assert User.get(User.username == "root").active
    details = [json.loads(a.detail) for a in AuditEntry.select().order_by(AuditEntry.id)]
    assert details == [
        {"active": {"before": True, "after": False}},
        {"active": {"before": False, "after": True}},
    ]


def test_logout_moves_the_session_version_on(run) -> None:
    assert run("user", "logout", "ann") == (0, "every panel session of ann has ended\n", "")
    assert User.get(User.username == "ann").session_version == 1
    assert audit_actions() == [("cli", "user.logout_all", "user:ann")]


def test_token_list_and_revoke(run) -> None:
    ann, root = User.get(User.username == "ann"), User.get(User.username == "root")
    token = create_token(ann, "nightly report")
    create_token(root, "backup")
    status, out, _ = run("token", "list")
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["ID", "USER", "NAME", "CREATED", "LAST", "USED"]
    assert len(lines) == 3 and token not in out and all(line.endswith("never") for line in lines[1:])
    user_for_token(token)
    out = run("token", "list", "ann")[1]
    assert len(out.splitlines()) == 2 and "nightly report" in out and "never" not in out
    token_id = int(out.splitlines()[1].split()[0])
    assert run("token", "revoke", str(token_id)) == (
        0,
        f"revoked token #{token_id} 'nightly report' of ann\n",
        "",
    )
    assert user_for_token(token) is None
    assert run("token", "revoke", str(token_id))[2] == (
        f"pbxlink: error: no API token #{token_id} (see `pbxlink token list`)\n"
    )
    assert audit_actions() == [("cli", "token.revoke", "user:ann")]
