"""The command-line side both simulators share: traffic and bulk options, logging, serving."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from pbxlink.simulation.server import SimulatorServer

log = logging.getLogger("pbxlink.simulation")


def add_traffic_options(p: argparse.ArgumentParser, bulk_when: str) -> None:
    """Generated traffic, its mix and seed, the benchmark's bulk stream, and verbosity."""
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
        help=f"benchmark mode: blast this many generated events to each client {bulk_when}",
    )
    p.add_argument(
        "--bulk-close",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="close the connection once the bulk stream is sent",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every action or command")


def run(
    args: argparse.Namespace,
    sim: SimulatorServer,
    before: Callable[[SimulatorServer], Coroutine[Any, Any, None] | None] | None = None,
) -> None:
    """Serve until interrupted, with the generated traffic asked for; `before` runs once listening."""

    async def serve() -> None:
        async with sim:
            if before is not None and (started := before(sim)) is not None:
                await started
            if args.calls_per_minute > 0:
                sim.start_traffic(args.calls_per_minute)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        log.info("stopped")


def setup_logging(args: argparse.Namespace) -> None:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s"
    )
