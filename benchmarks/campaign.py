"""Campaigns: contacts imported per second, and the dialler's pace held against the AMI simulator.

`--part import`: a generated CSV of 100,000 contacts (number, name, two custom columns) imported
into a campaign on SQLite, beside Python's bare csv reader over the same file in the same run.

`--part dial`: pbxlink's dialler, the AMI adapter and the call log against the AMI simulator over
TCP, a broadcast campaign paced at each `--rates` calls per minute for `--minutes`: the rate
achieved (dials placed, and calls the PBX reported back, per minute) beside the target, and the
scheduling jitter (how late each dial went out after its pacing slot).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from results import machine, run_parts

from pbxlink.ami.adapter import AmiAdapter
from pbxlink.ami.simulator import AmiSimulator
from pbxlink.bus import InProcessBus
from pbxlink.config import PbxConfig
from pbxlink.domain.campaign import CampaignSettings
from pbxlink.domain.phone import numbers
from pbxlink.services.call_log import call_log_handler
from pbxlink.services.campaigns import CampaignService
from pbxlink.services.contact_import import run_import
from pbxlink.simulation.thread import SimulatorThread
from pbxlink.storage import campaigns as store
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.models import Call, CampaignAttempt, CampaignContact

SECRET = "bench-campaign"
ALL_DAY = {"days": "*", "hours": "00:00-24:00", "window_start": "00:00", "window_end": "24:00"}


def settings(name: str, **over: object) -> CampaignSettings:
    values: dict[str, object] = {
        "name": name,
        "pbx": "main",
        "mode": "broadcast",
        "timezone": "UTC",
        "message": "custom/reminder",
        **ALL_DAY,
    }
    return CampaignSettings.checked(**(values | over))


def write_unique_csv(path: Path, rows: int) -> None:
    """Distinct valid numbers across US area codes (555-01xx fictional range is too small for 100k)."""
    areas = [212, 213, 312, 415, 617, 702, 305, 206, 404, 512]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Phone", "Full name", "Due date", "Amount"])
        for i in range(rows):
            area, rest = areas[i % len(areas)], i // len(areas)
            w.writerow(
                [f"+1{area}{200 + rest // 10000:03d}{rest % 10000:04d}", f"Contact {i}", "2026-12-01", str(i)]
            )


def part_import(args: argparse.Namespace) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        migrate(connect(f"sqlite:///{folder}/bench.db"))
        path = folder / "contacts.csv"
        write_unique_csv(path, args.rows)
        size = path.stat().st_size
        started = time.perf_counter()
        with path.open(newline="", encoding="utf-8") as f:
            bare = sum(1 for _ in csv.reader(f)) - 1
        bare_s = time.perf_counter() - started
        campaign = store.create(settings("bench-import"), "bench")
        started = time.perf_counter()
        row = run_import(campaign.id, path, None, filename="contacts.csv", rejects_dir=folder)
        ours_s = time.perf_counter() - started
        stored = CampaignContact.select().where(CampaignContact.campaign == campaign.id).count()
    assert row.status == "done" and stored == args.rows, (row.status, row.error, stored)
    section = (
        "## Campaigns: importing contacts (`benchmarks/campaign.py --part import`)\n\n"
        f"{args.rows:,} rows ({size / 1e6:.1f} MB: number, name, two custom columns) on SQLite; each row "
        "parsed and validated with phonenumbers, its time zone found from the number, checked against "
        "the do-not-call list and the campaign for duplicates (per batch), and inserted.\n\n"
        "| what | time | rate |\n|---|---:|---:|\n"
        f"| bare `csv.reader` over the file (reference) | {bare_s:.2f} s | {bare / bare_s:,.0f} rows/s |\n"
        f"| pbxlink import | {ours_s:.1f} s | {args.rows / ours_s:,.0f} rows/s |\n\n"
        f"Machine: {machine()}. Run: `python benchmarks/campaign.py --part import`.\n"
    )
    return "campaign_import", section


def dial_run(rate: float, minutes: float, folder: Path) -> dict[str, float]:
    """One campaign paced at `rate` for `minutes` against the AMI simulator; what was achieved."""
    migrate(connect(f"sqlite:///{folder}/dial-{rate:g}.db"))
    bus = InProcessBus()
    bus.subscribe("call-log", call_log_handler())
    sim = SimulatorThread(AmiSimulator(secret=SECRET, call_speed=4.0))
    host, port = sim.start()
    adapter = AmiAdapter(PbxConfig("main", "asterisk", host, port, "pbxlink", SECRET), bus.publish, list)
    adapter.start()
    deadline = time.monotonic() + 20
    while not adapter.status().connected:
        assert time.monotonic() < deadline, "the adapter did not connect"
        time.sleep(0.05)
    service = CampaignService({"main": adapter.control}, poll_s=1.0)
    bus.subscribe("campaigns", service.on_event)
    campaign = store.create(settings(f"bench-{rate:g}", per_minute=rate, max_concurrent=1000), "bench")
    phones = numbers()
    count = int(rate * minutes * 1.1) + 10
    CampaignContact.insert_many(
        [
            {
                "campaign": campaign.id,
                "number": (n := f"+1212{2000000 + i:07d}"),
                "number_key": phones.key(n),
                "timezones": "UTC",
                "updated_at": datetime.now(UTC),
            }
            for i in range(count)
        ]
    ).execute()
    service.command(campaign, "start")
    service.start()
    begin = datetime.now(UTC)
    time.sleep(minutes * 60)
    end = datetime.now(UTC)
    late = [x for d in service.dialers.values() for x in d.stats.late]
    service.stop()
    time.sleep(3)
    placed = CampaignAttempt.select().where(
        (CampaignAttempt.campaign == campaign.id) & (CampaignAttempt.started_at.between(begin, end))
    )
    starts = sorted(a.started_at for a in placed)
    window = (starts[-1] - starts[0]).total_seconds() / 60 if len(starts) > 1 else minutes
    reported = Call.select().where(Call.origin.in_([a.tag for a in placed])).count()
    adapter.stop()
    bus.close()
    sim.stop()
    late_sorted = sorted(late) or [0.0]
    return {
        "target": rate,
        "placed": len(starts),
        "rate": (len(starts) - 1) / window if len(starts) > 1 else 0.0,
        "reported": reported,
        "p50": statistics.median(late_sorted) * 1000,
        "p99": late_sorted[int(0.99 * (len(late_sorted) - 1))] * 1000,
        "max": late_sorted[-1] * 1000,
    }


def part_dial(args: argparse.Namespace) -> tuple[str, str]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rate in args.rates:
            print(f"dialling at {rate:g} calls/min for {args.minutes:g} min …", flush=True)
            r = dial_run(rate, args.minutes, Path(tmp))
            off = (r["rate"] - rate) / rate * 100
            rows.append(
                f"| {rate:g} | {r['rate']:.1f} ({off:+.2f}%) | {r['placed']:,} | {r['reported']:,} | "
                f"{r['p50']:.1f} / {r['p99']:.1f} / {r['max']:.1f} ms |"
            )
    section = (
        "## Campaigns: the dialler's pace (`benchmarks/campaign.py --part dial`)\n\n"
        f"A broadcast campaign against the AMI simulator over TCP for {args.minutes:g} minutes per rate "
        "(every contact answers and hears the message; the simulator plays calls at 4 times real speed), "
        "`max_concurrent` high enough not to limit. Achieved rate: dials placed per minute from the "
        "first to the last; reported: calls the PBX reported back to the call log with the dial's tag. "
        "Jitter: how late each dial went out after its pacing slot.\n\n"
        "| target calls/min | achieved calls/min | dials | calls reported | jitter p50 / p99 / max |\n"
        "|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        f"Machine: {machine()}. Run: `python benchmarks/campaign.py --part dial`.\n"
    )
    return "campaign_dial", section


PARTS: dict[str, Callable[[argparse.Namespace], tuple[str, str]]] = {
    "import": part_import,
    "dial": part_dial,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="contacts to import")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long each dialling run lasts")
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[60.0, 600.0], help="calls per minute to hold"
    )
    run_parts(parser, PARTS)


if __name__ == "__main__":
    main()
