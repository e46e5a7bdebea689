"""`GET /r/<token>` over real files in temporary folders: streamed whole and by Range, expired and forged
links refused, and no stored path, however crafted, reads anything outside the recording folders."""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from pbxlink.web import create_app
from pbxlink.web.server import make_server, urls_of

from pbxlink.bus import InProcessBus
from pbxlink.config import Config, CrmConfig, DatabaseConfig, RecordingsConfig, WebConfig
from pbxlink.domain.calls import CallRecord
from pbxlink.domain.phone import PhoneNumbers
from pbxlink.services.crm_sync import crm_log_deliverer
from pbxlink.services.recording_links import RecordingLinks
from pbxlink.storage.calls import save_call
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from pbxlink.storage.settings import web_secret_key
from tests.integration.test_crm_sync import FakeCrm

KEY = "r" * 64
SECRET = b"root:x:0:0:OUTSIDE-THE-RECORDING-FOLDERS"
LOGGER = "pbxlink.web.recordings"

_opened: list[str] | None = None  # while a list, every file the process opens is noted in it


def _note_opens(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_note_opens)  # audit hooks cannot be removed: this one is idle unless a test listens


@contextmanager
def files_opened() -> Iterator[list[str]]:
    """Every file this process opens inside the block (builtins.open and os.open alike)."""
    global _opened
    _opened = opened = []
    try:
        yield opened
    finally:
        _opened = None


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A real 16-bit mono WAV file, its samples a ramp so any misplaced byte range shows."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(i % 251 for i in range(int(seconds * rate) * 2)))
    return buf.getvalue()


class Site:
    """The panel over a real SQLite database, two recording folders and a folder outside them."""

    def __init__(self, tmp: Path) -> None:
        tmp = tmp.resolve()  # the paths the server opens are real paths
        self.spool, self.archive, self.outside = tmp / "spool", tmp / "archive", tmp / "outside"
        for folder in (self.spool, self.archive, self.outside):
            folder.mkdir()
        (self.outside / "secret.txt").write_bytes(SECRET)
        self.wav = wav_bytes()
        (self.spool / "1700000001.1.wav").write_bytes(self.wav)
        url = f"sqlite:///{tmp}/pbxlink.db"
        self.database = connect(url)
        migrate(self.database)
        self.config = Config(
            path=None,
            database=DatabaseConfig(url),
            web=WebConfig(secret_key=KEY, public_url="http://pbx.example.com"),
            pbx=(),
            data_dir=tmp,
            recordings=RecordingsConfig(folders=(self.spool, self.archive), link_days=30),
        )
        self.app = create_app(self.config)
        self.client = self.app.test_client()
        self.links = RecordingLinks(KEY, "http://pbx.example.com", 30 * 86400)
        self.calls = 0

    def call(self, recording: str | None) -> CallRecord:
        """A finished inbound call in the log with `recording` stored as the PBX announced it."""
        self.calls += 1
        rec = CallRecord(
            pbx="main",
            call_id=f"1700000{self.calls:03d}.1",
            direction="inbound",
            started_at=datetime(2026, 3, 2, 14, self.calls, tzinfo=UTC),
            caller="+15550100007",
            callee="100",
            agent="201",
            agents=["201"],
            answered_at=datetime(2026, 3, 2, 14, self.calls, 5, tzinfo=UTC),
            ended_at=datetime(2026, 3, 2, 14, self.calls, 50, tzinfo=UTC),
            disposition="answered",
            talk_seconds=45.0,
            recording=recording,
        )
        save_call(rec)
        return rec

    def path_of(self, rec: CallRecord) -> str:
        url = self.links.url(rec)
        assert url is not None and url.startswith("http://pbx.example.com/r/")
        return url.removeprefix("http://pbx.example.com")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.database.close()


