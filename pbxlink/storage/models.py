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
    amd = pw.CharField(max_length=16, null=True)  # human | machine | notsure, when the dialplan ran AMD
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
    #: part of every session's signature: "log out everywhere" moves it on
    session_version = pw.IntegerField(default=0)

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


class Campaign(BaseModel):
    """An outbound campaign: whom it calls is its contacts; how, when and how fast is here.

    `status`: draft | running | paused | stopped | completed. A running campaign dials only
    inside its schedule (`days`, `hours` in `timezone`) and each contact's own calling window
    (`window_start` to `window_end` in the contact's zone). `next_slot_at` is the pacing shared by
    every worker: a dial first moves it one interval (60 / per_minute s) on, in one UPDATE.
    """

    id = pw.AutoField()
    name = pw.CharField(max_length=64, unique=True)
    pbx = pw.CharField(max_length=64)
    mode = pw.CharField(max_length=16)  # broadcast | agent_first
    caller_id = pw.CharField(max_length=64, null=True)  # the number the contacts see
    message = pw.CharField(max_length=128, null=True)  # broadcast: the recording played
    queue = pw.CharField(
        max_length=128, null=True
    )  # agent_first: whose free agent; broadcast: press-1 target
    amd = pw.BooleanField(default=False)  # run answering-machine detection (broadcast)
    timezone = pw.CharField(max_length=64)  # the schedule's zone (IANA)
    days = pw.CharField(max_length=64, default="mon-fri")  # cron day_of_week
    hours = pw.CharField(max_length=32, default="09:00-18:00")  # when it runs, in `timezone`
    window_start = pw.CharField(max_length=5, default="09:00")  # in each contact's own zone
    window_end = pw.CharField(max_length=5, default="20:00")
    max_concurrent = pw.IntegerField(default=5)
    per_minute = pw.FloatField(default=10.0)
    ring_timeout = pw.IntegerField(default=30)
    #: JSON {"busy"|"no_answer"|"failed"|"machine": {"after_minutes": n, "max_attempts": n}}
    retry_rules = pw.TextField(default="{}")
    status = pw.CharField(max_length=16, default="draft", index=True)
    next_slot_at = UTCDateTimeField(null=True)
    created_by = pw.CharField(max_length=64, null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)
    started_at = UTCDateTimeField(null=True)
    finished_at = UTCDateTimeField(null=True)


class CampaignContact(BaseModel):
    """One person a campaign calls; (campaign, number_key) is unique: nobody is in a list twice.

    `status`: pending (due at `next_at`) | dialing (claimed: `claimed_until`; `tag` is the
    attempt under way) | done (`last_outcome` says how it ended) | dnc (on the do-not-call
    list when it came to be dialled) | stopped (the campaign was stopped first).
    """

    id = pw.AutoField()
    campaign = pw.ForeignKeyField(Campaign, backref="contacts", on_delete="CASCADE")
    campaign_id: int  # what peewee adds for the foreign key, spelled out for the type checker
    number = pw.CharField(max_length=32)  # E.164, as dialled
    number_key = pw.CharField(max_length=20)  # PhoneNumbers.key
    name = pw.CharField(max_length=128, null=True)
    timezones = pw.CharField(max_length=255)  # the contact's IANA zone(s), comma-separated
    fields = pw.TextField(default="{}")  # JSON: the custom columns, passed to the dialplan
    row = pw.IntegerField(null=True)  # the CSV line it came from
    status = pw.CharField(max_length=16, default="pending")
    attempts = pw.IntegerField(default=0)
    last_outcome = pw.CharField(max_length=16, null=True)  # answered|machine|busy|no_answer|failed
    next_at = UTCDateTimeField(null=True)
    claimed_until = UTCDateTimeField(null=True)
    tag = pw.CharField(max_length=64, null=True, index=True)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("campaign", "number_key"), True),
            (("campaign", "status", "next_at"), False),
        )


class CampaignAttempt(BaseModel):
    """One dial of a contact, written with its tag before the PBX is asked; its call has Call.origin = tag."""

    id = pw.AutoField()
    campaign = pw.ForeignKeyField(Campaign, backref="attempt_rows", on_delete="CASCADE")
    contact = pw.ForeignKeyField(CampaignContact, backref="attempt_rows", on_delete="CASCADE")
    campaign_id: int
    contact_id: int
    tag = pw.CharField(max_length=64, unique=True)
    started_at = UTCDateTimeField(default=utcnow)
    deadline = UTCDateTimeField()  # no call seen by then: the originate is taken as failed
    ended_at = UTCDateTimeField(null=True, index=True)
    outcome = pw.CharField(max_length=16, null=True)  # answered|machine|busy|no_answer|failed
    amd = pw.CharField(max_length=16, null=True)
    agent = pw.CharField(max_length=64, null=True)  # who talked with the contact
    call_id = pw.CharField(max_length=128, null=True)
    talk_seconds = pw.FloatField(null=True)
    detail = pw.CharField(max_length=255, null=True)  # why it failed, in words

    class Meta:
        indexes = ((("campaign", "outcome"), False),)


class CampaignImport(BaseModel):
    """One CSV upload into a campaign, with its progress (the panel's and the CLI's bar read it)."""

    id = pw.AutoField()
    campaign = pw.ForeignKeyField(Campaign, backref="imports", on_delete="CASCADE")
    campaign_id: int
    filename = pw.CharField(max_length=255)
    status = pw.CharField(max_length=16, default="running")  # running | done | failed
    mapping = pw.TextField(default="{}")  # JSON: CSV header -> field
    total_bytes = pw.BigIntegerField(default=0)
    read_bytes = pw.BigIntegerField(default=0)
    rows = pw.IntegerField(default=0)
    accepted = pw.IntegerField(default=0)
    rejected = pw.IntegerField(default=0)
    duplicates = pw.IntegerField(default=0)
    dnc = pw.IntegerField(default=0)
    rejects_path = pw.CharField(max_length=1024, null=True)  # the CSV of rejected rows and why
    error = pw.CharField(max_length=500, null=True)
    started_by = pw.CharField(max_length=64, null=True)
    started_at = UTCDateTimeField(default=utcnow)
    finished_at = UTCDateTimeField(null=True)


class DncEntry(BaseModel):
    """The global do-not-call list: checked at import and again right before every dial."""

    id = pw.AutoField()
    number = pw.CharField(max_length=32)
    number_key = pw.CharField(max_length=20, unique=True)
    reason = pw.CharField(max_length=255, null=True)
    added_by = pw.CharField(max_length=64, null=True)
    added_at = UTCDateTimeField(default=utcnow)
