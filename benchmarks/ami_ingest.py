"""AMI ingest: events per second from the socket to normalized call events, pbxlink vs bare panoramisk.

    .venv/bin/python benchmarks/ami_ingest.py [--events N] [--calls N] [--runs N] [--no-write]

The simulator runs in a child process and blasts one pre-rendered synthetic stream
(repeated `ChanVariable:` headers, multibyte caller names, cut at random byte positions
and inside UTF-8 characters) at each client that logs in. In the same run:

- pbxlink: AmiProtocol + FrameParser + EventFeed + AmiTracker (the link's hot path), with the
  tracker's declared interest (production) and with every event parsed;
- bare panoramisk 1.4: a Manager with a catch-all `register_event('*', cb)` that counts.

Each figure is the median of `--runs`. Then peak RSS of pbxlink with `--calls` calls up at
once, measured in a child process that runs only pbxlink (AmiAdapter + tracker). The
results go to docs/benchmarks.md between markers, leaving the rest of the file alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from panoramisk import Manager
from results import machine, write_section

from pbxlink.ami.client import EventFeed, interest_of
from pbxlink.ami.protocol import AmiProtocol, Frame
from pbxlink.ami.simulator import AmiSimulator, SimulatorThread
from pbxlink.ami.simulator.synthetic import CALLER_NAMES, SyntheticPbx, render_bulk
from pbxlink.ami.tracker import AmiTracker
from pbxlink.domain.calls import CallEnded, CallEvent
from pbxlink.simulation.timeline import BulkStream

SECRET = "bench"
LOGIN = f"Action: Login\r\nUsername: pbxlink\r\nSecret: {SECRET}\r\nEvents: on\r\n\r\n".encode()
LOGIN_EVENTS = 2  # FullyBooted and SuccessfulAuth come before the blast
MULTIBYTE = {name for name in CALLER_NAMES if not name.isascii()}


def serve_bulk(blob: bytes, conn: Connection) -> None:
    """The simulator process: blasts `blob` at every client right after its Login."""

    async def main() -> None:
        sim = AmiSimulator(secret=SECRET, timestampevents=True, bulk=blob, bulk_close=False)
        await sim.start()
        conn.send(sim.port)
        await asyncio.Event().wait()

    asyncio.run(main())


class Run:
    """One client's run: counts events and times the first to the last."""

    def __init__(self, total: int) -> None:
        self.total, self.count = total, 0
        self.first = self.last = 0.0
        self.done = asyncio.get_running_loop().create_future()

    def at(self, count: int) -> None:
        if count == self.count:
            return
        now = time.perf_counter()
        if not self.count:
            self.first = now
        self.count, self.last = count, now
        if count >= self.total and not self.done.done():
            self.done.set_result(None)

    async def settle(self) -> float:
        await asyncio.wait_for(self.done, 600)
        await asyncio.sleep(0.3)  # anything beyond the stream would show up in the count now
        return self.count / (self.last - self.first)


class CountingProtocol(AmiProtocol):
    """pbxlink's protocol, counting what it parsed and what its interest let it skip."""

    run: Run
    fed = 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.run.at(self.fed + self.parser.skipped)


async def pbxlink_run(port: int, bulk: BulkStream, filtered: bool) -> dict[str, Any]:
    tracker = AmiTracker("bench")
    ended: list[Any] = []

    def publish(event: CallEvent) -> None:
        if isinstance(event, CallEnded):
            ended.append(event.call)

    feed = EventFeed(tracker, publish, "bench")
    run = Run(bulk.events + LOGIN_EVENTS)
    _, proto = await asyncio.get_running_loop().create_connection(CountingProtocol, "127.0.0.1", port)
    proto.run = run
    proto.parser.interest = interest_of(tracker) if filtered else None

    def on_events(events: list[Frame], received: datetime) -> None:
        proto.fed += len(events)
        feed(events, received)

    proto.on_events = on_events
    proto.transport.write(LOGIN)
    rate = await run.settle()
    proto.transport.close()
    return {"rate": rate, "counted": run.count - LOGIN_EVENTS, "ended": ended}


