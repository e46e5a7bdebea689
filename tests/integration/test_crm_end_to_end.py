"""`pbxlink run` as an admin runs it, with a CRM: the caller's name on the phone from the CRM over
FastAGI, and every call logged in the CRM exactly once through a CRM outage and a pbxlink restart.

Real parts throughout: the pbxlink process, the AMI simulator over TCP, a real redis-server
for the lookup cache, and a local server answering as HubSpot's API does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pbxlink.ami.simulator import AmiSimulator, SimulatorThread
from pbxlink.ami.simulator.synthetic import SyntheticPbx
from pbxlink.simulation.traffic import TrafficMix
from pbxlink.storage import callbacks
from pbxlink.storage.calls import CallFilter, search_calls
from pbxlink.storage.database import connect
from tests.crm.fake import Reply
from tests.crm.fake_hubspot import PORTAL_ID, TOKEN, FakeHubSpot

PBXLINK = str(Path(sys.executable).with_name("pbxlink"))
SECRET = "e2e-crm-secret"
ENV_BLOCK = (
    "agi_network: yes\nagi_network_script: lookup?num=%2B15557770105\n"
    "agi_request: agi://127.0.0.1/lookup?num=%2B15557770105\nagi_channel: Local/105@incoming-0000000f;2\n"
    "agi_uniqueid: 1795435635.31\nagi_callerid: +15557770105\nagi_calleridname: unknown\n\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pbx() -> Iterator[SimulatorThread]:
    quick = TrafficMix(ring=(0.2, 0.6), talk=(0.2, 0.8), queue_abandoned=0.5)
    thread = SimulatorThread(
        AmiSimulator(secret=SECRET, timestampevents=True, synthetic=SyntheticPbx(agents=6, mix=quick, seed=4))
    )
    thread.start()
    yield thread
    thread.stop()


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        fake.add_contact(firstname="ACME", lastname="Corp", phone="+1 (555) 777-0105", company="ACME")
        yield fake


class Pbxlink:
    """One `pbxlink run` process on a config file; start, stop (SIGTERM) and start again."""

    def __init__(self, config: Path, web: int, agi: int, env: dict[str, str]) -> None:
        self.config, self.web, self.agi, self.env = config, web, agi, env
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.log = (self.config.parent / "pbxlink.log").open("a")
        self.proc = subprocess.Popen(
            [PBXLINK, "--config", str(self.config), "run"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, self.output()
            try:
                if requests.get(f"http://127.0.0.1:{self.web}/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.log.close()

    def output(self) -> str:
        return (self.config.parent / "pbxlink.log").read_text()


@pytest.fixture
def site(
    tmp_path: Path, pbx: SimulatorThread, hubspot: FakeHubSpot, redis_cache_url: str
) -> Iterator[Pbxlink]:
    web, agi = free_port(), free_port()
    config = tmp_path / "pbxlink.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/pbxlink.db"\n'
        f'[web]\nlisten = "127.0.0.1:{web}"\n'
        f'[redis]\nurl = "{redis_cache_url}"\n'
        f'[agi]\nlisten = "127.0.0.1:{agi}"\nbudget = 1.0\n'
        "[outbox]\nretry_delays = [0.5, 1]\n"
        f'[[pbx]]\nname = "main"\nhost = "127.0.0.1"\nport = {pbx.port}\n'
        f'username = "pbxlink"\nsecret = "{SECRET}"\nping_interval = 2\n'
        f'[[crm]]\nname = "hubspot"\ntype = "hubspot"\nportal_id = "{PORTAL_ID}"\n'
        f'api_url = "{hubspot.url}"\ntimeout = 1\n'
        '[[callback_policy]]\nname = "website"\nmatch = { source = "web" }\n'
        'order = "customer_first"\nqueue = "600"\n'
    )
    # the token only in the environment, as the docs advise
    service = Pbxlink(config, web, agi, {"PBXLINK_CRM_HUBSPOT_TOKEN": TOKEN})
    try:
        service.start()
        yield service
    finally:
        service.stop()
    assert TOKEN not in service.output()


def agi_lookup(port: int) -> list[str]:
    """Play Asterisk's side of `AGI(agi://…/lookup?num=+15557770105)`; the commands pbxlink sent."""
    sent: list[str] = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(ENV_BLOCK.encode())
        reader = sock.makefile("rb")
        while line := reader.readline():
            sent.append(line.decode().rstrip("\n"))
            sock.sendall(b"200 result=1\n")
    return sent


def ended_external_calls() -> set[str]:
    rows, _ = search_calls(CallFilter(), limit=10_000)
    return {f"{r['pbx']}:{r['call_id']}" for r in rows if r["ended_at"] and r["direction"] != "internal"}


def wait_for(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_the_crm_names_the_caller_on_the_phone(site: Pbxlink) -> None:
    sent = agi_lookup(site.agi)
    assert sent[0] == 'SET VARIABLE CALLERID(name) "ACME Corp"'
    assert 'SET VARIABLE PBXLINK_LOOKUP "hit"' in sent


def test_every_call_is_logged_once_through_a_crm_outage_and_a_restart(
    site: Pbxlink, pbx: SimulatorThread, hubspot: FakeHubSpot, tmp_path: Path
) -> None:
    hubspot.fail_next(Reply(503, {"status": "error", "message": "Service Unavailable"}), times=1_000_000)
    pbx.start_traffic(240)
    time.sleep(5)
    pbx.stop_traffic()
    database = connect(f"sqlite:///{tmp_path}/pbxlink.db")
    try:
        rows = lambda: search_calls(CallFilter(), limit=10_000)[0]  # noqa: E731
        wait_for(lambda: rows() and all(r["ended_at"] for r in rows()), 30, "every call to end")
        calls = ended_external_calls()
        assert len(calls) >= 5
        site.stop()  # pbxlink restarts while the CRM is still down
        assert hubspot.engagements == {}
        site.start()
        hubspot.faults.clear()  # the CRM is back
        logged = lambda: [e["properties"].get("hs_call_external_id") for e in hubspot.engagements.values()]  # noqa: E731
        wait_for(lambda: len(logged()) >= len(calls), 60, "every call to be logged")
        time.sleep(2)  # anything more would be a duplicate
        assert sorted(logged()) == sorted(calls)  # each call once, and only the calls that ended
    finally:
        database.close()


def test_the_website_form_reaches_the_running_callbacks(site: Pbxlink, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{site.web}/api/v1/callback-requests"
    first = requests.post(url, json={"number": "+1 415 555 2671", "name": "Ada"}, timeout=5)
    again = requests.post(url, json={"number": "(415) 555-2671"}, timeout=5)
    bad = requests.post(url, json={"number": "+14155552671\r\nAction: Originate"}, timeout=5)
    assert (first.status_code, first.json()["status"]) == (201, "scheduled")
    assert (again.status_code, again.json()) == (200, {"status": "already scheduled"})
    assert bad.status_code == 400 and "number" in bad.json()["error"]
    database = connect(f"sqlite:///{tmp_path}/pbxlink.db")
    try:
        (cb,), total = callbacks.page(None, 10)
        assert (total, cb.number, cb.name, cb.source) == (1, "+14155552671", "Ada", "web")
    finally:
        database.close()
