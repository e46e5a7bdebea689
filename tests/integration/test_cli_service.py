"""`pbxlink check` and `pbxlink demo` run as an admin runs them: real processes, real sockets."""

from __future__ import annotations

import json
import re
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

PBXLINK = str(Path(sys.executable).with_name("pbxlink"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, port: int, secret: str) -> Path:
    path = tmp_path / "pbxlink.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/db.sqlite"\n'
        f'[[pbx]]\nname = "main"\nhost = "127.0.0.1"\nport = {port}\n'
        f'username = "pbxlink"\nsecret = "{secret}"\n'
    )
    return path


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    thread = SimulatorThread(AmiSimulator(secret="right-secret", timestampevents=True))
    thread.start()
    yield thread
    thread.stop()


def check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PBXLINK, "--config", str(config), "check"], capture_output=True, text=True, timeout=30
    )


def test_check_says_all_good_and_exits_zero(tmp_path: Path, sim: SimulatorThread) -> None:
    out = check(write_config(tmp_path, sim.port, "right-secret"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all good" in out.stdout and "FAIL" not in out.stdout
    assert "right-secret" not in out.stdout + out.stderr


def test_check_names_a_wrong_secret_and_exits_non_zero(tmp_path: Path, sim: SimulatorThread) -> None:
    out = check(write_config(tmp_path, sim.port, "wrong-secret"))
    assert out.returncode == 1
    assert re.search(r"FAIL main: login as pbxlink: authentication failed", out.stdout), out.stdout
    assert "wrong-secret" not in out.stdout + out.stderr


def test_check_says_connection_refused(tmp_path: Path) -> None:
    port = free_port()
    out = check(write_config(tmp_path, port, "x"))
    assert out.returncode == 1 and f"connection refused by 127.0.0.1:{port}" in out.stdout
    assert "Traceback" not in out.stderr


def test_check_covers_freeswitch(tmp_path: Path) -> None:
    from pbxlink.esl.simulator import EslSimulator
    from pbxlink.esl.simulator import SimulatorThread as EslThread

    with EslThread(EslSimulator(password="fs-secret")) as fs:
        good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
        for path, secret in ((good, "fs-secret"), (bad, "wrong")):
            path.write_text(
                f'[database]\nurl = "sqlite:///{tmp_path}/db.sqlite"\n'
                f'[[pbx]]\nname = "fs"\ntype = "freeswitch"\nhost = "127.0.0.1"\nport = {fs.port}\n'
                f'username = "pbxlink"\nsecret = "{secret}"\n'
            )
        ok, failed = check(good), check(bad)
    assert ok.returncode == 0 and "FreeSWITCH Version 1.10.12" in ok.stdout, ok.stdout
    assert failed.returncode == 1 and "FAIL" in failed.stdout and "wrong" not in failed.stdout


@pytest.mark.parametrize("pbx", ["asterisk", "freeswitch"])
def test_demo_serves_the_panel_and_records_calls(tmp_path: Path, pbx: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            PBXLINK,
            "demo",
            "--pbx",
            pbx,
            "--dir",
            str(tmp_path),
            "--listen",
            f"127.0.0.1:{port}",
            "--calls-per-minute",
            "240",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = ""
        deadline = time.monotonic() + 30
        while "login  admin / " not in banner:
            assert time.monotonic() < deadline and proc.poll() is None, banner
            banner += proc.stdout.readline()  # type: ignore[union-attr]
        password = banner.split("login  admin / ")[1].split()[0]
        assert f"http://127.0.0.1:{port}/" in banner
        session = requests.Session()
        page = session.get(f"http://127.0.0.1:{port}/login", timeout=5)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        assert token, page.text
        home = session.post(
            f"http://127.0.0.1:{port}/login",
            data={"username": "admin", "password": password, "csrf_token": token.group(1)},
            timeout=5,
        )
        assert home.status_code == 200 and "login" not in home.url
        calls: list[dict[str, object]] = []
        while not any(c["ended_at"] for c in calls):
            assert time.monotonic() < deadline + 30, "no call ended in the demo"
            time.sleep(0.5)
            calls = session.get(f"http://127.0.0.1:{port}/api/v1/calls", timeout=5).json()["calls"]
        listed = subprocess.run(
            [PBXLINK, "--config", str(tmp_path / "pbxlink.toml"), "calls", "--json"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert listed.returncode == 0 and json.loads(listed.stdout.splitlines()[0])["pbx"] == "demo"
        assert f"simulated {'FreeSWITCH' if pbx == 'freeswitch' else 'Asterisk'}" in banner
        (campaign,) = session.get(f"http://127.0.0.1:{port}/api/v1/campaigns", timeout=5).json()["campaigns"]
        assert (campaign["name"], campaign["status"], campaign["progress"]["contacts"]) == (
            "demo-reminders",
            "draft",
            40,
        )
        started = subprocess.run(
            [PBXLINK, "--config", str(tmp_path / "pbxlink.toml"), "campaign", "start", "demo-reminders"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert started.returncode == 0, started.stderr
        url = f"http://127.0.0.1:{port}/api/v1/campaigns/{campaign['id']}"
        while session.get(url, timeout=5).json()["progress"]["answered"] < 1:
            assert time.monotonic() < deadline + 60, "the demo campaign reached nobody"
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
