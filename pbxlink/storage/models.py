"""The peewee models of the current schema.

The schema itself is created and changed only by `pbxlink.storage.migrations`; these
classes describe what the newest migration leaves behind. All models share one
`DatabaseProxy`, bound at start-up by `pbxlink.storage.database.connect`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import peewee as pw

db_proxy = pw.DatabaseProxy()


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTimeField(pw.DateTimeField):
    """Timestamps are stored naive in UTC (portable across SQLite and PostgreSQL) and read back aware."""

    def db_value(self, value: datetime | None) -> object:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return super().db_value(value)  # type: ignore[no-untyped-call]

    def python_value(self, value: object) -> object:
        parsed = super().python_value(value)  # type: ignore[no-untyped-call]
        if isinstance(parsed, datetime) and parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed


class BaseModel(pw.Model):
    class Meta:
        database = db_proxy
        legacy_table_names = False


class Call(BaseModel):
    """One row per PBX call: (pbx, call_id) is unique, so a replayed end never makes a second row."""

    id = pw.AutoField()  # what peewee adds anyway, spelled out for the type checker
    pbx = pw.CharField(max_length=64)
    call_id = pw.CharField(max_length=128)
    direction = pw.CharField(max_length=16)
    caller = pw.CharField(max_length=64, null=True, index=True)
    caller_name = pw.CharField(max_length=128, null=True)
    callee = pw.CharField(max_length=64, null=True, index=True)
    #: the numbers normalized (pbxlink.domain.phone): E.164 when known, and the last digits
    caller_e164 = pw.CharField(max_length=20, null=True, index=True)
    caller_tail = pw.CharField(max_length=16, null=True, index=True)
    callee_e164 = pw.CharField(max_length=20, null=True, index=True)
    callee_tail = pw.CharField(max_length=16, null=True, index=True)
    agent = pw.CharField(max_length=64, null=True, index=True)
    agents = pw.TextField(default="[]")  # JSON list of extensions, in order
    queue = pw.CharField(max_length=128, null=True)
    started_at = UTCDateTimeField(index=True)
    answered_at = UTCDateTimeField(null=True)
    ended_at = UTCDateTimeField(null=True, index=True)
    wait_seconds = pw.FloatField(null=True)
    talk_seconds = pw.FloatField(null=True)
    disposition = pw.CharField(max_length=16, null=True, index=True)
    miss_reason = pw.CharField(max_length=32, null=True)
    hangup_by = pw.CharField(max_length=16, null=True)
    transfers = pw.TextField(default="[]")  # JSON list of {"from", "to", "kind"}
    recording = pw.TextField(null=True)
    end_seen = pw.BooleanField(default=True)
    origin = pw.CharField(max_length=64, null=True, index=True)  # the originate's tag, when pbxlink placed it
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("pbx", "call_id"), True),)


class User(BaseModel):
    username = pw.CharField(max_length=64, unique=True)
    password_hash = pw.CharField(max_length=255)
    role = pw.CharField(max_length=16, default="agent")  # agent | supervisor | admin
    extension = pw.CharField(max_length=32, null=True)
    active = pw.BooleanField(default=True)
    created_at = UTCDateTimeField(default=utcnow)

    @property
    def is_admin(self) -> bool:
        return bool(self.role == "admin")


class ApiToken(BaseModel):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    user = pw.ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    name = pw.CharField(max_length=64)
    token_sha256 = pw.CharField(max_length=64, unique=True)
    created_at = UTCDateTimeField(default=utcnow)
    last_used_at = UTCDateTimeField(null=True)


class Setting(BaseModel):
    """Small key/value state pbxlink keeps for itself (e.g. the generated web secret key)."""

    key = pw.CharField(max_length=64, primary_key=True)
    value = pw.TextField()


class OutboxItem(BaseModel):
    """Work that must happen once, whatever fails meanwhile: a CRM call log, a webhook delivery.

    (kind, target, key) is unique, so enqueueing the same work twice keeps one row; a
    worker claims a row by moving `claimed_until` forward in one UPDATE, so two workers
    (or a restarted one) never deliver it at the same time.
    """

    id = pw.AutoField()
    kind = pw.CharField(max_length=16)  # crm_log | webhook
    target = pw.CharField(max_length=64)  # the connector's or the webhook's configured name
    key = pw.CharField(max_length=191)  # idempotency key, e.g. "<pbx>:<call_id>"
    payload = pw.TextField()  # JSON
    status = pw.CharField(max_length=16, default="pending", index=True)  # pending | done | failed
    attempts = pw.IntegerField(default=0)
    next_at = UTCDateTimeField(default=utcnow, index=True)
    claimed_until = UTCDateTimeField(null=True)
    last_error = pw.TextField(null=True)
    result = pw.CharField(max_length=255, null=True)  # e.g. the CRM's id of the logged call
    created_at = UTCDateTimeField(default=utcnow)
    done_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("kind", "target", "key"), True),)


class Callback(BaseModel):
    """A customer to call back: after a missed call, or asked for on the website.

    At most one pending or in-progress callback per (policy, number_key): a partial unique
    index enforces it (see migration 4). A worker claims a due row by moving `claimed_until`
    forward in one UPDATE; `tag` is the originate tag of the attempt under way, so a restart
    in the middle of an attempt finds its outcome instead of dialling again.
    """

    id = pw.AutoField()
    policy = pw.CharField(max_length=64)
    pbx = pw.CharField(max_length=64)
    number = pw.CharField(max_length=64)  # as dialled: E.164 when known
    number_key = pw.CharField(max_length=20, index=True)  # PhoneNumbers.key: deduplication and matching
    name = pw.CharField(max_length=128, null=True)  # given on the website form, shown as text
    source = pw.CharField(max_length=16)  # missed_call | web | manual
    missed_call = pw.CharField(max_length=200, null=True)  # "<pbx>:<call_id>" of the missed call
    queue = pw.CharField(max_length=128, null=True)  # the queue (or DID) the customer tried
    agent = pw.CharField(max_length=64, null=True)  # the agent who missed it, or the one it is assigned to
    #: pending | in_progress | done | failed | cancelled
    status = pw.CharField(max_length=16, default="pending", index=True)
    due_at = UTCDateTimeField(index=True)
    attempts = pw.IntegerField(default=0)
    last_outcome = pw.CharField(max_length=16, null=True)  # answered|no_answer|busy|failed
    reason = pw.CharField(max_length=255, null=True)  # why it was cancelled or failed, in words
    tag = pw.CharField(max_length=64, null=True, index=True)  # the attempt under way
    claimed_until = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)


class CallbackAttempt(BaseModel):
    """One originate of a callback and what came of it; its calls are linked by `tag` = Call.origin."""

    id = pw.AutoField()
    callback = pw.ForeignKeyField(Callback, backref="attempt_rows", on_delete="CASCADE")
    tag = pw.CharField(max_length=64, unique=True)
    started_at = UTCDateTimeField(default=utcnow)
    ended_at = UTCDateTimeField(null=True)
    outcome = pw.CharField(max_length=16, null=True)  # answered|no_answer|busy|failed
    call_id = pw.CharField(max_length=128, null=True)  # the call it made, when the PBX reported one
    by = pw.CharField(max_length=64, null=True)  # "scheduler", or the user who pressed "call now"


class Recording(BaseModel):
    """One recording file, indexed: found from the call tracker or by scanning the recording folders.

    A file is only ever served by this row's id, and only if its real path lies inside a
    configured folder. `status`: present | changed (size or hash differ from the index) |
    missing | deleted (by retention: the metadata stays). `legal_hold` wins over every policy.
    """

    id = pw.AutoField()
    path = pw.CharField(max_length=1024, unique=True)  # the real path, inside a recording folder
    folder = pw.CharField(max_length=1024)  # the configured folder it was found in
    pbx = pw.CharField(max_length=64, null=True)
    call_id = pw.CharField(max_length=128, null=True, index=True)  # the call, when known
    started_at = UTCDateTimeField(index=True)  # the call's start, else the file's time
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
    duration = pw.FloatField(null=True)  # seconds, read from the file
    format = pw.CharField(max_length=16, null=True)  # wav, mp3, ogg, opus …
    sha256 = pw.CharField(max_length=64, null=True)
    mtime = pw.FloatField(null=True)  # the file's mtime when indexed: a change is noticed
    status = pw.CharField(max_length=16, default="present", index=True)
    legal_hold = pw.BooleanField(default=False)
    source = pw.CharField(max_length=16, default="scan")  # tracker | scan
    indexed_at = UTCDateTimeField(default=utcnow)
    checked_at = UTCDateTimeField(null=True)
    deleted_at = UTCDateTimeField(null=True)
    deleted_by = pw.CharField(max_length=128, null=True)  # the retention policy or the user

    class Meta:
        indexes = ((("agent", "started_at"), False),)  # an agent's recordings of a week, newest first


class AuditEntry(BaseModel):
    """Who did what, when: every listen and download of a recording, and other sensitive actions."""

    id = pw.AutoField()
    at = UTCDateTimeField(default=utcnow, index=True)
    user = pw.CharField(max_length=64)  # username, or "link" for a signed CRM link, or "system"
    action = pw.CharField(max_length=32, index=True)  # listen | download | delete | hold | release …
    target = pw.CharField(max_length=128)  # e.g. "recording:42"
    detail = pw.TextField(null=True)  # JSON: range, address, before/after (secrets masked)


#: Indexes with a WHERE clause, which peewee's Meta cannot describe: table -> ((columns), unique).
PARTIAL_INDEXES: dict[str, set[tuple[tuple[str, ...], bool]]] = {
    "callback": {(("policy", "number_key"), True)}
}

ALL_MODELS: tuple[type[BaseModel], ...] = (
    Call,
    User,
    ApiToken,
    Setting,
    OutboxItem,
    Callback,
    CallbackAttempt,
    Recording,
    AuditEntry,
)
