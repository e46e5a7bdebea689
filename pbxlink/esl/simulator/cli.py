"""`python -m pbxlink.esl.simulator`: the ESL simulator as a standalone server, for demos and benchmarks."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from pbxlink.esl.simulator.server import EslSimulator
from pbxlink.esl.simulator.synthetic import SyntheticPbx, TrafficMix, render_bulk
from pbxlink.simulation.cli import add_traffic_options, run, setup_logging

log = logging.getLogger("pbxlink.esl.simulator")


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted."""
    args = _parser().parse_args(argv)
    setup_logging(args)
    bulk = None
    if args.bulk_events:
        stream = render_bulk(args.bulk_events, agents=args.agents, fmt=args.bulk_format)
        bulk = stream.blob
        print(f"bulk stream: {stream.events} events, {len(bulk)} bytes", flush=True)
    sim = EslSimulator(
        host=args.host,
        port=args.port,
        password=args.password,
        synthetic=SyntheticPbx(args.agents, TrafficMix.parse(args.mix), seed=args.seed),
        replay=args.replay,
        replay_speed=args.speed,
        bulk=bulk,
        bulk_close=args.bulk_close,
        heartbeat=args.heartbeat,
    )

    def keep_calls_up(_: object) -> None:
        if args.long_lived:
            sim.spawn(sim.play_timelines(sim.synthetic.long_lived(args.long_lived, time.time()), speed=0))

    run(args, sim, keep_calls_up)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pbxlink.esl.simulator",
        description="An inbound ESL server that behaves like FreeSWITCH 1.10: replays real captures "
        "or generates calls.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8021, help="TCP port (0: pick a free one)")
    p.add_argument("--password", default="ClueCon", help="the event_socket.conf password to accept")
    p.add_argument(
        "--replay",
        type=Path,
        help="a capture (.esl or .json.esl, with its .io.jsonl) to replay once the first client subscribes",
    )
    p.add_argument(
        "--long-lived", type=int, default=0, help="this many answered calls kept up for good (memory tests)"
    )
    p.add_argument("--heartbeat", type=float, default=20.0, help="seconds between HEARTBEAT events (0: none)")
    p.add_argument(
        "--bulk-format", choices=("plain", "json"), default="plain", help="format of the bulk stream"
    )
    add_traffic_options(p, bulk_when="once it subscribes")
    return p
