"""The AMI simulator: a real TCP server that speaks AMI as Asterisk 22 does.

It replays the real captures (`capture`, `player`) or generates call traffic (`synthetic`,
with `builder`, `flow`, `scenarios`, `callbacks` and `broadcast`), and answers actions
(`session`, `actions`, `lists`, `commands`) from its live channel table (`channels`). The
demo, the tests and the benchmark run pbxlink against it; `python -m pbxlink.ami.simulator`
serves it.
"""

from pbxlink.ami.simulator.server import AmiSimulator
from pbxlink.simulation.thread import SimulatorThread

__all__ = ["AmiSimulator", "SimulatorThread"]
