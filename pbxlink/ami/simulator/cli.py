"""`python -m pbxlink.ami.simulator`: the AMI simulator as a standalone server, for demos and benchmarks."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pbxlink.ami.simulator.server import AmiSimulator
from pbxlink.ami.simulator.synthetic import SyntheticPbx, TrafficMix, render_bulk
from pbxlink.simulation.cli import add_traffic_options, run, setup_logging

log = logging.getLogger("pbxlink.ami.simulator")


def main(argv: list[str] | None = None) -> None:
    """`python -m pbxlink.ami.simulator`: serve until interrupted."""
    args = _parser().parse_args(argv)
    setup_logging(args)
    bulk = None
    if args.bulk_events:
        stream = render_bulk(args.bulk_events, agents=args.agents, timestamps=args.timestamps)
        bulk = stream.blob
        print(f"bulk stream: {stream.events} events, {len(bulk)} bytes", flush=True)
    sim = AmiSimulator(
        host=args.host,
        port=args.port,
        username=args.username,
        secret=args.secret,
        timestampevents=args.timestamps,
        read=args.read,
        write=args.write,
        synthetic=SyntheticPbx(args.agents, TrafficMix.parse(args.mix), seed=args.seed),
        replay=args.replay,
        replay_speed=args.speed,
        bulk=bulk,
        bulk_close=args.bulk_close,
    )
    run(args, sim)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pbxlink.ami.simulator",
        description="An AMI server that behaves like Asterisk 22: replays real captures or generates calls.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=5038, help="TCP port (0: pick a free one)")
    p.add_argument("--username", default="pbxlink", help="the manager.conf user to accept")
    p.add_argument("--secret", required=True, help="its secret")
    p.add_argument(
        "--timestamps",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="timestampevents: a Timestamp header on every event (default: off, as in Asterisk)",
    )
    p.add_argument("--read", default="all", help="read permission classes, e.g. system,call,agent,user")
    p.add_argument("--write", default="all", help="write permission classes")
    p.add_argument(
        "--replay",
        type=Path,
        help="a capture (.ami with its .jsonl/.timing.jsonl) to replay once the first client has logged in",
    )
    add_traffic_options(p, bulk_when="after login")
    return p
