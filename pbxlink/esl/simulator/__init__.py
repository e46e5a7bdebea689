"""The ESL simulator: a real TCP server that speaks inbound ESL as FreeSWITCH 1.10.12 does.

It replays the real captures (`capture`, `player`) or generates call traffic on sofia channels
(`synthetic`, with `scenarios`, `originated`, `broadcast`, `sofia`, `callcenter`, `legs` and
`flow`), answers commands (`session`, `subscription`, `commands`, `api`, `originate`) from its
live channel table (`channels`, acted on by `switchboard` and `kill`), in the wire formats of
`event`, `wire` and `stamp`. The demo, the tests and the benchmark run pbxlink against it;
`python -m pbxlink.esl.simulator` serves it.
"""

from pbxlink.esl.simulator.server import EslSimulator
from pbxlink.simulation.thread import SimulatorThread

__all__ = ["EslSimulator", "SimulatorThread"]
