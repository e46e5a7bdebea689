"""The call log on real databases: SQLite in tmp_path, and a throwaway PostgreSQL cluster when installed."""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import peewee as pw
import pytest

from pbxlink.bus import InProcessBus
from pbxlink.domain.calls import RECORD_FIELDS, CallAnswered, CallEnded, CallRecord, CallStarted, Transfer
from pbxlink.services.call_log import call_log_handler
from pbxlink.storage import migrations
from pbxlink.storage.calls import (
    CallFilter,
    get_call,
    iter_calls,
    open_calls,
    save_call,
    search_calls,
)
from pbxlink.storage.database import DatabaseOpenError, connect
from pbxlink.storage.migrations import MIGRATIONS, MigrationError, migrate
from pbxlink.storage.models import ALL_MODELS, PARTIAL_INDEXES, Call

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


# --- the databases -------------------------------------------------------------------------------


def _postgres_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    """A PostgreSQL cluster of our own on a free loopback port; yields a URL without database name."""
    bindir = _postgres_binaries()
    if bindir is None:
        pytest.skip("no PostgreSQL server installed (/usr/lib/postgresql/*/bin/postgres)")
    if importlib.util.find_spec("psycopg2") is None:
        pytest.skip("psycopg2 not installed: pip install -e '.[postgres]'")
    # PostgreSQL refuses to run as root: then run it as the `postgres` user, in a folder it owns.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="pbxlink-pg-"))
    if as_user:
        shutil.chown(base, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = base / "data"
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True)  # noqa: E731
    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "pbx", "--no-sync", "-E", "UTF8")
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start")
    try:
        yield f"postgresql://pbx@127.0.0.1:{port}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[pw.Database]:
    """A freshly migrated database of each kind, bound to the models."""
    if request.param == "sqlite":
        database = connect(f"sqlite:///{tmp_path}/state/pbxlink.db")
    else:
        database = connect(request.getfixturevalue("pg_server") + "/postgres")
        drop_all_tables(database)  # cheaper than a new database per test
    assert migrate(database) == [v for v, _, _ in MIGRATIONS]
    yield database
    database.close()


def drop_all_tables(database: pw.Database) -> None:
    cascade = "" if isinstance(database, pw.SqliteDatabase) else " CASCADE"
    for table in sorted(database.get_tables(), key=lambda t: t != "api_token"):  # foreign key first
        database.execute_sql(f'DROP TABLE "{table}"{cascade}')


def record(call_id: str, minutes: int = 0, **fields: object) -> CallRecord:
    fields = {"direction": "inbound", **fields}
    return CallRecord(pbx="main", call_id=call_id, started_at=T0 + timedelta(minutes=minutes), **fields)  # type: ignore[arg-type]


def ended(rec: CallRecord, **fields: object) -> CallRecord:
    final = rec.copy()
    final.ended_at = rec.started_at + timedelta(seconds=40)
    for name, value in {
        "disposition": "missed",
        "miss_reason": "no_answer",
        "wait_seconds": 40.0,
        "talk_seconds": 0.0,
        **fields,
    }.items():
        setattr(final, name, value)
    return final


# --- migrations ----------------------------------------------------------------------------------


