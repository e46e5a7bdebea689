"""`pbxlink campaign …`: create, list, start, pause, resume, stop, status and export campaigns.

The commands only change the database: a running `pbxlink run` (or worker) picks a status
change up within a second. So cron can drive a campaign: `pbxlink campaign start renewals`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pbxlink.cli import CommandError, duration, print_table
from pbxlink.config import Config
from pbxlink.domain.campaign import DEFAULT_RETRIES, RETRIED, CampaignSettings, RetryRule, check_for_pbx
from pbxlink.services.campaigns import VERBS, CampaignService
from pbxlink.services.csv_safe import writer
from pbxlink.storage import campaigns as store
from pbxlink.storage.campaign_reports import export_rows, progress
from pbxlink.storage.database import open_database
from pbxlink.storage.models import Campaign


def add_commands(group: Any, command: Any) -> None:
    """The `pbxlink campaign` commands, on `group` (its subparsers); `command` is cli.py's helper."""
    create = command(
        group, "create", "create a campaign (a draft: `pbxlink campaign start NAME` runs it)", _create
    )
    create.add_argument("name", help="the campaign's name, e.g. renewals-december")
    create.add_argument("--pbx", required=True, help="the [[pbx]] it calls through")
    create.add_argument(
        "--mode",
        choices=("broadcast", "agent_first"),
        default="broadcast",
        help="broadcast: play --message; agent_first: a free agent of --queue, then the contact",
    )
    create.add_argument(
        "--message", help="broadcast: the recording played, as the PBX names it (custom/renewal)"
    )
    create.add_argument("--queue", help="agent_first: the queue; broadcast: where pressing 1 goes (optional)")
    create.add_argument("--caller-id", help="the number the contacts see")
    create.add_argument("--amd", action="store_true", help="run answering-machine detection (broadcast)")
    create.add_argument(
        "--timezone", required=True, help='the schedule\'s time zone, e.g. "America/New_York"'
    )
    create.add_argument(
        "--days", default="mon-fri", help="the days it runs, as cron writes them (default mon-fri)"
    )
    create.add_argument(
        "--hours", default="09:00-18:00", help="the hours it runs on those days (default 09:00-18:00)"
    )
    create.add_argument(
        "--window",
        default="09:00-20:00",
        help="when a contact may be called, on their own clock (default 09:00-20:00)",
    )
    create.add_argument(
        "--per-minute", type=float, default=10.0, help="calls placed per minute at most (default 10)"
    )
    create.add_argument(
        "--max-concurrent", type=int, default=5, help="calls under way at once at most (default 5)"
    )
    create.add_argument("--ring-timeout", type=int, default=30, help="seconds a phone rings (default 30)")
    rules = ", ".join(f"{k}={r.after_minutes:g}:{r.max_attempts}" for k, r in DEFAULT_RETRIES.items())
    create.add_argument(
        "--retry",
        action="append",
        default=[],
        metavar="OUTCOME=MINUTES:ATTEMPTS",
        help=f"call again MINUTES after OUTCOME, up to ATTEMPTS dials in all (defaults: {rules})",
    )
    command(group, "list", "list the campaigns with their status and progress", _list)
    verbs = {
        "start": "start a draft or completed campaign (it dials within its hours)",
        "pause": "pause a running campaign (calls under way finish)",
        "resume": "resume a paused campaign",
        "stop": "stop a campaign for good (the contacts not yet called are set aside)",
    }
    for verb, text in verbs.items():
        p = command(group, verb, text, _verb)
        p.add_argument("name", help="the campaign's name")
        p.set_defaults(verb=verb)
    status = command(
        group, "status", "a campaign's progress: dialled, answered, busy, no answer, left, ETA", _status
    )
    status.add_argument("name", help="the campaign's name")
    status.add_argument("--json", action="store_true", help="print the settings and progress as JSON")
    export = command(
        group, "export", "every contact's dials and outcome as CSV (formulas neutralised)", _export
    )
    export.add_argument("name", help="the campaign's name")
    export.add_argument("-o", "--output", type=Path, help="write to this file (default: standard output)")