async def panoramisk_run(port: int, bulk: BulkStream) -> dict[str, Any]:
    run = Run(bulk.events + LOGIN_EVENTS)
    names: Counter[str] = Counter()

    def on_event(manager: Manager, event: Any) -> None:
        if event["Event"] == "Newchannel":
            names[event["CallerIDName"]] += 1
        run.at(run.count + 1)

    manager = Manager(
        loop=asyncio.get_running_loop(), port=port, username="pbxlink", secret=SECRET, ping_delay=3600
    )
    manager.register_event("*", on_event)
    await manager.connect()
    rate = await run.settle()
    manager.close()
    mangled = sum(n for name, n in names.items() if name not in CALLER_NAMES and name != "<unknown>")
    return {"rate": rate, "counted": run.count - LOGIN_EVENTS, "mangled": mangled}


def check_calls(bulk: BulkStream, ended: list[Any]) -> tuple[int, int, set[str]]:
    """(calls whose record matches the generated outcome, calls expected, multibyte names seen intact)."""
    by_id = {c.call_id: c for c in ended}
    good = 0
    for want in bulk.calls:
        got = by_id.get(want.call_id)
        if got is not None and (got.disposition, got.caller_name or "", got.agent) == (
            want.disposition,
            want.caller_name or "",
            want.agent,
        ):
            good += 1
    return good, len(bulk.calls), {c.caller_name for c in ended} & MULTIBYTE


def throughput(events: int, runs: int) -> dict[str, Any]:
    print(f"rendering {events:,} synthetic events …", flush=True)
    bulk = render_bulk(events, seed=1)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=serve_bulk, args=(bulk.blob, child), daemon=True)
    server.start()
    port = parent.recv()
    declared = interest_of(AmiTracker("bench")) is not None
    results: dict[str, list[dict[str, Any]]] = {"pbxlink": [], "panoramisk": []}
    if declared:
        results["pbxlink_all"] = []
    try:
        for i in range(runs):
            results["pbxlink"].append(asyncio.run(pbxlink_run(port, bulk, filtered=True)))
            if declared:
                results["pbxlink_all"].append(asyncio.run(pbxlink_run(port, bulk, filtered=False)))
            results["panoramisk"].append(asyncio.run(panoramisk_run(port, bulk)))
            print(f"run {i + 1}: " + ", ".join(f"{k} {v[-1]['rate']:,.0f}/s" for k, v in results.items()))
    finally:
        server.terminate()
        server.join()
    last = results["pbxlink"][-1]
    good, expected, names = check_calls(bulk, last["ended"])
    return {
        "events": bulk.events,
        "bytes": len(bulk.blob),
        "rates": {k: statistics.median(r["rate"] for r in v) for k, v in results.items()},
        "counted": sorted({r["counted"] for v in results.values() for r in v}),
        "declared": declared,
        "calls_ok": (good, expected),
        "names": sorted(names),
        "panoramisk_mangled": results["panoramisk"][-1]["mangled"],
    }


def rss_child(port: int, calls: int) -> None:
    """Only pbxlink in this process: the AmiAdapter, its tracker, its thread; prints peak RSS."""
    from pbxlink.ami.adapter import AmiAdapter
    from pbxlink.config import PbxConfig

    pbx = PbxConfig("bench", "asterisk", "127.0.0.1", port, "pbxlink", SECRET)
    published = [0]
    adapter = AmiAdapter(pbx, lambda e: published.__setitem__(0, published[0] + 1))
    adapter.start()
    wait_for(lambda: adapter.status().connected)
    idle = peak_rss_kb()
    print("ready", flush=True)
    wait_for(lambda: len(adapter.tracker.open_calls) >= calls, timeout=120)
    peak = peak_rss_kb()
    print(json.dumps({"idle_kb": idle, "peak_kb": peak, "open": len(adapter.tracker.open_calls)}))
    adapter.stop()


