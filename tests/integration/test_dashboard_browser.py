"""The dashboard in real headless Chromium, changing as calls come from the AMI simulator.

AMI simulator (real TCP) → AmiAdapter → in-process bus → call log + the dashboard's live view →
the panel served by waitress → a supervisor's page, which is never reloaded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from pbxlink.web import create_app
from pbxlink.web.server import make_server, urls_of

from pbxlink.ami.adapter import AmiAdapter
from pbxlink.ami.simulator import AmiSimulator, SimulatorThread
from pbxlink.ami.simulator.builder import CallBuilder
from pbxlink.ami.simulator.flow import Answer, Caller
from pbxlink.ami.simulator.scenarios import queue_call
from pbxlink.config import Config, DatabaseConfig, PbxConfig, WebConfig
from pbxlink.simulation.timeline import CallTimeline
from pbxlink.storage import users
from pbxlink.storage.users import create_user
from tests.integration.browser import pytestmark, sync_api  # noqa: F401  (the marks)
from tests.integration.site import Site

SECRET = "dashboard-secret"
PASSWORD = "long enough"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "dashboard.png"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setenv("TZ", "UTC")
    site = Site(tmp_path / "pbxlink.db")
    create_user("sue", PASSWORD, role="supervisor")
    create_user("ann", PASSWORD, extension="201")
    create_user("bob", PASSWORD, extension="202")
    sim, _ = site.connect(
        AmiSimulator(secret=SECRET, timestampevents=True),
        AmiAdapter,
        lambda host, port: PbxConfig("main", "asterisk", host, port, "pbxlink", SECRET),
    )
    url = f"sqlite:///{tmp_path}/pbxlink.db"
    app = create_app(Config(None, DatabaseConfig(url), WebConfig(), pbx=(), data_dir=tmp_path), site.bus)
    app.config["SSE_HEARTBEAT_SECONDS"] = 0.5  # streams notice a closed browser quickly, so teardown is quick
    server = make_server(app, "127.0.0.1", 0, threads=8)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    yield {"base": urls_of(server)[0].rstrip("/"), "sim": sim}
    server.task_dispatcher.shutdown(timeout=3)
    server.close()
    thread.join(timeout=3)
    site.close()


def play(sim: SimulatorThread, number: str, answer: Answer | None, abandon_after: float = 30.0) -> None:
    """The simulator plays one call into queue `support`, ringing 201 and 202 (ringall)."""
    pbx = sim.sim.synthetic  # type: ignore[attr-defined]

    def start() -> None:
        b = CallBuilder(pbx.ids, time.time(), pbx.rng, [])
        expected = queue_call(
            b, pbx.site, Caller(number, "", number), "1000", "support", ["201", "202"], answer, abandon_after
        )
        sim.sim.spawn(sim.sim.player.run_call(CallTimeline(b.start, b.events, expected), 1.0))  # type: ignore[attr-defined]

    sim.call(start)


def test_the_dashboard_follows_the_calls_without_a_reload(served: dict[str, Any], browser: Any) -> None:
    expect, base = sync_api.expect, served["base"]
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.goto(base + "/dashboard")
    page.fill("#username", "sue")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/dashboard")
    expect(page.locator("#live-status")).to_have_text("Live")
    expect(page.locator("#db-no-calls")).to_be_visible()
    expect(page.locator("#db-chart-hour canvas")).to_have_count(1)  # uPlot, served locally, drew
    page.evaluate("window.sameDocument = true")

    play(served["sim"], "+15550001111", Answer(2.0, 3.0, True))
    call = page.locator("#db-progress li")
    expect(call).to_have_count(1)
    expect(call.locator(".who")).to_have_text("+15550001111")
    expect(call.locator(".state")).to_have_text("ringing")
    expect(page.locator('#db-agents li[data-user="ann"] .state')).to_have_text("ringing")
    expect(call.locator(".state")).to_have_text("talking")
    expect(page.locator('#db-agents li[data-user="ann"] .state')).to_have_text("talking")
    expect(page.locator('#db-agents li[data-user="bob"] .state')).to_have_text("idle")
    row = page.locator('#db-queue-table tbody tr[data-queue="support"]')
    expect(row.locator('td[data-label="Answered"]')).to_have_text("1")
    expect(page.locator("#db-progress li")).to_have_count(0)
    expect(page.locator('#db-agents li[data-user="ann"] .state')).to_have_text("idle")
    expect(row.locator('td[data-label="Service level"]')).to_contain_text("100.0%")
    expect(row.locator('td[data-label="Service level"] .mark')).to_have_text("met")

    play(served["sim"], "+15550002222", None, abandon_after=8.0)  # the customer gives up after 8 s
    expect(page.locator("#db-progress li .who")).to_have_text("+15550002222")
    expect(page.locator('#db-agents li[data-user="bob"] .state')).to_have_text("ringing")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)  # a call waiting, one answered today
    expect(row.locator('td[data-label="Offered"]')).to_have_text("2", timeout=30_000)
    expect(row.locator('td[data-label="Missed"]')).to_have_text("1 (1 abandoned)")
    expect(row.locator('td[data-label="Abandon rate"]')).to_contain_text("50.0%")
    expect(row.locator('td[data-label="Abandon rate"] .mark')).to_have_text("missed")
    expect(page.locator('#db-queue-table tfoot td[data-label="Offered"]')).to_have_text("2")
    assert page.evaluate("window.sameDocument") is True  # never reloaded
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: one column, nothing wider than it
    expect(row.locator('td[data-label="Offered"]')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert problems == []
