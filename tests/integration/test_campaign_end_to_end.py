"""A campaign as a manager runs it from cron, against each PBX simulator: `pbxlink campaign create`,
`import`, `dnc add`, `start`, and `pbxlink run` doing the dialling — killed with SIGKILL half-way and
started again. Nobody is dialled twice, outside their own calling window or on the do-not-call list,
and the pace holds across the restart.

Real parts throughout: the pbxlink processes, the simulator over TCP (which writes down every call it
was asked to place, with the originate's tag), SQLite shared by the CLI and the service.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from pbxlink.ami.simulator import AmiSimulator
from pbxlink.esl.simulator import EslSimulator
from pbxlink.simulation.thread import SimulatorThread
from pbxlink.storage.database import connect
from pbxlink.storage.models import Campaign, CampaignAttempt, CampaignContact

PBXLINK = str(Path(sys.executable).with_name("pbxlink"))
SECRET = "campaign-e2e"
PER_MINUTE = 120  # one dial every 0.5 s
OPEN, CLOSED, BLOCKED = 16, 3, 2  # contacts in a zone whose window is open now, closed now, on the DNC list


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], object], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{log.read_text()[-4000:]}"
        time.sleep(0.1)


def zones_now() -> tuple[str, str]:
    """A zone where it is about noon now (the window open) and one where it is about midnight (closed)."""
    hour = datetime.now(UTC).hour
    noon = 12 - hour  # the UTC offset that makes it noon there
    midnight = noon - 12 if noon > 0 else noon + 12
    return _etc(noon), _etc(midnight)


def _etc(offset: int) -> str:
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX signs: Etc/GMT-3 is UTC+3


SIMULATORS: dict[str, tuple[Callable[[], Any], str]] = {
    "asterisk": (lambda: AmiSimulator(secret=SECRET, call_speed=2.0), "asterisk"),
    "freeswitch": (lambda: EslSimulator(password=SECRET, call_speed=2.0), "freeswitch"),
}


@pytest.fixture(params=sorted(SIMULATORS))
def pbx(request: pytest.FixtureRequest) -> Iterator[tuple[SimulatorThread, str]]:
    make, kind = SIMULATORS[request.param]
    thread = SimulatorThread(make())
    thread.start()
    yield thread, kind
    thread.stop()


class Site:
    """The config, the CLI, and one `pbxlink run` process at a time."""

    def __init__(self, folder: Path, sim: SimulatorThread, kind: str) -> None:
        self.folder, self.web = folder, free_port()
        self.config = folder / "pbxlink.toml"
        self.log = folder / "pbxlink.log"
        self.config.write_text(
            f'[database]\nurl = "sqlite:///{folder}/pbxlink.db"\n'
            f'[web]\nlisten = "127.0.0.1:{self.web}"\n'
            f'[[pbx]]\nname = "main"\ntype = "{kind}"\nhost = "127.0.0.1"\nport = {sim.port}\n'
            + 'username = "pbxlink"\n'
            + f'secret = "{SECRET}"\nping_interval = 2\n'
        )
        self.proc: subprocess.Popen[str] | None = None

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [PBXLINK, "--config", str(self.config), *args], capture_output=True, text=True, timeout=60
        )
        assert out.returncode in (0, 1), out.stderr
        return out.stdout

    def start(self) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [PBXLINK, "--config", str(self.config), "run"],
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{self.web}/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


@pytest.mark.timeout(240)
def test_a_campaign_killed_half_way_resumes_without_dialling_anyone_twice(
    tmp_path: Path, pbx: tuple[SimulatorThread, str]
) -> None:
    sim, kind = pbx
    site = Site(tmp_path, sim, kind)
    open_zone, closed_zone = zones_now()
    numbers = (f"+1212555{i:04d}" for i in itertools.count(100))
    rows = [(next(numbers), f"Open {i}", open_zone, f"note {i}") for i in range(OPEN)]
    rows += [(next(numbers), f"Closed {i}", closed_zone, "") for i in range(CLOSED)]
    blocked = [next(numbers) for _ in range(BLOCKED)]
    rows += [(n, "Blocked", open_zone, "") for n in blocked]
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text("Phone,Full name,Timezone,Note\n" + "".join(f"{','.join(r)}\n" for r in rows))

    assert "applied migrations" in site.cli("initdb")
    site.cli(
        "campaign", "create", "reminders", "--pbx", "main", "--message", "custom/reminder",
        "--timezone", "UTC", "--days", "*", "--hours", "00:00-24:00", "--window", "09:00-20:00",
        "--per-minute", str(PER_MINUTE), "--max-concurrent", "4", "--retry", "busy=60:3",
    )  # fmt: skip
    imported = site.cli("campaign", "import", "reminders", str(csv_file))
    assert f"{len(rows)} rows" in imported.replace(",", "")
    for number in blocked:
        site.cli("dnc", "add", number, "--reason", "asked not to be called")
    site.start()
    site.cli("campaign", "start", "reminders")
    connect(f"sqlite:///{tmp_path}/pbxlink.db")

    def dialled() -> int:
        return CampaignAttempt.select().count()

    wait_for(lambda: dialled() >= OPEN // 2, 60, "half the contacts dialled", site.log)
    site.kill()  # mid-campaign: calls under way, contacts claimed
    killed_at = dialled()
    time.sleep(1.0)
    site.start()

    def settled() -> bool:
        open_left = CampaignContact.select().where(CampaignContact.status.in_(("pending", "dialing")))
        return (
            open_left.count() == CLOSED
            and not CampaignAttempt.select().where(CampaignAttempt.ended_at.is_null()).exists()
        )

    wait_for(settled, 120, "every open contact done", site.log)
    status = site.cli("campaign", "status", "reminders")
    site.stop()

    placed = [e for e in sim.sim.synthetic.history if e.origin]
    tags = {a.tag: a.contact.number for a in CampaignAttempt.select(CampaignAttempt, CampaignContact).join(
        CampaignContact)}  # fmt: skip
    assert {e.origin for e in placed} <= set(tags), "the PBX placed a call pbxlink has no record of"
    per_number = Counter(tags[e.origin] for e in placed if e.origin in tags)
    opened = {r[0] for r in rows[:OPEN]}
    assert set(per_number) == opened, "every contact in an open window, and only those, was dialled"
    assert max(per_number.values()) == 1, f"dialled twice: {per_number.most_common(3)}"
    assert killed_at < OPEN
    statuses = Counter(k.status for k in CampaignContact.select())
    assert statuses == {"done": OPEN, "pending": CLOSED, "dnc": BLOCKED}
    starts = sorted(a.started_at for a in CampaignAttempt.select())
    # Dials go out on a grid of slots 0.5 s apart (a late one does not push the grid): in any 5 s
    # at most 10 dials, and one more when the window starts right on a slot.
    busiest = max(sum(1 for t in starts if s <= t < s + timedelta(seconds=5)) for s in starts)
    assert busiest <= 5 * PER_MINUTE / 60 + 1, "the pace was exceeded"
    assert Campaign.get().status == "running"  # the closed-window contacts still wait for their morning
    assert f"contacts {len(rows)}" in status and f"{CLOSED} waiting" in status
    closed = CampaignContact.select().where(CampaignContact.status == "pending")
    tomorrowish = datetime.now(UTC) + timedelta(hours=6)
    assert all(k.next_at is not None and k.next_at > tomorrowish for k in closed)