def _create(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    kinds = {p.name: p.type for p in cfg.pbx}
    if args.pbx not in kinds:
        raise CommandError(f"no [[pbx]] named {args.pbx!r} in the config ({', '.join(kinds)})")
    start, _, end = args.window.partition("-")
    try:
        s = CampaignSettings.checked(
            name=args.name,
            pbx=args.pbx,
            mode=args.mode,
            timezone=args.timezone,
            caller_id=args.caller_id,
            message=args.message,
            queue=args.queue,
            amd=args.amd,
            days=args.days,
            hours=args.hours,
            window_start=start,
            window_end=end,
            max_concurrent=args.max_concurrent,
            per_minute=args.per_minute,
            ring_timeout=args.ring_timeout,
            retries=_retries(args.retry),
        )
        store.create(check_for_pbx(s, kinds[args.pbx]), "cli")
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(f"created campaign {s.name} (draft): import contacts with `pbxlink campaign import {s.name} FILE`")
    return 0


def _retries(items: list[str]) -> dict[str, RetryRule]:
    rules = dict(DEFAULT_RETRIES)
    for item in items:
        outcome, _, rule = item.partition("=")
        minutes, _, attempts = rule.partition(":")
        try:
            rules[outcome] = RetryRule(float(minutes), int(attempts))
        except ValueError:
            raise CommandError(
                f"--retry {item!r}: expected OUTCOME=MINUTES:ATTEMPTS, e.g. busy=10:3"
            ) from None
        if outcome not in RETRIED:
            raise CommandError(f"--retry {item!r}: the outcome is one of {', '.join(RETRIED)}")
    return rules


def _campaign(name: str) -> Campaign:
    c = store.by_name(name)
    if c is None:
        raise CommandError(f"no campaign named {name!r} (see `pbxlink campaign list`)")
    return c


def _list(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    now = datetime.now(UTC)
    rows = []
    for c in store.all_campaigns():
        p = progress(c, now)
        done = p["contacts"] - p["remaining"]
        rows.append([c.name, c.status, c.mode, c.pbx, f"{done:,}/{p['contacts']:,}", _rate(p["answer_rate"])])
    if rows:
        print_table(["NAME", "STATUS", "MODE", "PBX", "DONE", "ANSWERED"], rows)
    print(f"{len(rows)} campaign{'' if len(rows) == 1 else 's'}")
    return 0


def _verb(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    try:
        print(CampaignService.command(_campaign(args.name), args.verb))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if VERBS[args.verb] == "running":
        print("a running `pbxlink run` starts dialling within a second, inside the campaign's hours")
    return 0


def _status(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    c = _campaign(args.name)
    p = progress(c, datetime.now(UTC))
    if args.json:
        print(json.dumps({**store.to_dict(c), "progress": p}, ensure_ascii=False))
        return 0
    st = p["statuses"]
    print(
        f"campaign {c.name}: {c.status} ({c.mode} on {c.pbx}), "
        f"{c.per_minute:g} calls/min, {c.max_concurrent} at once"
    )
    print(
        f"contacts {p['contacts']:,}: {st['done']:,} done, {st['pending']:,} waiting, "
        f"{st['dialing']:,} being dialled, {st['dnc']:,} on the do-not-call list, {st['stopped']:,} set aside"
    )
    print(
        f"dialled {p['dialled']:,}: {p['answered']:,} answered ({_rate(p['answer_rate'])}), {p['machine']:,} "
        f"machines, {p['busy']:,} busy, {p['no_answer']:,} no answer, {p['failed']:,} failed, "
        f"{p['unknown']:,} unknown"
    )
    eta = f"; about {duration(p['eta_seconds'])} left" if p["eta_seconds"] is not None else ""
    print(
        f"average talk {duration(p['average_talk_seconds'])}; {p['calls_per_minute']:g} calls/min lately{eta}"
    )
    return 0


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _export(args: argparse.Namespace, cfg: Config) -> int:
    open_database(cfg)
    c = _campaign(args.name)
    out = args.output.open("w", newline="", encoding="utf-8") if args.output else sys.stdout
    rows = 0
    try:
        w = writer(out)
        for rows, row in enumerate(export_rows(c)):  # noqa: B007  (the count is said at the end)
            w.writerow(row)
    finally:
        if args.output:
            out.close()
    if args.output:
        print(f"{rows:,} rows written to {args.output}", file=sys.stderr)
    return 0