def test_a_wav_is_streamed_whole_inline_uncached(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    rec = site.call(str(site.spool / "1700000001.1.wav"))
    with files_opened() as opened:
        resp = site.client.get(site.path_of(rec))
    assert resp.status_code == 200 and resp.data == site.wav
    assert str(site.spool / "1700000001.1.wav") in opened  # what the refusals below are checked against
    assert resp.mimetype == "audio/wav" and resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Length"] == str(len(site.wav))
    assert resp.headers["Cache-Control"] == "private, no-store"
    assert resp.headers["Content-Disposition"] == "inline; filename=1700000001.1.wav"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    served = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert served == [
        f"recording link: served call main:{rec.call_id} (HTTP 200, the whole file, {len(site.wav)} bytes) "
        "to 127.0.0.1"
    ]


def test_ranges_seek_into_the_file(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    rec = site.call(str(site.spool / "1700000001.1.wav"))
    path, size = site.path_of(rec), len(site.wav)
    for header, start, end in (
        ("bytes=0-43", 0, 43),  # the WAV header, as a player asks first
        ("bytes=8000-8999", 8000, 8999),  # a seek to the middle
        (f"bytes={size - 100}-", size - 100, size - 1),
        ("bytes=-10", size - 10, size - 1),
    ):
        resp = site.client.get(path, headers={"Range": header})
        assert resp.status_code == 206, header
        assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
        assert resp.data == site.wav[start : end + 1]
        assert resp.headers["Content-Length"] == str(end - start + 1)
        assert resp.headers["Cache-Control"] == "private, no-store"
    assert site.client.get(path, headers={"Range": f"bytes={size}-"}).status_code == 416
    stale = site.client.get(path, headers={"Range": "bytes=0-9", "If-Range": '"another-version"'})
    assert stale.status_code == 200 and stale.data == site.wav  # the file changed: the whole new one
    assert f"served call main:{rec.call_id} (HTTP 206, bytes 8000-8999/{size}) to 127.0.0.1" in caplog.text


def test_a_relative_name_is_found_in_any_recording_folder(site: Site) -> None:
    (site.archive / "2025").mkdir()
    (site.archive / "2025" / "out-5550100-201.mp3").write_bytes(b"ID3" + bytes(500))
    resp = site.client.get(site.path_of(site.call("2025/out-5550100-201.mp3")))
    assert resp.status_code == 200 and resp.mimetype == "audio/mpeg" and resp.data == b"ID3" + bytes(500)
    odd = site.client.get(site.path_of(site.call("1700000001.1.wav")))
    assert odd.status_code == 200 and odd.data == site.wav


def test_an_odd_file_name_goes_out_as_bytes_under_a_safe_name(site: Site) -> None:
    (site.spool / 'x"; evil=1\r\n.html').write_bytes(b"<script>alert(1)</script>")
    resp = site.client.get(site.path_of(site.call(str(site.spool / 'x"; evil=1\r\n.html'))))
    assert resp.status_code == 200 and resp.mimetype == "application/octet-stream"
    assert resp.headers["Content-Disposition"] == "inline; filename=x_evil_1_.html"


def test_an_expired_link_is_410_with_a_page_pointing_at_the_call(site: Site) -> None:
    rec = site.call(str(site.spool / "1700000001.1.wav"))
    signed_long_ago = RecordingLinks(KEY, "http://pbx.example.com", 30 * 86400, clock=lambda: 1_600_000_000.0)
    resp = site.client.get(f"/r/{signed_long_ago.token(rec.pbx, rec.call_id)}")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 410 and resp.mimetype == "text/html"
    assert "This link has expired" in page and f"main:{rec.call_id}" in page and "30 days" in page
    assert "Open the call" in page and resp.headers["Cache-Control"] == "private, no-store"


def test_tampered_foreign_and_unknown_links_are_404(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    rec = site.call(str(site.spool / "1700000001.1.wav"))
    token = site.path_of(rec).removeprefix("/r/")
    payload, stamp, signature = token.split(".")
    foreign = RecordingLinks("f" * 64, "http://x", 86400).token(rec.pbx, rec.call_id)
    unknown = site.links.token("main", "no-such-call")
    for path in (
        f"/r/{payload}.{stamp}.{signature[::-1]}",
        f"/r/{token[:-3]}",
        f"/r/{foreign}",
        f"/r/{unknown}",
        "/r/..%2F..%2Foutside%2Fsecret.txt",
        "/r/%2e%2e",
        "/r/",
    ):
        resp = site.client.get(path)
        assert resp.status_code == 404, path
        assert SECRET not in resp.data and site.wav[:44] not in resp.data
    assert token not in caplog.text and foreign not in caplog.text


def _symlink_out(site: Site) -> str:
    (site.spool / "evil.wav").symlink_to(site.outside / "secret.txt")
    return str(site.spool / "evil.wav")


def _symlinked_folder(site: Site) -> str:
    (site.spool / "sub").symlink_to(site.outside)
    return "sub/secret.txt"


def _fifo(site: Site) -> str:
    os.mkfifo(site.spool / "pipe.wav")
    return str(site.spool / "pipe.wav")


def _directory(site: Site) -> str:
    (site.spool / "2026").mkdir()
    (site.spool / "2026" / "a.wav").write_bytes(site.wav)
    return str(site.spool / "2026")


@pytest.mark.parametrize(
    ("stored", "why"),
    [
        ("../outside/secret.txt", "climbs out with '..'"),
        ("../../../../../../etc/passwd", "climbs out with '..'"),
        ("{spool}/../outside/secret.txt", "climbs out with '..'"),
        ("..\\outside\\secret.txt", "climbs out with '..'"),
        ("/etc/passwd", "outside the [recordings] folders"),
        ("//etc/passwd", "outside the [recordings] folders"),
        ("{outside}/secret.txt", "outside the [recordings] folders"),
        ("%2e%2e/outside/secret.txt", "no such file in the recording folders"),  # never URL-decoded
        ("%2e%2e%2foutside%2fsecret.txt", "no such file in the recording folders"),
        ("{spool}", "is a folder (or a pipe, a device), not a recording file"),  # the folder itself
        ("{spool}/", "is a folder (or a pipe, a device), not a recording file"),
        ("{spool}/missing.wav", "no such file in the recording folders"),
        ("1700000001.1.wav\x00/../../outside/secret.txt", "NUL byte"),
        ("{outside}/secret.txt\x00.wav", "NUL byte"),
        (_symlink_out, "outside the [recordings] folders"),
        (_symlinked_folder, "outside the [recordings] folders"),
        (_directory, "is a folder (or a pipe, a device), not a recording file"),
        (_fifo, "is a folder (or a pipe, a device), not a recording file"),
    ],
)
def test_no_stored_path_serves_or_reads_anything_outside(
    site: Site, caplog: pytest.LogCaptureFixture, stored: Any, why: str
) -> None:
    path = stored(site) if callable(stored) else stored.format(spool=site.spool, outside=site.outside)
    rec = site.call(path)
    link = site.path_of(rec)
    caplog.set_level(logging.INFO, LOGGER)
    with files_opened() as opened:
        resp = site.client.get(link)
    assert resp.status_code == 404 and resp.mimetype == "text/html"
    assert SECRET not in resp.data and site.wav[:44] not in resp.data
    assert not [p for p in opened if p.startswith((str(site.outside), "/etc/"))]
    assert not [p for p in opened if p.startswith(str(site.spool)) and not p.endswith(".db")]
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and f"call main:{rec.call_id} refused: " in warnings[0] and why in warnings[0]
    assert "\n" not in warnings[0] and link.removeprefix("/r/") not in caplog.text


def test_without_recording_folders_nothing_is_served(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(replace(site.config, recordings=RecordingsConfig()))
    rec = site.call(str(site.spool / "1700000001.1.wav"))
    assert app.test_client().get(site.path_of(rec)).status_code == 404
    assert "no [recordings] folders are configured" in caplog.text


def test_a_worker_and_the_panel_share_the_generated_key(site: Site) -> None:
    """With no [web] secret_key, the key the worker signs with is the one the panel checks with."""
    keyless = replace(site.config, web=WebConfig(public_url="http://pbx.example.com"))
    worker_links = RecordingLinks(web_secret_key(keyless), "http://pbx.example.com", 86400)
    rec = site.call(str(site.spool / "1700000001.1.wav"))
    url = worker_links.url(rec)
    assert url is not None and web_secret_key(keyless) != KEY
    panel = create_app(keyless).test_client()
    assert panel.get(url.removeprefix("http://pbx.example.com")).data == site.wav
    assert site.client.get(url.removeprefix("http://pbx.example.com")).status_code == 404  # another key


def test_run_signs_links_for_crm_logs_only_when_the_panel_can_serve_them(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    from pbxlink.bootstrap import CrmSide

    caplog.set_level(logging.INFO, "pbxlink.bootstrap")
    no_links = "CRM call logs carry no recording link: set [web] public_url and [recordings] folders"
    hubspot = CrmConfig("hubspot", "hubspot", {"token": "pat-na1-0", "portal_id": "1"})
    cfg = replace(site.config, crm=(hubspot,))
    rec = site.call(str(site.spool / "1700000001.1.wav"))
    wired = CrmSide(cfg, InProcessBus())
    url = wired._recording_url(cfg)(rec)
    assert url is not None and site.client.get(url.removeprefix("http://pbx.example.com")).data == site.wav
    assert no_links not in caplog.messages
    wired.stop()
    for missing in (replace(cfg, recordings=RecordingsConfig()), replace(cfg, web=WebConfig(secret_key=KEY))):
        caplog.clear()
        unwired = CrmSide(missing, InProcessBus())
        assert caplog.messages.count(no_links) == 1
        assert unwired._recording_url(missing)(rec) is None
        unwired.stop()


@pytest.fixture
def served(site: Site) -> Iterator[str]:
    server = make_server(site.app, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    yield urls_of(server)[0].rstrip("/")
    server.task_dispatcher.shutdown(timeout=3)
    server.close()
    thread.join(timeout=3)


def test_the_link_a_crm_gets_downloads_the_recording_over_http(site: Site, served: str) -> None:
    """The CRM call log's deliverer with RecordingLinks.url, as `run` wires it, then a CRM user's click."""
    crm = FakeCrm("crm-a")
    links = RecordingLinks(KEY, served + "/", 30 * 86400)
    deliver = crm_log_deliverer({"crm-a": crm}, PhoneNumbers("US"), links.url)
    rec = site.call(str(site.spool / "1700000001.1.wav"))
    deliver(rec.to_dict(), "crm-a", f"main:{rec.call_id}")
    url = crm.entries[f"main:{rec.call_id}"].recording_url
    assert url is not None and url.startswith(f"{served}/r/")

    with requests.Session() as browser:  # no login: the link is the permission
        whole = browser.get(url, timeout=10)
        assert whole.status_code == 200 and whole.content == site.wav
        assert whole.headers["Content-Type"] == "audio/wav"
        part = browser.get(url, headers={"Range": "bytes=44-1043"}, timeout=10)
        assert part.status_code == 206 and part.content == site.wav[44:1044]
        assert part.headers["Content-Range"] == f"bytes 44-1043/{len(site.wav)}"
        assert browser.get(url[:-2], timeout=10).status_code == 404

    unrecorded = site.call(None)
    deliver(unrecorded.to_dict(), "crm-a", f"main:{unrecorded.call_id}")
    assert crm.entries[f"main:{unrecorded.call_id}"].recording_url is None


def test_the_link_serves_the_indexed_recording_by_its_row_and_audits_the_listen(site: Site) -> None:
    from pbxlink.storage.models import AuditEntry, Recording

    call = site.call(str(site.spool / "1700000001.1.wav"))
    url = site.path_of(call)
    assert site.client.get(url).status_code == 200
    (rec,) = Recording.select()
    assert (rec.call_id, rec.source) == (call.call_id, "link")  # indexed on the spot, served by its row
    listens = [(a.user, a.action, a.target) for a in AuditEntry.select()]
    assert listens == [("link", "listen", f"recording:{rec.id}")]
    assert site.client.get(url, headers={"Range": "bytes=100-"}).status_code == 206
    assert AuditEntry.select().count() == 1  # a seek is not another listen
    Recording.update(status="deleted").execute()
    assert site.client.get(url).status_code == 410
