"""Wiring: the one place that knows every part, and builds the running service from the config."""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from pbxlink.bus import InProcessBus
from pbxlink.config import Config, ConfigError, PbxConfig, load_config, redact_url
from pbxlink.domain.calls import CallRecord
from pbxlink.domain.phone import numbers
from pbxlink.domain.ports import CheckResult
from pbxlink.services.call_log import call_log_handler
from pbxlink.simulation.thread import SimulatorThread
from pbxlink.storage.calls import open_calls
from pbxlink.storage.database import DatabaseOpenError, connect, first_line, open_database

log = logging.getLogger(__name__)


class Service:
    """`pbxlink run`: the PBX adapters, the bus, the call log, the CRM side and the panel in one process."""

    def __init__(self, cfg: Config) -> None:
        from pbxlink.ami.adapter import AmiAdapter
        from pbxlink.ami.agi import agi_server
        from pbxlink.esl.adapter import EslAdapter
        from pbxlink.esl.outbound import outbound_server
        from pbxlink.lookup_server import LookupServer
        from pbxlink.services.callbacks import CallbackService
        from pbxlink.services.campaigns import CampaignService
        from pbxlink.services.recording_index import recording_handler
        from pbxlink.services.recording_scan import PeriodicScan
        from pbxlink.services.retention import RetentionService
        from pbxlink.web.app import create_app
        from pbxlink.web.server import make_server

        self.cfg = cfg
        applied = open_database(cfg)
        if applied:
            log.info("database %s: applied migrations %s", redact_url(cfg.database.url), applied)
        self.bus = InProcessBus()
        self.bus.subscribe("call-log", call_log_handler())
        self.crm = CrmSide(cfg, self.bus)
        self.adapters: list[AmiAdapter | EslAdapter] = []
        self.lookup_servers: list[LookupServer] = (
            [agi_server(cfg.agi, self.crm.caller_lookup)] if cfg.agi else []
        )
        for pbx in cfg.pbx:
            adapter = AmiAdapter if pbx.type == "asterisk" else EslAdapter
            self.adapters.append(adapter(pbx, self.bus.publish, _open_calls_of(pbx)))
            if pbx.type == "freeswitch" and (server := outbound_server(pbx, self.crm.caller_lookup)):
                self.lookup_servers.append(server)
        self.callbacks = (
            CallbackService.from_config(cfg, {a.control.name: a.control for a in self.adapters})
            if cfg.callback_policies
            else None
        )
        if self.callbacks is not None:
            self.bus.subscribe("callbacks", self.callbacks.on_event)
        self.campaigns = CampaignService({a.control.name: a.control for a in self.adapters})
        self.bus.subscribe("campaigns", self.campaigns.on_event)
        self.retention = RetentionService.from_config(cfg) if cfg.retention_policies else None
        folders = cfg.recordings.folders
        if folders:
            self.bus.subscribe("recordings", recording_handler(folders))
        self.scanner = PeriodicScan(folders, [p.name for p in cfg.pbx]) if folders else None
        app = create_app(cfg, self.bus, callbacks=self.callbacks, **self.crm.web_parts())
        self.server = make_server(app, cfg.web.host, cfg.web.port, threads=cfg.web.threads)

    def start(self) -> None:
        for server in self.lookup_servers:
            server.start()  # a port in use is a ConfigError: said in one line, before anything runs
        self.crm.start()
        for adapter in self.adapters:
            adapter.start()
        if self.callbacks is not None:
            self.callbacks.start()  # after the adapters: an attempt needs the PBX link
        self.campaigns.start()
        if self.retention is not None:
            self.retention.start()
        if self.scanner is not None:
            self.scanner.start()

    def serve(self) -> None:
        """Serve the panel until SIGTERM or Ctrl-C, then stop everything in order."""
        from pbxlink.web.server import urls_of

        for url in urls_of(self.server):
            log.info("web panel on %s", url)
        try:
            self.server.run()
        finally:
            self.stop()

    def stop(self) -> None:
        self.campaigns.stop()  # first: no new dial while the links go down
        for server in self.lookup_servers:
            server.stop()
        for adapter in self.adapters:
            adapter.stop()
        self.bus.close()  # after the adapters: what they published last is still written (and queued)
        if self.callbacks is not None:
            self.callbacks.stop()
        if self.retention is not None:
            self.retention.stop()
        if self.scanner is not None:
            self.scanner.stop()
        self.crm.stop()
        self.server.close()


