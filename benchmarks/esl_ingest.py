"""ESL ingest: events per second from the socket to normalized call events, pbxlink vs bare greenswitch.

    .venv/bin/python benchmarks/esl_ingest.py [--events N] [--runs N] [--no-write]

The ESL simulator runs in a child process and blasts one pre-rendered synthetic stream
(FreeSWITCH 1.10 sofia calls, every event as with `event plain ALL`, multibyte caller names)
at each client that subscribes. In the same run, on one gevent hub:

- pbxlink: EslLink (greenswitch's connect, pbxlink's reader and FrameParser) + EventFeed +
  EslTracker, the link's hot path; in plain, and in json from a json rendering of the same calls;
- bare greenswitch 0.0.19: an InboundESL with a catch-all `register_handle('*', cb)` that counts;
- a reader that only counts bytes: how fast the simulator sends, to show it is not the limit.

Each figure is the median of `--runs`, timed from the `event` command to the last event
handled. The results go to docs/benchmarks.md between markers, leaving the rest alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import socket
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import gevent
import gevent.event
from greenswitch.esl import InboundESL
from results import machine, write_section

from pbxlink.domain.calls import CallEnded, CallEvent
from pbxlink.esl.feed import EventFeed
from pbxlink.esl.frames import Event
from pbxlink.esl.link import EslLink
from pbxlink.esl.simulator import EslSimulator
from pbxlink.esl.simulator import server as simulator_server
from pbxlink.esl.simulator.synthetic import CALLER_NAMES, render_bulk
from pbxlink.esl.tracker import EslTracker
from pbxlink.simulation.timeline import BulkStream

PASSWORD = "bench"
MULTIBYTE = {name for name in CALLER_NAMES if not name.isascii()}


def serve_bulk(blob: bytes, conn: Connection) -> None:
    """The simulator process: blasts `blob` at every client right after its `event` command.

    In one write: the simulator's own cuts (inside every seventh `%XX`, a write each) cap it
    at about 10,000 events/s, below either client, and the figures would measure the sender.
    Reads still end anywhere in a frame; cuts at every byte position are the unit tests' job.
    """
    simulator_server.split_chunks = lambda blob, max_chunk: [blob]

    async def main() -> None:
        sim = EslSimulator(password=PASSWORD, bulk=blob, bulk_close=False, heartbeat=0)
        await sim.start()
        conn.send(sim.port)
        await asyncio.Event().wait()

    asyncio.run(main())


class Run:
    """One client's run: counts events; the clocks start when the client subscribes.

    Not first to last event: greenswitch's reader runs ahead of its handlers, so that would
    leave most of its parsing out. Beside the wall clock, the CPU time of this thread (every
    greenlet of the client runs in it): what the path costs, whatever else the machine does.
    """

    def __init__(self, total: int) -> None:
        self.total, self.count = total, 0
        self.start = self.last = self.cpu_start = self.cpu_last = 0.0
        self.done = gevent.event.Event()

    def begin(self) -> None:
        self.start, self.cpu_start = time.perf_counter(), time.thread_time()

    def tick(self) -> None:
        self.count += 1
        if self.count == self.total:
            self.last, self.cpu_last = time.perf_counter(), time.thread_time()
            self.done.set()

    def settle(self) -> dict[str, Any]:
        if not self.done.wait(600):
            raise SystemExit(f"only {self.count} of {self.total} events arrived")
        gevent.sleep(0.3)  # anything beyond the stream would show up in the count now
        return {
            "rate": self.total / (self.cpu_last - self.cpu_start),
            "wall": self.total / (self.last - self.start),
            "counted": self.count,
        }


def pbxlink_run(port: int, bulk: BulkStream, fmt: str) -> dict[str, Any]:
    tracker = EslTracker("bench")
    ended: list[Any] = []

    def publish(event: CallEvent) -> None:
        if isinstance(event, CallEnded):
            ended.append(event.call)

    feed = EventFeed(tracker, publish, "bench")
    run = Run(bulk.events)

    def on_event(event: Event) -> None:
        feed(event)
        run.tick()

    link = EslLink(
        "127.0.0.1", port, PASSWORD, where="bench", on_event=on_event, timeout=5, command_timeout=600
    )
    link.connect()
    run.begin()
    link.command(f"event {fmt} ALL")
    result = run.settle()
    link.abort("benchmark done")
    return {**result, "ended": ended}


def greenswitch_run(port: int, bulk: BulkStream) -> dict[str, Any]:
    run = Run(bulk.events)
    names: Counter[str] = Counter()

    def on_event(event: Any) -> None:
        if event.headers.get("Event-Name") == "CHANNEL_CREATE":
            names[event.headers.get("Caller-Caller-ID-Name", "")] += 1
        run.tick()

    esl = InboundESL("127.0.0.1", port, PASSWORD)
    esl.connect()
    esl.register_handle("*", on_event)
    run.begin()
    esl.send("event plain ALL")
    result = run.settle()
    esl.stop()
    mangled = sum(n for name, n in names.items() if name not in CALLER_NAMES)
    return {**result, "mangled": mangled}


def sender_run(port: int, bulk: BulkStream) -> dict[str, Any]:
    """How fast the simulator sends: a reader that only counts bytes."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.recv(4096)
        sock.sendall(f"auth {PASSWORD}\n\n".encode())
        sock.recv(4096)
        start, got = time.perf_counter(), 0
        sock.sendall(b"event plain ALL\n\n")
        while got < len(bulk.blob):
            got += len(sock.recv(262144))
        rate = bulk.events / (time.perf_counter() - start)
        return {"rate": rate, "wall": rate}


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