def test_an_old_database_with_calls_is_upgraded_and_its_numbers_normalized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 2 fills the normalized numbers of the calls kept before it (as on any installed site)."""
    database = connect(f"sqlite:///{tmp_path}/old.db")
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", MIGRATIONS[:1])  # the first release's schema
        assert migrate(database) == [1]
    for call_id, caller, callee in (("a", "(555) 123-4567", "200"), ("b", "anonymous", "+44 20 7946 0958")):
        database.execute_sql(
            "INSERT INTO call (pbx, call_id, direction, caller, callee, agents, started_at, transfers, "
            "end_seen, updated_at) VALUES ('main', ?, 'inbound', ?, ?, '[]', '2026-01-01', '[]', 1, "
            "'2026-01-01')",
            (call_id, caller, callee),
        )
    assert migrate(database) == [v for v, _, _ in MIGRATIONS[1:]]
    rows = {r.call_id: r for r in Call.select()}
    assert (rows["a"].caller_e164, rows["a"].caller_tail, rows["a"].callee_e164) == (
        "+15551234567",
        "551234567",
        None,
    )
    assert (rows["b"].caller_e164, rows["b"].callee_e164) == (None, "+442079460958")
    database.close()


def test_migrations_are_recorded_and_idempotent(db: pw.Database) -> None:
    assert migrate(db) == []
    assert migrate(db) == []
    rows = db.execute_sql("SELECT version, name FROM schema_migrations").fetchall()
    assert [tuple(r) for r in rows] == [(v, name) for v, name, _ in MIGRATIONS]


def test_migrated_schema_is_what_models_describe(db: pw.Database) -> None:
    """models.py and the migrations must not drift apart: a model change needs a new migration."""
    for model in ALL_MODELS:
        table = model._meta.table_name
        columns = {c.name: c.null for c in db.get_columns(table)}
        assert columns == {f.column_name: f.null for f in model._meta.sorted_fields}, table
        assert model._meta.primary_key
        primary = (model._meta.primary_key.column_name,)
        indexes = {(tuple(i.columns), i.unique) for i in db.get_indexes(table)} - {(primary, True)}
        expected = {
            ((f.column_name,), bool(f.unique)) for f in model._meta.sorted_fields if f.index or f.unique
        }
        expected |= {(tuple(cols), unique) for cols, unique in model._meta.indexes}
        expected |= PARTIAL_INDEXES.get(table, set())
        assert indexes == expected, table


def test_record_fields_all_have_a_column() -> None:
    assert set(RECORD_FIELDS) <= {f.name for f in Call._meta.sorted_fields}


def test_two_starters_at_once_apply_each_migration_once(db: pw.Database) -> None:
    drop_all_tables(db)
    barrier = threading.Barrier(4)
    results: list[list[int]] = []

    def start() -> None:
        barrier.wait()
        results.append(migrate(db))
        db.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 4  # every starter came through
    assert sorted(v for applied in results for v in applied) == [v for v, _, _ in MIGRATIONS]  # each once


def test_database_newer_than_the_code_is_refused(db: pw.Database) -> None:
    db.execute_sql("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 'x')")
    with pytest.raises(MigrationError, match="schema is at version 99, newer than this pbxlink knows"):
        migrate(db)


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    database = connect(f"sqlite:///{tmp_path}/a/b/pbxlink.db")  # the folders are created
    pragma = lambda name: database.execute_sql(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
    assert (
        pragma("journal_mode"),
        pragma("busy_timeout"),
        pragma("foreign_keys"),
        pragma("synchronous"),
    ) == (
        "wal",
        5000,
        1,
        1,  # NORMAL
    )
    database.close()


def test_unopenable_database_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(DatabaseOpenError, match=r"cannot create folder .*/file for the database"):
        connect(f"sqlite:///{tmp_path}/file/pbxlink.db")
    with pytest.raises(DatabaseOpenError, match=r"mysql://u:\*\*\*@h/x: unsupported database"):
        connect("mysql://u:secret@h/x")
    if importlib.util.find_spec("psycopg2") is not None:
        with pytest.raises(DatabaseOpenError) as refused:
            connect("postgresql://u:pa%40ss@127.0.0.1:1/db?connect_timeout=2")
        assert str(refused.value).startswith("cannot open database postgresql://u:***@127.0.0.1:1/db")
        assert "pa@ss" not in str(refused.value) and "\n" not in str(refused.value)


# --- saving ----------------------------------------------------------------------------------------


def test_every_field_round_trips(db: pw.Database) -> None:
    rec = record(
        "1700000000.1",
        caller="+15551234567",
        caller_name="Zoë Ünïcode",
        callee="8005550100",
        agent="101",
        agents=["101", "102"],
        queue="support",
        answered_at=T0 + timedelta(seconds=12.5),
        ended_at=T0 + timedelta(seconds=100),
        disposition="answered",
        hangup_by="customer",
        transfers=[Transfer("101", "102", "blind")],
        recording="/var/spool/asterisk/monitor/x.wav",
        end_seen=False,
        wait_seconds=12.5,
        talk_seconds=87.5,
    )
    call_id = save_call(rec)
    assert get_call(call_id) == {"id": call_id, **rec.to_dict()}
    assert get_call(call_id + 1000) is None


def test_same_call_saved_again_is_updated_not_duplicated(db: pw.Database) -> None:
    partial = record("1.1", caller="5551000")
    first = save_call(partial)
    answered = partial.copy()
    answered.agent, answered.agents, answered.answered_at = "101", ["101"], T0 + timedelta(seconds=5)
    assert save_call(answered) == first
    assert save_call(ended(answered, disposition="answered", miss_reason=None)) == first
    assert Call.select().count() == 1
    assert get_call(first)["disposition"] == "answered"  # type: ignore[index]


def test_final_record_is_never_overwritten_by_a_stale_partial(db: pw.Database) -> None:
    partial = record("2.1", caller="5551000")
    final = ended(partial)
    call_id = save_call(final)
    assert save_call(partial) == call_id  # a replay after a resync delivers the old snapshot late
    assert get_call(call_id) == {"id": call_id, **final.to_dict()}


def test_end_seen_is_never_replaced_by_a_guessed_end(db: pw.Database) -> None:
    seen = ended(record("3.1"))
    call_id = save_call(seen)
    guessed = ended(record("3.1"), end_seen=False, hangup_by="system")
    save_call(guessed)
    assert get_call(call_id)["end_seen"] is True  # type: ignore[index]
    # ... but a final record does take later final news (the recording arrives after the end),
    with_recording = seen.copy()
    with_recording.recording = "/rec/3.1.wav"
    save_call(with_recording)
    assert get_call(call_id)["recording"] == "/rec/3.1.wav"  # type: ignore[index]
    # ... and a guessed end is corrected by the real one.
    other = save_call(ended(record("3.2"), end_seen=False))
    save_call(ended(record("3.2"), end_seen=True, hangup_by="customer"))
    assert get_call(other)["hangup_by"] == "customer"  # type: ignore[index]


def test_overlong_values_are_cut_not_lost(db: pw.Database) -> None:
    call_id = save_call(record("4.1", caller_name="N" * 500))
    assert get_call(call_id)["caller_name"] == "N" * 128  # type: ignore[index]


# --- searching -------------------------------------------------------------------------------------


@pytest.fixture
def log(db: pw.Database) -> dict[str, int]:
    ids = {
        "a": save_call(
            ended(
                record("a", 0, caller="+1 (555) 123-4567", callee="200", agent="101", agents=["101"]),
                disposition="answered",
                miss_reason=None,
            )
        ),
        "b": save_call(ended(record("b", 10, caller="5559876543", callee="200", agents=["102", "1_1"]))),
        "c": save_call(
            record(
                "c",
                20,
                caller="101",
                callee="+15551234567",
                direction="outbound",
                agent="101",
                agents=["101"],
            )
        ),  # type: ignore[arg-type]
        "d": save_call(ended(record("d", 30, caller="anonymous", callee="200"))),
    }
    other_pbx = record("a", 5, caller="5551234567")
    other_pbx.pbx = "branch"
    ids["branch-a"] = save_call(other_pbx)
    return ids


def found(f: CallFilter, **kw: int) -> list[str]:
    rows, _ = search_calls(f, **kw)
    return [f"{r['pbx']}-{r['call_id']}" if r["pbx"] != "main" else r["call_id"] for r in rows]


def test_search_newest_first_with_total_and_pages(log: dict[str, int]) -> None:
    assert found(CallFilter()) == ["d", "c", "b", "branch-a", "a"]
    rows, total = search_calls(CallFilter(), limit=2, offset=2)
    assert ([r["call_id"] for r in rows], total) == (["b", "a"], 5)
    assert rows[0]["id"] == log["b"]


def test_search_by_time_on_started_at(log: dict[str, int]) -> None:
    assert found(CallFilter(since=T0 + timedelta(minutes=10))) == ["d", "c", "b"]
    assert found(CallFilter(until=T0 + timedelta(minutes=10))) == ["branch-a", "a"]
    naive = (T0 + timedelta(minutes=20)).replace(tzinfo=None)  # naive means UTC
    assert found(CallFilter(since=naive, until=T0 + timedelta(minutes=21))) == ["c"]


def test_search_by_number_matches_e164_else_the_last_digits(log: dict[str, int]) -> None:
    assert found(CallFilter(number="5551234567")) == ["c", "branch-a", "a"]
    assert found(CallFilter(number="+1 555 123 4567")) == ["c", "branch-a", "a"]
    assert found(CallFilter(number="00 1 555 123 4567")) == ["c", "branch-a", "a"]  # dialled abroad
    assert found(CallFilter(number="(555) 987-6543 x12")) == ["b"]  # an extension is not the number
    assert found(CallFilter(number="+44 20 7946 0958")) == []  # a valid foreign number: other E.164
    # no numbering plan knows it: the last 9 digits decide, as for numbers stored without a country
    assert found(CallFilter(number="4 555 123 4567")) == ["c", "branch-a", "a"]
    assert found(CallFilter(number="123-4567")) == ["c", "branch-a", "a"]  # a local number: the end
    assert found(CallFilter(number="0200")) == []  # an extension is never the tail of a longer number
    assert found(CallFilter(number="200")) == ["d", "b", "a"]
    assert found(CallFilter(number="anonymous")) == ["d"]
    assert found(CallFilter(number="1234568")) == []


def test_search_by_agent_takes_any_agent_who_talked(log: dict[str, int]) -> None:
    assert found(CallFilter(agent="101")) == ["c", "a"]
    assert found(CallFilter(agent="102")) == ["b"]
    assert found(CallFilter(agent="1_1")) == ["b"]  # LIKE wildcards in the name are literal
    assert found(CallFilter(agent="10")) == []


def test_search_by_disposition_and_combined(log: dict[str, int]) -> None:
    assert found(CallFilter(disposition="missed")) == ["d", "b"]
    assert found(CallFilter(disposition="answered", number="5551234567")) == ["a"]


def test_iter_calls_pages_through_everything_once(log: dict[str, int]) -> None:
    for i in range(5):  # same start time as "a": ties are broken by id, none lost at a batch edge
        save_call(record(f"tie{i}", 0))
    everything = [r["id"] for r in iter_calls(CallFilter(), batch=2)]
    assert everything == [r["id"] for r in search_calls(CallFilter(), limit=100)[0]]
    assert len(everything) == len(set(everything)) == 10


def test_open_calls_are_the_unended_of_one_pbx(log: dict[str, int]) -> None:
    assert [(r.pbx, r.call_id) for r in open_calls("main")] == [("main", "c")]
    assert [r.call_id for r in open_calls("branch")] == ["a"]
    assert open_calls("nowhere") == []


# --- the call log service ----------------------------------------------------------------------------


def test_call_log_service_keeps_the_live_row_then_the_final_one(db: pw.Database) -> None:
    bus = InProcessBus()
    bus.subscribe("call-log", call_log_handler())
    live = record("5.1", caller="5551000")
    bus.publish(CallStarted(at=T0, call=live))
    answered = live.copy()
    answered.agent, answered.agents, answered.answered_at = "101", ["101"], T0 + timedelta(seconds=3)
    bus.publish(CallAnswered(at=T0, call=answered, agent="101"))
    final = ended(answered, disposition="answered", miss_reason=None)
    bus.publish(CallEnded(at=T0, call=final))
    bus.publish(CallAnswered(at=T0, call=answered, agent="101"))  # a late replay
    bus.close()
    (row,) = search_calls(CallFilter())[0]
    assert row == {"id": row["id"], **final.to_dict()}


def test_call_log_service_retries_a_database_blip() -> None:
    saved: list[str] = []
    failures = iter([pw.OperationalError("database is locked")])

    def flaky_save(rec: CallRecord) -> int:
        with contextlib.suppress(StopIteration):
            raise next(failures)
        saved.append(rec.call_id)
        return 1

    handler = call_log_handler(save=flaky_save, retry_delays=(0.0,))
    handler(CallEnded(at=T0, call=ended(record("6.1"))))
    assert saved == ["6.1"]
    failures = iter([pw.OperationalError("down"), pw.OperationalError("still down")])
    with pytest.raises(pw.OperationalError, match="still down"):
        handler(CallEnded(at=T0, call=ended(record("6.2"))))
