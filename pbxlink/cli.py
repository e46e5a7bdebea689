"""The `pbxlink` command: run the service, set up the database and users, look at the call log.

Mistakes an admin can make (a bad config file, a database that cannot be opened) end
with one line `pbxlink: error: …` and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import itertools
import json
import logging
import os
import sys
import time as time_module
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import peewee as pw

from pbxlink.config import Config, ConfigError, load_config, redact_url
from pbxlink.domain.phone import PhoneNumbers, configure
from pbxlink.storage.calls import CallFilter, iter_calls, search_calls
from pbxlink.storage.database import DatabaseOpenError, first_line, open_database
from pbxlink.storage.migrations import MIGRATIONS, MigrationError
from pbxlink.storage.models import User
from pbxlink.storage.users import ROLES, create_token, create_user

DEFAULT_TABLE_LIMIT = 50


Handler = Callable[[argparse.Namespace, Any], int]


class CommandError(Exception):
    """The command cannot do what was asked (unknown user, bad password …); exit status 1."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    try:
        cfg = None if args.command == "demo" else load_config(getattr(args, "config", None))
        # The services log what they do; the admin commands print their result and log only trouble.
        level = (cfg.log_level if cfg else "INFO") if args.command in ("run", "check", "demo") else "WARNING"
        logging.basicConfig(
            level="DEBUG" if verbose else level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        logging.getLogger("peewee").setLevel(logging.INFO)  # its DEBUG lines carry SQL parameters: secrets
        logging.getLogger("urllib3").setLevel(logging.INFO)  # its DEBUG lines carry URLs: webhook secrets
        return int(args.handler(args, cfg) or 0)
    except (ConfigError, DatabaseOpenError, MigrationError) as exc:
        return fail(str(exc), 2)
    except pw.PeeweeException as exc:
        return fail(f"database error: {first_line(exc)}", 2)
    except CommandError as exc:
        return fail(str(exc), 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `pbxlink calls --json | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def build_parser() -> argparse.ArgumentParser:
    # The global options are accepted before and after the command: `pbxlink --config F calls` or
    # `pbxlink calls --config F`. SUPPRESS keeps a subcommand's default from hiding the global one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS, help="config file (or $PBXLINK_CONFIG)"
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log everything"
    )
    parser = argparse.ArgumentParser(
        prog="pbxlink",
        parents=[common],
        description="Keeps the record of every call of an Asterisk PBX, with a web panel and a JSON API.",
        epilog="Run `pbxlink COMMAND --help` for the options of a command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group: Any, name: str, text: str, handler: Handler) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(name, parents=[common], help=text, description=text)
        p.set_defaults(handler=handler)
        return p

    def group(name: str, text: str) -> Any:
        p = commands.add_parser(name, parents=[common], help=text, description=text)
        return p.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")

    command(commands, "run", "run pbxlink: PBX adapters, call log, web panel; migrates first", _run)
    command(commands, "check", "log in to each PBX and say what works; exit 0 only if all does", _check)
    demo = command(commands, "demo", "run pbxlink against a simulated PBX with generated calls", _demo)
    demo.add_argument("--dir", default="var/demo", help="where the demo keeps its config and database")
    demo.add_argument("--listen", default="127.0.0.1:8080", help="web panel address (host:port)")
    demo.add_argument("--calls-per-minute", type=float, default=6.0, help="pace of the generated calls")
    demo.add_argument("--agents", type=int, default=8, help="agents of the simulated PBX (201, 202, …)")
    demo.add_argument(
        "--pbx", choices=("asterisk", "freeswitch"), default="asterisk", help="which PBX to simulate"
    )
    command(commands, "initdb", "create or upgrade the database schema (safe to run again)", _initdb)

    users = group("user", "manage panel users")
    add = command(
        users, "add", "add a panel user; the password is asked twice, or read from stdin", _user_add
    )
    add.add_argument("name", help="login name")
    role = add.add_mutually_exclusive_group()
    role.add_argument(
        "--admin", dest="role", action="store_const", const="admin", help="same as --role admin"
    )
    role.add_argument("--role", choices=ROLES, help="agent: own calls; supervisor: all calls; admin: all")
    add.set_defaults(role="agent")  # --admin and --role share the destination
    add.add_argument(
        "--extension",
        metavar="EXT",
        help="the user's phone extension (several: 201,202), for their calls and screen-pops",
    )
    command(users, "list", "list panel users", _user_list)

    tokens = group("token", "manage API tokens")
    token = command(tokens, "add", "create an API bearer token for a user; it is shown only once", _token_add)
    token.add_argument("user", help="the user the token acts as")
    token.add_argument("name", help="what the token is for, e.g. the script using it")
    from pbxlink import cli_users  # it uses this module's helpers

    cli_users.add_commands(users, tokens, command)

    calls = command(commands, "calls", "show the call log, newest first", _calls)
    when = "today, yesterday, 2026-01-01 (local time) or ISO 8601"
    calls.add_argument("--since", type=_since, metavar="WHEN", help=f"started at or after WHEN: {when}")
    calls.add_argument(
        "--until", type=_until, metavar="WHEN", help="started before WHEN; a date includes that day"
    )
    calls.add_argument("--number", help="caller or callee, on digits: 5551234567 finds +15551234567")
    calls.add_argument("--agent", metavar="EXT", help="calls an agent took part in")
    calls.add_argument(
        "--disposition", choices=("answered", "missed"), help="only answered or only missed calls"
    )
    limit = f"at most N calls (default: all with --json, else {DEFAULT_TABLE_LIMIT})"
    calls.add_argument("--limit", type=positive, metavar="N", help=limit)
    calls.add_argument(
        "--json", action="store_true", help="one JSON object per line, every field of the record"
    )

    recs = group("recordings", "index the call recordings in the [recordings] folders")
    scan = command(
        recs,
        "scan",
        "index new, changed and missing recording files, linked to their calls; "
        "exit 1 if some could not be read",
        _recordings_scan,
    )
    scan.add_argument("--folder", metavar="F", type=Path, help="only this one of the configured folders")
    again = scan.add_mutually_exclusive_group()
    again.add_argument(
        "--resume", dest="resume", action="store_true", help="continue a scan that was stopped (default)"
    )
    again.add_argument("--restart", dest="resume", action="store_false", help="start over from the top")
    scan.set_defaults(resume=True)

    from pbxlink import cli_campaigns  # they use this module's helpers

    campaigns = group("campaign", "outbound campaigns: create, import contacts, start, pause, follow, export")
    cli_campaigns.add_commands(campaigns, command)
    from pbxlink import cli_contacts  # it uses this module's helpers

    cli_contacts.add_commands(commands, command, group, campaigns)
    return parser


# bootstrap is imported by the commands that need it: it pulls in every part (Flask, the adapters …),
# which the admin commands below can do without.
def _run(args: argparse.Namespace, cfg: Config) -> int:
    from pbxlink import bootstrap

    bootstrap.run(cfg)
    return 0


def _check(args: argparse.Namespace, cfg: Config) -> int:
    from pbxlink import bootstrap

    return bootstrap.check(cfg)


def _demo(args: argparse.Namespace, cfg: None) -> int:
    from pbxlink import bootstrap

    bootstrap.demo(args)
    return 0


def _initdb(args: argparse.Namespace, cfg: Config) -> int:
    applied = open_database(cfg)
    where = redact_url(cfg.database.url)
    if applied:
        print(f"{where}: applied migration{'s' if len(applied) > 1 else ''} {', '.join(map(str, applied))}")
    else:
        print(f"{where}: up to date (schema version {MIGRATIONS[-1][0]})")
    return 0


def _user_add(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    password = read_password(args.name)
    try:
        create_user(args.name, password, role=args.role, extension=args.extension)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(f"added {args.role} {args.name}" + (f" (extension {args.extension})" if args.extension else ""))
    return 0


def read_password(name: str) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass(f"Password for {name}: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise CommandError("the two passwords differ; nothing was changed")
    return password


def _user_list(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    rows = [
        [u.username, u.role, u.extension or "-", "yes" if u.active else "no", local_time(u.created_at)]
        for u in User.select().order_by(User.username)
    ]
    print_table(["USER", "ROLE", "EXTENSION", "ACTIVE", "CREATED"], rows)
    return 0


def _token_add(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    user = User.get_or_none(User.username == args.user)
    if user is None:
        raise CommandError(f"no user {args.user!r} (see `pbxlink user list`)")
    try:
        token = create_token(user, args.name)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(token)
    print("Store this token now: it is not kept and cannot be shown again.", file=sys.stderr)
    return 0


def _calls(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    f = CallFilter(
        since=args.since, until=args.until, number=args.number, agent=args.agent, disposition=args.disposition
    )
    if args.json:
        for call in itertools.islice(iter_calls(f), args.limit):
            print(json.dumps(call, ensure_ascii=False))
        return 0
    calls, total = search_calls(f, limit=args.limit or DEFAULT_TABLE_LIMIT)
    if calls:
        print_table(
            ["ID", "STARTED", "DIRECTION", "CALLER", "CALLEE", "AGENT", "RESULT", "WAIT", "TALK"],
            [_table_row(c) for c in calls],
        )
    more = " (use --limit N, or --json for all)" if total > len(calls) else ""
    print(f"{len(calls)} of {total} calls{more}")
    return 0


def _recordings_scan(args: argparse.Namespace, cfg: Config) -> int:
    from pbxlink.services.recording_scan import ScanStats, scan

    folders = cfg.recordings.folders
    if args.folder is not None:
        folders = tuple(f for f in folders if f.resolve() == args.folder.resolve())
        if not folders:
            raise CommandError(f"{args.folder} is not one of the [recordings] folders of the config file")
    if not folders:
        raise CommandError("no [recordings] folders are configured: name the PBX's recording folders there")
    open_database(cfg)
    configure(PhoneNumbers(cfg.phone.default_region, cfg.phone.match_digits))
    shown = [0.0]

    def progress(stats: ScanStats) -> None:  # on a terminal: one line, redrawn at most 5 times a second
        now = time_module.monotonic()
        if now - shown[0] >= 0.2:
            shown[0] = now
            eta = f", about {duration(stats.eta)} left" if stats.eta is not None else ""
            line = f"{stats.seen:,} files, {stats.indexed:,} indexed, {stats.rate:,.0f} files/s{eta}"
            print(f"\r\x1b[K{line}", end="", file=sys.stderr, flush=True)

    tty = sys.stderr.isatty()
    try:
        stats = scan(folders, [p.name for p in cfg.pbx], progress if tty else None, resume=args.resume)
    except KeyboardInterrupt:
        print("\nstopped: `pbxlink recordings scan` continues where it stopped", file=sys.stderr)
        return 130
    if tty:
        print("\r\x1b[K", end="", file=sys.stderr, flush=True)
    resumed = " (resumed)" if stats.resumed else ""
    print(
        f"{stats.seen:,} files seen{resumed}: {stats.indexed:,} indexed, {stats.linked:,} linked to calls, "
        f"{stats.changed:,} changed, {stats.missing:,} missing, {stats.errors:,} errors"
    )
    return 1 if stats.errors else 0


def _table_row(c: dict[str, Any]) -> list[str]:
    return [
        str(c["id"]),
        local_time(c["started_at"]),
        c["direction"],
        c["caller"] or "-",
        c["callee"] or "-",
        c["agent"] or "-",
        _result(c),
        duration(c["wait_seconds"]),
        duration(c["talk_seconds"]),
    ]


def _result(call: dict[str, Any]) -> str:
    if call["ended_at"] is None:
        return "in progress"
    result = str(call["disposition"] or "-")
    if call["miss_reason"]:
        result += f" ({call['miss_reason']})"
    return result if call["end_seen"] else result + " [end not seen]"


def duration(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, secs = divmod(round(value), 60)
    return f"{minutes}:{secs:02d}"


def local_time(value: datetime | str) -> str:
    when = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _since(text: str) -> datetime:
    return _when(text, end_of_day=False)


def _until(text: str) -> datetime:
    return _when(text, end_of_day=True)


def _when(text: str, end_of_day: bool) -> datetime:
    """A point in time in UTC; dates and times without an offset are the machine's local time."""
    named = {"today": date.today(), "yesterday": date.today() - timedelta(days=1)}
    try:
        day = named.get(text.lower()) or date.fromisoformat(text)
    except ValueError:
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a date: use today, yesterday, 2026-01-01 or 2026-01-01T08:00:00+01:00"
            ) from None
    if end_of_day:
        day += timedelta(days=1)
    return datetime.combine(day, time()).astimezone(UTC)


def fail(message: str, status: int) -> int:
    print(f"pbxlink: error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