class CrmSide:
    """The CRM connectors, the cached caller directory, screen-pops, and the outbox that logs
    calls in the CRMs and delivers webhooks, subscribed to `bus`."""

    def __init__(self, cfg: Config, bus: InProcessBus) -> None:
        from pbxlink.cache import make_cache
        from pbxlink.crm import build_connectors
        from pbxlink.services.caller_lookup import CallLogLookup, CrmCallerLookup
        from pbxlink.services.crm_sync import crm_log_deliverer, crm_log_handler
        from pbxlink.services.directory import CallerDirectory
        from pbxlink.services.outbox import OutboxWorker
        from pbxlink.services.pop_hub import PopHub
        from pbxlink.services.screenpop import ScreenPops, calls_from_log
        from pbxlink.services.webhooks import webhook_deliverer, webhook_handler
        from pbxlink.storage.campaigns import pop_view
        from pbxlink.storage.outbox import enqueue

        self.connectors = build_connectors(cfg.crm)
        self.directory = CallerDirectory(
            self.connectors, make_cache(cfg.redis_url), numbers(), cfg.cache.ttl, cfg.cache.negative_ttl
        )
        self.caller_lookup = CrmCallerLookup(self.directory, fallback=CallLogLookup())
        self.hub = PopHub()
        self.pops = ScreenPops(self.directory, calls_from_log, self.hub, campaign_contact=pop_view)
        bus.subscribe("screen-pops", self.pops.on_event)
        self.worker = OutboxWorker(
            {
                "crm_log": crm_log_deliverer(
                    {c.name: c for c in self.connectors}, numbers(), self._recording_url(cfg)
                ),
                "webhook": webhook_deliverer(cfg.webhooks),
            },
            schedule=cfg.outbox.retry_delays,
            give_up_after=cfg.outbox.give_up_after,
        )
        if self.connectors:
            names = [c.name for c in self.connectors]
            bus.subscribe("crm-log", crm_log_handler(names, enqueue, self.worker.notify))
        if cfg.webhooks:
            bus.subscribe("webhooks", webhook_handler(cfg.webhooks, enqueue, self.worker.notify))

    def _recording_url(self, cfg: Config) -> Callable[[CallRecord], str | None]:
        """Signed links to recordings for the CRM call logs, when the panel can serve them."""
        from pbxlink.services.recording_links import RecordingLinks
        from pbxlink.storage.settings import web_secret_key

        if cfg.web.public_url and cfg.recordings.folders:
            days = cfg.recordings.link_days
            return RecordingLinks(web_secret_key(cfg), cfg.web.public_url, days * 86400).url
        if self.connectors:
            log.info("CRM call logs carry no recording link: set [web] public_url and [recordings] folders")
        return lambda call: None

    def web_parts(self) -> dict[str, object]:
        return {
            "pops": self.hub,
            "directory": self.directory,
            "connectors": self.connectors,
            "outbox_worker": self.worker,
        }

    def start(self) -> None:
        self.worker.start()  # also delivers what an earlier run left in the outbox

    def stop(self) -> None:
        self.pops.close()
        self.worker.stop()


def _open_calls_of(pbx: PbxConfig) -> Callable[[], list[CallRecord]]:
    return lambda: open_calls(pbx.name)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds serve() through its cleanup, as Ctrl-C does


def run(cfg: Config) -> None:
    service = Service(cfg)
    signal.signal(signal.SIGTERM, _terminate)
    service.start()
    try:
        service.serve()
    except KeyboardInterrupt:
        log.info("stopped")


def check(cfg: Config) -> int:
    """`pbxlink check`: the config, the database and every PBX, in plain words; 0 only if all is well."""
    from pbxlink.ami.check import check_asterisk
    from pbxlink.esl.check import check_freeswitch

    results = [CheckResult(True, f"config {cfg.path}", "read without errors")] if cfg.path else []
    try:
        db = connect(cfg.database.url)
        results.append(CheckResult(True, f"database {redact_url(cfg.database.url)}", "opens"))
        db.close()
    except DatabaseOpenError as exc:
        results.append(CheckResult(False, f"database {redact_url(cfg.database.url)}", first_line(exc)))
    if not cfg.pbx:
        results.append(CheckResult(False, "PBX", "no [[pbx]] entry in the config: nothing to connect to"))
    for pbx in cfg.pbx:
        results += check_asterisk(pbx) if pbx.type == "asterisk" else check_freeswitch(pbx)
    results += _check_crm_side(cfg)
    for r in results:
        mark = "FAIL" if not r.ok else "WARN" if r.warning else "ok  "
        print(f"{mark} {r.what}: {r.detail}" if r.detail else f"{mark} {r.what}")
    failed = sum(not r.ok for r in results)
    print("all good" if not failed else f"{failed} problem(s): see the FAIL lines above")
    return 0 if not failed else 1