def peak_rss_kb() -> int:
    """This process's peak RSS (VmHWM); ru_maxrss would carry the forking parent's peak over exec."""
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmHWM:\s*(\d+) kB", status)
    return int(match.group(1)) if match else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def wait_for(cond: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.2)


def memory(calls: int) -> dict[str, Any]:
    sim = AmiSimulator(secret=SECRET, timestampevents=True, synthetic=SyntheticPbx(agents=calls, seed=2))
    with SimulatorThread(sim) as thread:
        cmd = [sys.executable, __file__, "--rss-child", str(thread.port), str(calls)]
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("RSS child failed to connect")
        timelines = sim.synthetic.long_lived(calls, time.time())
        thread.run(sim.play_timelines(timelines, speed=0))
        result: dict[str, Any] = json.loads(child.stdout.readline())
        child.wait(30)
    return result


def report(args: argparse.Namespace, t: dict[str, Any], m: dict[str, Any]) -> str:
    r = t["rates"]
    good, expected = t["calls_ok"]
    path = "pbxlink: AmiProtocol + FrameParser + EventFeed + AmiTracker"

    def row(label: str, rate: float, bold: bool = False) -> str:
        ratio = f"{rate / r['panoramisk']:.2f}x"
        return f"| {label} | {rate:,.0f} | {f'**{ratio}**' if bold else ratio} |"

    if t["declared"]:
        rows = [
            row(f"{path} (the tracker's interest)", r["pbxlink"], bold=True),
            row(f"{path}, every event parsed", r["pbxlink_all"]),
        ]
    else:
        rows = [row(f"{path} (every event parsed)", r["pbxlink"], bold=True)]
    note = (
        "The tracker's declared `interest` lets FrameParser drop the events it ignores unparsed."
        if t["declared"]
        else "The tracker declares no `interest` yet, so every event is parsed and fed to it; declaring "
        "one lets FrameParser drop the events the tracker ignores (most VarSet, Cdr, RTCP, device "
        "states) unparsed."
    )
    return "\n".join(
        [
            "## AMI ingest (`benchmarks/ami_ingest.py`)",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
            f"Command: `.venv/bin/python benchmarks/ami_ingest.py --events {args.events} "
            f"--calls {args.calls} --runs {args.runs}`",
            "",
            f"Stream: {t['events']:,} synthetic Asterisk 22 events ({t['bytes'] / 1e6:.0f} MB, two "
            "`ChanVariable:` per channel event, multibyte caller names, cut inside UTF-8 characters), "
            "blasted over loopback by the simulator in its own process. Median of "
            f"{args.runs} runs, first to last event.",
            "",
            "| path | events/s | vs bare panoramisk |",
            "|---|---:|---:|",
            *rows,
            f"| bare panoramisk 1.4 Manager, `register_event('*', cb)` | {r['panoramisk']:,.0f} | 1.00x |",
            "",
            note,
            "",
            f"Correctness in the same run: every client of every run counted "
            f"{' / '.join(f'{n:,}' for n in t['counted'])} of the {t['events']:,} events sent; "
            f"{good} of {expected} generated calls recorded with the generated disposition, caller "
            f"name and agent; multibyte names intact: {', '.join(t['names'])}. Bare panoramisk "
            f"mangled {t['panoramisk_mangled']} caller names split across reads.",
            "",
            f"Memory: peak RSS of the pbxlink process (AmiAdapter + tracker, nothing else) with "
            f"{m['open']:,} calls up at once: **{m['peak_kb'] / 1024:.0f} MB** "
            f"({m['idle_kb'] / 1024:.0f} MB connected and idle). Target: < 150 MB.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md")
    parser.add_argument("--rss-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        return rss_child(*args.rss_child)
    t = throughput(args.events, args.runs)
    m = memory(args.calls)
    section = report(args, t, m)
    print("\n" + section)
    if not args.no_write:
        write_section("ami_ingest", section)
        print("written to docs/benchmarks.md")


if __name__ == "__main__":
    main()
