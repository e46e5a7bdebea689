"""`pbxlink user passwd|disable|enable|logout` and `pbxlink token list|revoke` from the shell.

Registered by `pbxlink.cli.build_parser` through `add_commands`. Every change is written to
the audit log as done by "cli"; an unknown user or token, or a change that would leave no
active admin, ends with one line and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pbxlink.cli import CommandError, local_time, print_table, read_password
from pbxlink.config import Config
from pbxlink.storage.database import open_database
from pbxlink.storage.models import User
from pbxlink.storage.users import (
    generate_password,
    list_tokens,
    log_out_everywhere,
    reset_password,
    revoke_token,
    update_user,
)

BY = "cli"  # who the audit log says made the change


def add_commands(users_group: Any, tokens_group: Any, command: Any) -> None:
    """Add the commands to the `user` and `token` groups, with build_parser's `command` helper."""
    passwd = command(
        users_group,
        "passwd",
        "set a user's password (asked twice, or read from stdin); every session of the user ends",
        _passwd,
    )
    passwd.add_argument("name", help="the user's login name")
    passwd.add_argument(
        "--generate", action="store_true", help="make up a strong password and print it once instead"
    )
    for name, text, handler in (
        ("disable", "stop a user logging in; their sessions and API tokens stop working at once", _disable),
        ("enable", "let a disabled user log in again (their API tokens work again)", _enable),
        ("logout", "end every panel session of a user (log out everywhere); API tokens stay", _logout),
    ):
        command(users_group, name, text, handler).add_argument("name", help="the user's login name")

    listing = command(tokens_group, "list", "list API tokens: id, user, name, created, last used", _list)
    listing.add_argument("user", nargs="?", help="only this user's tokens (default: every user's)")
    revoke = command(tokens_group, "revoke", "revoke an API token: it stops working at once", _revoke)
    revoke.add_argument("id", type=int, help="the token's id, from `pbxlink token list`")


def _user(cfg: Config, name: str) -> User:
    open_database(cfg)
    user = User.get_or_none(User.username == name)
    if user is None:
        raise CommandError(f"no user {name!r} (see `pbxlink user list`)")
    return user  # type: ignore[no-any-return]


def _passwd(args: argparse.Namespace, cfg: Config) -> int:
    user = _user(cfg, args.name)
    try:
        password = reset_password(
            user, BY, generate_password() if args.generate else read_password(args.name)
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.generate:
        print(password)
        print(
            "Give this password to the user now: it is not kept and cannot be shown again.", file=sys.stderr
        )
    else:
        print(f"password of {user.username} changed; their sessions have ended")
    return 0


def _set_active(args: argparse.Namespace, cfg: Config, active: bool) -> int:
    user = _user(cfg, args.name)
    try:
        changed = update_user(user, BY, active=active)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    state = "enabled" if active else "disabled"
    print(f"{user.username} {state}" if changed else f"{user.username} was {state} already: nothing changed")
    return 0


def _disable(args: argparse.Namespace, cfg: Config) -> int:
    return _set_active(args, cfg, False)


def _enable(args: argparse.Namespace, cfg: Config) -> int:
    return _set_active(args, cfg, True)


def _logout(args: argparse.Namespace, cfg: Config) -> int:
    user = _user(cfg, args.name)
    log_out_everywhere(user, BY)
    print(f"every panel session of {user.username} has ended")
    return 0


def _list(args: argparse.Namespace, cfg: Config) -> int:
    user = _user(cfg, args.user) if args.user else None
    open_database(cfg)
    rows = [
        [
            str(t.id),
            t.user.username,
            t.name,
            local_time(t.created_at),
            local_time(t.last_used_at) if t.last_used_at else "never",
        ]
        for t in list_tokens(user)
    ]
    print_table(["ID", "USER", "NAME", "CREATED", "LAST USED"], rows)
    return 0


def _revoke(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    try:
        token = revoke_token(args.id, BY)
    except LookupError as exc:
        raise CommandError(f"{exc} (see `pbxlink token list`)") from None
    print(f"revoked token #{token.id} {token.name!r} of {token.user.username}")
    return 0