def _check_crm_side(cfg: Config) -> list[CheckResult]:
    """Each CRM's credentials (one light request each) and the shared cache."""
    from pbxlink.crm import build_connectors

    results = []
    try:
        connectors = build_connectors(cfg.crm)
    except ConfigError as exc:
        return [CheckResult(False, "CRM config", str(exc))]
    for connector in connectors:
        results.append(connector.check())
    if cfg.redis_url:
        import redis

        where = f"Redis {redact_url(cfg.redis_url)}"
        try:
            redis.Redis.from_url(cfg.redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
            results.append(CheckResult(True, where, "answers"))
        except redis.RedisError as exc:
            results.append(CheckResult(False, where, f"{first_line(exc)} (is redis-server running there?)"))
    return results


#: The demo calls back every missed call, at any hour, through the simulator: a newcomer sees
#: the Callbacks page fill and empty without configuring anything.
_DEMO_CALLBACKS = (
    '[[callback_policy]]\nname = "missed-calls"\norder = "customer_first"\nqueue = "support"\n'
    "delay = 20\nretry_after = 60\n"
    "hours = { "
    + ", ".join(f'{day} = "00:00-24:00"' for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    + " }\n"
)

_PBX_NAMES = {"asterisk": "Asterisk", "freeswitch": "FreeSWITCH"}


def _simulator(pbx: str, secret: str, agents: int) -> SimulatorThread:
    """The demo's PBX: the AMI or the ESL simulator, generating calls, in its own thread."""
    if pbx == "freeswitch":
        from pbxlink.esl.simulator import EslSimulator
        from pbxlink.esl.simulator.synthetic import SyntheticPbx as EslTraffic

        return SimulatorThread(EslSimulator(password=secret, synthetic=EslTraffic(agents=agents)))
    from pbxlink.ami.simulator import AmiSimulator
    from pbxlink.ami.simulator.synthetic import SyntheticPbx

    return SimulatorThread(
        AmiSimulator(secret=secret, timestampevents=True, synthetic=SyntheticPbx(agents=agents))
    )


def demo(args: argparse.Namespace) -> None:
    """`pbxlink demo`: the whole product against a simulated PBX, SQLite and the in-process bus."""
    from pbxlink.simulation.demo_data import seed_campaign
    from pbxlink.storage.models import User
    from pbxlink.storage.users import create_user, set_password

    folder = Path(args.dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    sim_secret = secrets.token_urlsafe(12)
    thread = _simulator(args.pbx, sim_secret, args.agents)
    host, port = thread.start()
    config = folder / "pbxlink.toml"
    config.write_text(
        "# written by `pbxlink demo`: pbxlink against the built-in AMI simulator\n"
        f'data_dir = "{folder}"\n'
        f'[database]\nurl = "sqlite:///{folder}/pbxlink.db"\n'
        f'[web]\nlisten = "{args.listen}"\n'
        f'[[pbx]]\nname = "demo"\ntype = "{args.pbx}"\nhost = "{host}"\nport = {port}\n'
        f'username = "pbxlink"\nsecret = "{sim_secret}"\nping_interval = 5\n' + _DEMO_CALLBACKS
    )
    cfg = load_config(config)
    open_database(cfg)
    seed_campaign("demo", folder)
    password = secrets.token_urlsafe(9)
    admin = User.get_or_none(User.username == "admin")
    if admin is None:
        create_user("admin", password, role="admin")
    else:
        set_password(admin, password)
    service = Service(cfg)
    service.start()
    thread.start_traffic(args.calls_per_minute)
    print(
        f"\n  pbxlink demo: a simulated {_PBX_NAMES[args.pbx]} with {args.agents} agents, "
        f"{args.calls_per_minute:g} new calls a minute\n"
        f"  open   http://{cfg.web.host}:{cfg.web.port}/\n"
        f"  login  admin / {password}\n"
        f"  config {config}   (Ctrl-C stops)\n",
        file=sys.stderr,
        flush=True,
    )
    signal.signal(signal.SIGTERM, _terminate)
    try:
        service.serve()
    except KeyboardInterrupt:
        pass
    finally:
        thread.stop()
