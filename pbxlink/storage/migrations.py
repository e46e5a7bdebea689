"""Versioned schema migrations, recorded in the `schema_migrations` table.

Each migration runs once, in its own transaction, under a lock (SQLite: `BEGIN
IMMEDIATE`; PostgreSQL: an advisory lock), so two processes starting at once apply it
once between them and the other one just sees it recorded.

A migration describes the schema as it was when it was written: migration 1 carries a
frozen copy of the tables, so growing `models.py` later never changes what it creates.
A later change to `models.py` comes with a new migration appended to MIGRATIONS, e.g.:

    def _add_call_tags(db: pw.Database) -> None:
        schema = SchemaMigrator.from_database(db)
        migrate_ops(schema.add_column("call", "tags", pw.TextField(default="[]")))

(`from playhouse.migrate import SchemaMigrator, migrate as migrate_ops`). A test checks
that the tables the migrations leave behind match `models.py`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import peewee as pw

from pbxlink.storage.database import first_line

log = logging.getLogger(__name__)

#: Any constant works, as long as nothing else in the same PostgreSQL database uses it.
_PG_LOCK_KEY = 0x7062786C696E6B  # "pbxlink"


class MigrationError(Exception):
    """The schema cannot be brought up to date; the message is one line meant for the admin."""


def _initial_schema(db: pw.Database) -> None:
    """The tables of the first release, frozen here: never edit them, add a migration instead."""

    class Base(pw.Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Call(Base):
        pbx = pw.CharField(max_length=64)
        call_id = pw.CharField(max_length=128)
        direction = pw.CharField(max_length=16)
        caller = pw.CharField(max_length=64, null=True, index=True)
        caller_name = pw.CharField(max_length=128, null=True)
        callee = pw.CharField(max_length=64, null=True, index=True)
        agent = pw.CharField(max_length=64, null=True, index=True)
        agents = pw.TextField()
        queue = pw.CharField(max_length=128, null=True)
        started_at = pw.DateTimeField(index=True)
        answered_at = pw.DateTimeField(null=True)
        ended_at = pw.DateTimeField(null=True, index=True)
        wait_seconds = pw.FloatField(null=True)
        talk_seconds = pw.FloatField(null=True)
        disposition = pw.CharField(max_length=16, null=True, index=True)
        miss_reason = pw.CharField(max_length=32, null=True)
        hangup_by = pw.CharField(max_length=16, null=True)
        transfers = pw.TextField()
        recording = pw.TextField(null=True)
        end_seen = pw.BooleanField()
        updated_at = pw.DateTimeField()

        class Meta:
            table_name = "call"
            indexes = ((("pbx", "call_id"), True),)

    class User(Base):
        username = pw.CharField(max_length=64, unique=True)
        password_hash = pw.CharField(max_length=255)
        role = pw.CharField(max_length=16)
        extension = pw.CharField(max_length=32, null=True)
        active = pw.BooleanField()
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "user"

    class ApiToken(Base):
        user = pw.ForeignKeyField(User, on_delete="CASCADE")
        name = pw.CharField(max_length=64)
        token_sha256 = pw.CharField(max_length=64, unique=True)
        created_at = pw.DateTimeField()
        last_used_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "api_token"

    class Setting(Base):
        key = pw.CharField(max_length=64, primary_key=True)
        value = pw.TextField()

        class Meta:
            table_name = "setting"

    db.create_tables([Call, User, ApiToken, Setting], safe=False)


def _normalized_numbers(db: pw.Database) -> None:
    """Caller and callee also stored normalized (E.164, last digits), filled in for the calls already kept."""
    from playhouse.migrate import SchemaMigrator
    from playhouse.migrate import migrate as migrate_ops

    from pbxlink.domain.phone import numbers

    schema = SchemaMigrator.from_database(db)
    ops = []
    for side in ("caller", "callee"):
        ops += [
            schema.add_column("call", f"{side}_e164", pw.CharField(max_length=20, null=True)),
            schema.add_column("call", f"{side}_tail", pw.CharField(max_length=16, null=True)),
            schema.add_index("call", (f"{side}_e164",), False),
            schema.add_index("call", (f"{side}_tail",), False),
        ]
    migrate_ops(*ops)
    phones = numbers()
    names = ("id", "caller", "callee", "caller_e164", "caller_tail", "callee_e164", "callee_tail")
    table = pw.Table("call", names).bind(db)
    column: dict[str, pw.Column] = {name: getattr(table, name) for name in names}  # a Table's columns
    last = 0
    query = table.select(column["id"], column["caller"], column["callee"])
    while rows := list(query.where(column["id"] > last).order_by(column["id"]).limit(1000).dicts()):
        for row in rows:
            values: dict[pw.Column, str | None] = {}
            for side in ("caller", "callee"):
                q = phones.query(row[side])
                if q is not None:
                    values[column[f"{side}_e164"]], values[column[f"{side}_tail"]] = q.e164, q.tail
            if values:  # the update needs the columns themselves: peewee cannot sort names for SQL
                table.update(values).where(column["id"] == row["id"]).execute()
        last = rows[-1]["id"]


def _outbox(db: pw.Database) -> None:
    """The durable outbox for CRM call logs and webhook deliveries (frozen copy of OutboxItem)."""

    class OutboxItem(pw.Model):
        kind = pw.CharField(max_length=16)
        target = pw.CharField(max_length=64)
        key = pw.CharField(max_length=191)
        payload = pw.TextField()
        status = pw.CharField(max_length=16, default="pending", index=True)
        attempts = pw.IntegerField(default=0)
        next_at = pw.DateTimeField(index=True)
        claimed_until = pw.DateTimeField(null=True)
        last_error = pw.TextField(null=True)
        result = pw.CharField(max_length=255, null=True)
        created_at = pw.DateTimeField()
        done_at = pw.DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "outbox_item"
            indexes = ((("kind", "target", "key"), True),)

    db.create_tables([OutboxItem], safe=False)


def _callbacks(db: pw.Database) -> None:
    """call.origin (the originate's tag), and the callback tables (frozen copies of the models)."""
    from playhouse.migrate import SchemaMigrator
    from playhouse.migrate import migrate as migrate_ops

    schema = SchemaMigrator.from_database(db)
    migrate_ops(
        schema.add_column("call", "origin", pw.CharField(max_length=64, null=True)),
        schema.add_index("call", ("origin",), False),
    )

    class Callback(pw.Model):
        policy = pw.CharField(max_length=64)
        pbx = pw.CharField(max_length=64)
        number = pw.CharField(max_length=64)
        number_key = pw.CharField(max_length=20, index=True)
        name = pw.CharField(max_length=128, null=True)
        source = pw.CharField(max_length=16)
        missed_call = pw.CharField(max_length=200, null=True)
        queue = pw.CharField(max_length=128, null=True)
        agent = pw.CharField(max_length=64, null=True)
        status = pw.CharField(max_length=16, default="pending", index=True)
        due_at = pw.DateTimeField(index=True)
        attempts = pw.IntegerField(default=0)
        last_outcome = pw.CharField(max_length=16, null=True)
        reason = pw.CharField(max_length=255, null=True)
        tag = pw.CharField(max_length=64, null=True, index=True)
        claimed_until = pw.DateTimeField(null=True)
        created_at = pw.DateTimeField()
        updated_at = pw.DateTimeField()

        class Meta:
            database = db
            table_name = "callback"

    class CallbackAttempt(pw.Model):
        callback = pw.ForeignKeyField(Callback, on_delete="CASCADE")
        tag = pw.CharField(max_length=64, unique=True)
        started_at = pw.DateTimeField()
        ended_at = pw.DateTimeField(null=True)
        outcome = pw.CharField(max_length=16, null=True)
        call_id = pw.CharField(max_length=128, null=True)
        by = pw.CharField(max_length=64, null=True)

        class Meta:
            database = db
            table_name = "callback_attempt"

    db.create_tables([Callback, CallbackAttempt], safe=False)
    # One open callback per customer and policy, enforced by the database itself (both engines
    # have partial indexes): two processes scheduling the same miss cannot both succeed.
    db.execute_sql(  # type: ignore[no-untyped-call]
        "CREATE UNIQUE INDEX callback_one_open ON callback (policy, number_key) "
        "WHERE status IN ('pending', 'in_progress')"
    )


def _recordings(db: pw.Database) -> None:
    """The recordings index and the audit log (frozen copies of Recording and AuditEntry)."""

    class Recording(pw.Model):
        path = pw.CharField(max_length=1024, unique=True)
        folder = pw.CharField(max_length=1024)
        pbx = pw.CharField(max_length=64, null=True)
        call_id = pw.CharField(max_length=128, null=True, index=True)
        started_at = pw.DateTimeField(index=True)
        direction = pw.CharField(max_length=16, null=True)
        caller_e164 = pw.CharField(max_length=20, null=True, index=True)
        caller_tail = pw.CharField(max_length=16, null=True, index=True)
        callee_e164 = pw.CharField(max_length=20, null=True, index=True)
        callee_tail = pw.CharField(max_length=16, null=True, index=True)
        agent = pw.CharField(max_length=64, null=True, index=True)
        queue = pw.CharField(max_length=128, null=True, index=True)
        disposition = pw.CharField(max_length=16, null=True)
        talk_seconds = pw.FloatField(null=True)
        size = pw.BigIntegerField(default=0)
        duration = pw.FloatField(null=True)
        format = pw.CharField(max_length=16, null=True)
        sha256 = pw.CharField(max_length=64, null=True)
        mtime = pw.FloatField(null=True)
        status = pw.CharField(max_length=16, default="present", index=True)
        legal_hold = pw.BooleanField(default=False)
        source = pw.CharField(max_length=16, default="scan")
        indexed_at = pw.DateTimeField()
        checked_at = pw.DateTimeField(null=True)
        deleted_at = pw.DateTimeField(null=True)
        deleted_by = pw.CharField(max_length=128, null=True)

        class Meta:
            database = db
            table_name = "recording"

    class AuditEntry(pw.Model):
        at = pw.DateTimeField(index=True)
        user = pw.CharField(max_length=64)
        action = pw.CharField(max_length=32, index=True)
        target = pw.CharField(max_length=128)
        detail = pw.TextField(null=True)

        class Meta:
            database = db
            table_name = "audit_entry"

    db.create_tables([Recording, AuditEntry], safe=False)


def _recordings_by_agent(db: pw.Database) -> None:
    """An agent's recordings over a date range is the panel's commonest search: one index for both."""
    from playhouse.migrate import SchemaMigrator
    from playhouse.migrate import migrate as migrate_ops

    migrate_ops(SchemaMigrator.from_database(db).add_index("recording", ("agent", "started_at"), False))


def _campaigns(db: pw.Database) -> None:
    """call.amd, and the campaign tables and the do-not-call list (frozen copies of the models)."""
    from playhouse.migrate import SchemaMigrator
    from playhouse.migrate import migrate as migrate_ops

    migrate_ops(
        SchemaMigrator.from_database(db).add_column("call", "amd", pw.CharField(max_length=16, null=True))
    )

    class Campaign(pw.Model):
        name = pw.CharField(max_length=64, unique=True)
        pbx = pw.CharField(max_length=64)
        mode = pw.CharField(max_length=16)
        caller_id = pw.CharField(max_length=64, null=True)
        message = pw.CharField(max_length=128, null=True)
        queue = pw.CharField(max_length=128, null=True)
        amd = pw.BooleanField(default=False)
        timezone = pw.CharField(max_length=64)
        days = pw.CharField(max_length=64, default="mon-fri")
        hours = pw.CharField(max_length=32, default="09:00-18:00")
        window_start = pw.CharField(max_length=5, default="09:00")
        window_end = pw.CharField(max_length=5, default="20:00")
        max_concurrent = pw.IntegerField(default=5)
        per_minute = pw.FloatField(default=10.0)
        ring_timeout = pw.IntegerField(default=30)
        retry_rules = pw.TextField(default="{}")
        status = pw.CharField(max_length=16, default="draft", index=True)
        next_slot_at = pw.DateTimeField(null=True)
        created_by = pw.CharField(max_length=64, null=True)
        created_at = pw.DateTimeField()
        updated_at = pw.DateTimeField()
        started_at = pw.DateTimeField(null=True)
        finished_at = pw.DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "campaign"

    class CampaignContact(pw.Model):
        campaign = pw.ForeignKeyField(Campaign, on_delete="CASCADE")
        number = pw.CharField(max_length=32)
        number_key = pw.CharField(max_length=20)
        name = pw.CharField(max_length=128, null=True)
        timezones = pw.CharField(max_length=255)
        fields = pw.TextField(default="{}")
        row = pw.IntegerField(null=True)
        status = pw.CharField(max_length=16, default="pending")
        attempts = pw.IntegerField(default=0)
        last_outcome = pw.CharField(max_length=16, null=True)
        next_at = pw.DateTimeField(null=True)
        claimed_until = pw.DateTimeField(null=True)
        tag = pw.CharField(max_length=64, null=True, index=True)
        updated_at = pw.DateTimeField()

        class Meta:
            database = db
            table_name = "campaign_contact"
            indexes = ((("campaign", "number_key"), True), (("campaign", "status", "next_at"), False))

    class CampaignAttempt(pw.Model):
        campaign = pw.ForeignKeyField(Campaign, on_delete="CASCADE")
        contact = pw.ForeignKeyField(CampaignContact, on_delete="CASCADE")
        tag = pw.CharField(max_length=64, unique=True)
        started_at = pw.DateTimeField()
        deadline = pw.DateTimeField()
        ended_at = pw.DateTimeField(null=True, index=True)
        outcome = pw.CharField(max_length=16, null=True)
        amd = pw.CharField(max_length=16, null=True)
        agent = pw.CharField(max_length=64, null=True)
        call_id = pw.CharField(max_length=128, null=True)
        talk_seconds = pw.FloatField(null=True)
        detail = pw.CharField(max_length=255, null=True)

        class Meta:
            database = db
            table_name = "campaign_attempt"
            indexes = ((("campaign", "outcome"), False),)

    class CampaignImport(pw.Model):
        campaign = pw.ForeignKeyField(Campaign, on_delete="CASCADE")
        filename = pw.CharField(max_length=255)
        status = pw.CharField(max_length=16, default="running")
        mapping = pw.TextField(default="{}")
        total_bytes = pw.BigIntegerField(default=0)
        read_bytes = pw.BigIntegerField(default=0)
        rows = pw.IntegerField(default=0)
        accepted = pw.IntegerField(default=0)
        rejected = pw.IntegerField(default=0)
        duplicates = pw.IntegerField(default=0)
        dnc = pw.IntegerField(default=0)
        rejects_path = pw.CharField(max_length=1024, null=True)
        error = pw.CharField(max_length=500, null=True)
        started_by = pw.CharField(max_length=64, null=True)
        started_at = pw.DateTimeField()
        finished_at = pw.DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "campaign_import"

    class DncEntry(pw.Model):
        number = pw.CharField(max_length=32)
        number_key = pw.CharField(max_length=20, unique=True)
        reason = pw.CharField(max_length=255, null=True)
        added_by = pw.CharField(max_length=64, null=True)
        added_at = pw.DateTimeField()

        class Meta:
            database = db
            table_name = "dnc_entry"

    db.create_tables([Campaign, CampaignContact, CampaignAttempt, CampaignImport, DncEntry], safe=False)


def _session_version(db: pw.Database) -> None:
    """user.session_version: "log out everywhere" moves it on; sessions signed with the old one end."""
    from playhouse.migrate import SchemaMigrator
    from playhouse.migrate import migrate as migrate_ops

    column = pw.IntegerField(default=0)
    migrate_ops(SchemaMigrator.from_database(db).add_column("user", "session_version", column))


#: (version, what it does, how); versions only ever grow, and a released one is never edited.
MIGRATIONS: tuple[tuple[int, str, Callable[[pw.Database], None]], ...] = (
    (1, "initial schema: call, user, api_token, setting", _initial_schema),
    (2, "normalized caller and callee numbers", _normalized_numbers),
    (3, "outbox for CRM call logs and webhooks", _outbox),
    (4, "call origin, callbacks", _callbacks),
    (5, "recordings index, audit log", _recordings),
    (6, "recordings by agent and time", _recordings_by_agent),
    (7, "campaigns, do-not-call list, call amd", _campaigns),
    (8, "user session version", _session_version),
)


def migrate(db: pw.Database) -> list[int]:
    """Apply the migrations this database lacks, each in its own transaction; return the versions applied."""
    table = pw.Table("schema_migrations").bind(db)
    with _locked(db):
        db.execute_sql(  # type: ignore[no-untyped-call]
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY,"
            " name VARCHAR(255) NOT NULL, applied_at VARCHAR(32) NOT NULL)"
        )
        newest = max((v for (v,) in table.select(table.c.version).tuples()), default=0)
    known = MIGRATIONS[-1][0]
    if newest > known:
        raise MigrationError(
            f"the database schema is at version {newest}, newer than this pbxlink knows ({known}): "
            "upgrade pbxlink, or point it at another database"
        )
    applied: list[int] = []
    for version, name, apply in MIGRATIONS:
        try:
            with _locked(db):
                if table.select().where(table.c.version == version).exists():
                    continue
                apply(db)
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                table.insert(version=version, name=name, applied_at=stamp).execute()
        except pw.PeeweeException as exc:
            raise MigrationError(
                f"database migration {version} ({name}) failed, nothing of it kept: {first_line(exc)}"
            ) from exc
        log.info("database: applied migration %d (%s)", version, name)
        applied.append(version)
    return applied


@contextlib.contextmanager
def _locked(db: pw.Database) -> Iterator[None]:
    """A transaction that no other pbxlink process can run alongside."""
    if isinstance(db, pw.SqliteDatabase):
        with db.atomic("IMMEDIATE"):
            yield
    else:
        with db.atomic():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))  # type: ignore[no-untyped-call]
            yield