@contextlib.contextmanager
def simulator(blob: bytes) -> Iterator[int]:
    """The simulator in a child process, blasting `blob`; yields its port."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=serve_bulk, args=(blob, child), daemon=True)
    server.start()
    try:
        yield parent.recv()
    finally:
        server.terminate()
        server.join()


def throughput(events: int, runs: int) -> dict[str, Any]:
    """Every path once per round, so that each round's figures saw the same machine."""
    print(f"rendering {events:,} synthetic events in plain and in json …", flush=True)
    plain = render_bulk(events, seed=1)
    as_json = render_bulk(events, seed=1, fmt="json")
    results: dict[str, list[dict[str, Any]]] = {
        "pbxlink": [],
        "pbxlink_json": [],
        "greenswitch": [],
        "sender": [],
    }
    with simulator(plain.blob) as port, simulator(as_json.blob) as json_port:
        for _ in range(runs):
            results["pbxlink"].append(pbxlink_run(port, plain, "plain"))
            results["greenswitch"].append(greenswitch_run(port, plain))
            results["pbxlink_json"].append(pbxlink_run(json_port, as_json, "json"))
            results["sender"].append(sender_run(port, plain))
            print(", ".join(f"{k} {v[-1]['rate']:,.0f}/s" for k, v in results.items()), flush=True)
    good, expected, names = check_calls(plain, results["pbxlink"][-1]["ended"])
    good_json, _, names_json = check_calls(as_json, results["pbxlink_json"][-1]["ended"])

    def ratio(key: str, figure: str) -> float:
        """The median of each round's ratio to greenswitch, which the machine's ups and downs affect least."""
        pairs = zip(results[key], results["greenswitch"], strict=True)
        return statistics.median(ours[figure] / bare[figure] for ours, bare in pairs)

    return {
        "events": plain.events,
        "bytes": len(plain.blob),
        "rates": {k: statistics.median(r["rate"] for r in v) for k, v in results.items()},
        "walls": {k: statistics.median(r["wall"] for r in v) for k, v in results.items()},
        "ratios": {
            k: (ratio(k, "rate"), ratio(k, "wall")) for k in ("pbxlink", "pbxlink_json", "greenswitch")
        },
        "counted": sorted({r["counted"] for k, v in results.items() if k != "sender" for r in v}),
        "calls_ok": (good, good_json, expected),
        "names": sorted(names & names_json),
        "greenswitch_mangled": results["greenswitch"][-1]["mangled"],
    }


def report(args: argparse.Namespace, t: dict[str, Any]) -> str:
    r, w = t["rates"], t["walls"]
    good, good_json, expected = t["calls_ok"]
    path = "pbxlink: EslLink + FrameParser + EventFeed + EslTracker"

    def row(label: str, key: str, bold: bool = False) -> str:
        ratio, wall = (f"{x:.2f}x" for x in t["ratios"][key])
        return f"| {label} | {r[key]:,.0f} | {f'**{ratio}**' if bold else ratio} | {w[key]:,.0f} | {wall} |"

    return "\n".join(
        [
            "## ESL ingest (`benchmarks/esl_ingest.py`)",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
            f"Command: `.venv/bin/python benchmarks/esl_ingest.py --events {args.events} --runs {args.runs}`",
            "",
            f"Stream: {t['events']:,} synthetic FreeSWITCH 1.10 events of sofia calls "
            f"({t['bytes'] / 1e6:.0f} MB, every event as with `event plain ALL`, multibyte caller names), "
            "blasted over loopback in one write by the ESL simulator in its own process (its own cuts "
            "inside `%XX` would make the sender the limit). Median of "
            f"{args.runs} rounds (each path once per round; a ratio is the median of the rounds' ratios), "
            "from the `event` command to the last event handled, on one gevent hub.",
            "",
            "| path | events per CPU second | vs bare greenswitch | events/s, wall clock | vs bare |",
            "|---|---:|---:|---:|---:|",
            row(f"{path} (`event plain`)", "pbxlink", bold=True),
            row(f"{path} (`event json`, the same calls)", "pbxlink_json"),
            row("bare greenswitch 0.0.19 InboundESL, `register_handle('*', cb)`", "greenswitch"),
            f"| a reader that only counts bytes (how fast the simulator sends) | | | {w['sender']:,.0f} | |",
            "",
            "CPU seconds are those of the client's thread (all its greenlets), from the `event` command "
            "to the last event: unlike the wall clock they do not count the time the machine gave to "
            "others, and the ratio is taken from them. greenswitch only counts the events it parsed; "
            "pbxlink decodes each to the tracker's dict and tracks the calls.",
            "",
            f"Correctness in the same run: every client of every run counted "
            f"{' / '.join(f'{n:,}' for n in t['counted'])} of the {t['events']:,} events sent; "
            f"{good} (plain) and {good_json} (json) of {expected} generated calls recorded with the "
            f"generated disposition, caller name and agent; multibyte names intact: {', '.join(t['names'])}. "
            f"Bare greenswitch mangled {t['greenswitch_mangled']} caller names.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md")
    args = parser.parse_args()
    section = report(args, throughput(args.events, args.runs))
    print("\n" + section)
    if not args.no_write:
        write_section("esl_ingest", section)
        print("written to docs/benchmarks.md")


if __name__ == "__main__":
    main()
