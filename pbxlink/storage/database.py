"""Opening the database named by `[database] url` and binding the models to it.

peewee keeps one connection per thread (its state is thread-local), so the bus
subscribers, the web server's threads and the scheduler can all use the models at
once; SQLite runs in WAL mode so readers never wait for the writer.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee as pw

from pbxlink.config import Config, redact_url
from pbxlink.domain.phone import PhoneNumbers, configure
from pbxlink.storage.models import db_proxy

T = TypeVar("T")

#: Pauses before the database is tried again after a blip (SQLite locked, PostgreSQL restarting).
RETRY_DELAYS: tuple[float, ...] = (0.5, 2.0, 5.0)

SQLITE_PRAGMAS = {"journal_mode": "wal", "synchronous": "normal", "busy_timeout": 5000, "foreign_keys": 1}


class DatabaseOpenError(Exception):
    """The database cannot be opened; the message is one line meant for the admin."""


def connect(url: str) -> pw.Database:
    """Open the database at `url` once (to fail early, with a clear message) and bind the models to it.

    `sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (the folder is created);
    `postgresql://user:password@host:port/dbname?sslmode=require` (needs psycopg2).
    """
    parts = urlsplit(url)
    db: pw.Database
    if parts.scheme == "sqlite":
        db = _sqlite(url)
    elif parts.scheme in ("postgresql", "postgres"):
        db = _postgresql(url)
    else:
        raise DatabaseOpenError(f"{redact_url(url)}: unsupported database, use sqlite:/// or postgresql://")
    try:
        db.connect(reuse_if_open=True)
    except pw.PeeweeException as exc:
        raise DatabaseOpenError(f"cannot open database {redact_url(url)}: {first_line(exc)}") from None
    db_proxy.initialize(db)
    return db


def first_line(exc: BaseException) -> str:
    """A driver's error reduced to one line (psycopg2's run over several), for a one-line message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def connection() -> Iterator[None]:
    """Hold this thread's connection open for the block; close it after only if the block opened it.

    For short-lived threads: a long-lived one may simply keep the connection peewee opens on first use.
    """
    opened = db_proxy.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened:
            db_proxy.close()


def writing() -> contextlib.AbstractContextManager[object]:
    """A transaction that reads, then writes what it read.

    On SQLite it takes the write lock at BEGIN (IMMEDIATE): a deferred one that read first cannot
    upgrade once another connection wrote meanwhile ("database is locked" at once, busy_timeout or
    not); an immediate one waits its turn instead. Inside a transaction: a savepoint.
    """
    db = db_proxy.obj
    if isinstance(db, pw.SqliteDatabase) and not db.in_transaction():
        return db.atomic("IMMEDIATE")
    return db_proxy.atomic()


def _sqlite(url: str) -> pw.SqliteDatabase:
    if not url.startswith("sqlite:///") or urlsplit(url).query:
        raise DatabaseOpenError(f"{url}: expected sqlite:///PATH (relative) or sqlite:////PATH (absolute)")
    path = Path(url.removeprefix("sqlite:///"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseOpenError(
            f"cannot create folder {path.parent} for the database: {exc.strerror}"
        ) from None
    return pw.SqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS)


def _postgresql(url: str) -> pw.PostgresqlDatabase:
    # peewee itself would only say "driver not found", and only at the first query.
    if not any(importlib.util.find_spec(driver) for driver in ("psycopg2", "psycopg")):
        raise DatabaseOpenError("PostgreSQL needs the psycopg2 driver: pip install 'pbxlink[postgres]'")
    parts = urlsplit(url)
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise DatabaseOpenError(f"{redact_url(url)}: no database name (postgresql://USER@HOST/DBNAME)")
    params: dict[str, Any] = dict(parse_qsl(parts.query))
    try:
        port = parts.port
    except ValueError:
        raise DatabaseOpenError(f"{redact_url(url)}: the port is not a number") from None
    for key, value in (("user", parts.username), ("password", parts.password), ("host", parts.hostname)):
        if value is not None:
            params[key] = unquote(value)
    if port is not None:
        params["port"] = port
    return pw.PostgresqlDatabase(dbname, **params)


def open_database(cfg: Config) -> list[int]:
    """Set the site's numbering rules (stored numbers are normalized with them), connect, and bring
    the schema up to date, so every command works on a fresh install; the versions applied."""
    from pbxlink.storage.migrations import migrate  # it needs this module's helpers

    configure(PhoneNumbers(cfg.phone.default_region, cfg.phone.match_digits))
    return migrate(connect(cfg.database.url))


def drop_connection() -> None:
    """Forget this thread's connection: a broken one (PostgreSQL restarted) is then replaced on next use."""
    try:
        db_proxy.close()
    except pw.PeeweeException:
        db_proxy.dispose()  # closing failed on a dead connection: just forget it


def retry_briefly(
    run: Callable[[], T], what: str, log: logging.Logger, delays: Sequence[float] = RETRY_DELAYS
) -> T:
    """`run()`, tried again after each pause while the database is briefly unavailable, so work that
    must not be lost (a final call record, a queued delivery) survives a blip; `run` must be safe
    to repeat. `what` says in the warning what could not be done; raises once the pauses run out."""
    for attempt, delay in enumerate((*delays, None), 1):
        try:
            return run()
        except (pw.OperationalError, pw.InterfaceError) as exc:
            if delay is None:
                raise
            log.warning(
                "%s: %s; retry %d of %d in %.1f s", what, first_line(exc), attempt, len(delays), delay
            )
            drop_connection()  # a broken connection (PostgreSQL restarted) is replaced on the next try
            time.sleep(delay)
    raise AssertionError("unreachable")
