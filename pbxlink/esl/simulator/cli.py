"""`python -m pbxlink.esl.simulator`: the ESL simulator as a standalone server, for demos and benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path

from pbxlink.esl.simulator.server import EslSimulator
from pbxlink.esl.simulator.synthetic import SyntheticPbx, TrafficMix, render_bulk

log = logging.getLogger("pbxlink.esl.simulator")


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s"
    )
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
    try:
        asyncio.run(_serve(sim, args.calls_per_minute, args.long_lived))
    except KeyboardInterrupt:
        log.info("stopped")


async def _serve(sim: EslSimulator, calls_per_minute: float, long_lived: int) -> None:
    async with sim:
        if long_lived:
            sim.spawn(sim.play_timelines(sim.synthetic.long_lived(long_lived, time.time()), speed=0))
        if calls_per_minute > 0:
            sim.start_traffic(calls_per_minute)
        await asyncio.Event().wait()


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
    p.add_argument("--speed", type=float, default=1.0, help="replay speed factor (0: as fast as possible)")
    p.add_argument("--agents", type=int, default=10, help="agents of the generated traffic (201, 202, …)")
    p.add_argument("--calls-per-minute", type=float, default=0.0, help="generated calls per minute (0: none)")
    p.add_argument(
        "--mix",
        default="",
        help="call mix, e.g. answered=4,no_answer=1,busy=1,"
        "queue_answered=3,queue_abandoned=1,agent_hangs_up=0.5,recorded=0.5",
    )
    p.add_argument(
        "--long-lived", type=int, default=0, help="this many answered calls kept up for good (memory tests)"
    )
    p.add_argument("--seed", type=int, help="random seed of the generated traffic")
    p.add_argument("--heartbeat", type=float, default=20.0, help="seconds between HEARTBEAT events (0: none)")
    p.add_argument(
        "--bulk-events",
        type=int,
        default=0,
        help="benchmark mode: blast this many generated events to each client once it subscribes",
    )
    p.add_argument(
        "--bulk-format", choices=("plain", "json"), default="plain", help="format of the bulk stream"
    )
    p.add_argument(
        "--bulk-close",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="close the connection once the bulk stream is sent",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every command")
    return p
