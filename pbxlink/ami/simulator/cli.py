"""`python -m pbxlink.ami.simulator`: the AMI simulator as a standalone server, for demos and benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from pbxlink.ami.simulator.server import AmiSimulator
from pbxlink.ami.simulator.synthetic import SyntheticPbx, TrafficMix, render_bulk

log = logging.getLogger("pbxlink.ami.simulator")


def main(argv: list[str] | None = None) -> None:
    """`python -m pbxlink.ami.simulator`: serve until interrupted."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s"
    )
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
    try:
        asyncio.run(_serve(sim, args.calls_per_minute))
    except KeyboardInterrupt:
        log.info("stopped")


async def _serve(sim: AmiSimulator, calls_per_minute: float) -> None:
    async with sim:
        if calls_per_minute > 0:
            sim.start_traffic(calls_per_minute)
        await asyncio.Event().wait()


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
    p.add_argument("--speed", type=float, default=1.0, help="replay speed factor (0: as fast as possible)")
    p.add_argument("--agents", type=int, default=10, help="agents of the generated traffic (201, 202, …)")
    p.add_argument("--calls-per-minute", type=float, default=0.0, help="generated calls per minute (0: none)")
    p.add_argument(
        "--mix",
        default="",
        help="call mix, e.g. answered=4,no_answer=1,busy=1,"
        "queue_answered=3,queue_abandoned=1,agent_hangs_up=0.5,recorded=0.5",
    )
    p.add_argument("--seed", type=int, help="random seed of the generated traffic")
    p.add_argument(
        "--bulk-events",
        type=int,
        default=0,
        help="benchmark mode: blast this many generated events to each client after login",
    )
    p.add_argument(
        "--bulk-close",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="close the connection once the bulk stream is sent",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every action")
    return p
