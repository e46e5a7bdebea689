"""Retention: recordings are kept as long as the `[[retention_policy]]` tables say, and not a day longer.

- `preview` says, per policy, what it would delete now (files, bytes, oldest and newest call).
  A recording matched by several policies is kept as long as the longest of them says, even
  when that one is not enabled yet: adding a policy never makes anything go sooner.
- `run` deletes the files the enabled policies are done with. The row stays, marked `deleted`
  (when and by which policy); a legal hold is never deleted; a file that already vanished is
  marked `missing`; a path that is not the real file inside a `[recordings]` folder (a link, a
  tampered row) is never unlinked. Then WAVs are transcoded where a policy asks for it.
- `RetentionService` runs this daily at `[recordings] retention_time` (server time), from an
  APScheduler job that only wakes it: the state is in the recording table.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pbxlink.config import Config, RetentionPolicyConfig
from pbxlink.services.retention_transcode import Transcoder, transcode_one
from pbxlink.storage.models import AuditEntry, Recording
from pbxlink.storage.recording_files import Refused, resolve

log = logging.getLogger(__name__)

WITH_FILE = ("present", "changed")  # statuses whose file is still there to delete
EXECUTOR = "retention"


@dataclass(frozen=True)
class PolicyPlan:
    """What one policy would delete now; `ids` are the rows, oldest call first."""

    name: str
    enabled: bool
    keep_days: float
    files: int = 0
    bytes: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    ids: tuple[int, ...] = ()

    @property
    def gb(self) -> float:
        return self.bytes / 1e9


@dataclass(frozen=True)
class RetentionPlan:
    now: datetime
    policies: tuple[PolicyPlan, ...]

    @property
    def to_delete(self) -> tuple[PolicyPlan, ...]:
        """The enabled policies' part: what `run` deletes."""
        return tuple(p for p in self.policies if p.enabled)


@dataclass
class RunResult:
    deleted: int = 0
    bytes: int = 0
    missing: int = 0
    refused: int = 0
    held: int = 0  # put on hold (or changed) between the preview and the run: kept
    transcoded: int = 0
    by_policy: dict[str, int] = field(default_factory=dict)


def matches(policy: RetentionPolicyConfig, rec: Recording) -> bool:
    """Empty lists match everything; a policy naming campaigns matches only recordings of those."""
    return (
        (not policy.queues or rec.queue in policy.queues)
        and (not policy.directions or rec.direction in policy.directions)
        and (not policy.campaigns or getattr(rec, "campaign", None) in policy.campaigns)
    )


def owner(
    policies: Sequence[RetentionPolicyConfig], rec: Recording, now: datetime
) -> RetentionPolicyConfig | None:
    """The policy a due recording is deleted under, or None while any matching policy still keeps it.

    Due only past the longest matching keep; then the longest enabled matching policy owns it
    (else the longest one, for the preview)."""
    matching = [p for p in policies if matches(p, rec)]
    if not matching or rec.started_at > now - timedelta(days=max(p.keep_days for p in matching)):
        return None
    enabled = [p for p in matching if p.enabled]
    return max(enabled or matching, key=lambda p: p.keep_days)


def preview(policies: Sequence[RetentionPolicyConfig], now: datetime) -> RetentionPlan:
    """What each policy would delete at `now`; legal holds and files already gone are left out."""
    found: dict[str, list[Recording]] = {p.name: [] for p in policies}
    if policies:
        latest = now - timedelta(days=min(p.keep_days for p in policies))
        query = (
            Recording.select()
            .where(Recording.status.in_(WITH_FILE), ~Recording.legal_hold, Recording.started_at <= latest)
            .order_by(Recording.started_at, Recording.id)
        )
        for rec in query.iterator():
            if (p := owner(policies, rec, now)) is not None:
                found[p.name].append(rec)
    plans = []
    for p in policies:
        recs = found[p.name]
        plans.append(
            PolicyPlan(
                name=p.name,
                enabled=p.enabled,
                keep_days=p.keep_days,
                files=len(recs),
                bytes=sum(r.size or 0 for r in recs),
                oldest=recs[0].started_at if recs else None,
                newest=recs[-1].started_at if recs else None,
                ids=tuple(r.id for r in recs),
            )
        )
    return RetentionPlan(now=now, policies=tuple(plans))


def run(
    target: RetentionPlan | Sequence[RetentionPolicyConfig],
    now: datetime,
    by: str,
    *,
    folders: Sequence[Path],
    transcoder: Transcoder | None = None,
    policies: Sequence[RetentionPolicyConfig] = (),
) -> RunResult:
    """Delete what the enabled policies are done with (each row re-checked), then transcode.

    `by` is who started it ("schedule" or a username); `policies` are needed with a plan for
    transcoding (given policies, the plan is made here)."""
    if not isinstance(target, RetentionPlan):
        policies, target = target, preview(target, now)
    result = RunResult()
    for plan in target.to_delete:
        for rec_id in plan.ids:
            _delete_one(rec_id, plan.name, now, folders, result)
    if transcoder is not None:
        result.transcoded = transcode_due(policies, now, folders, transcoder)
    detail = {k: v for k, v in vars(result).items() if v}
    AuditEntry.create(
        at=now, user=by[:64], action="retention", target="recordings", detail=json.dumps(detail)
    )
    log.info(
        "retention run by %s: %d recordings deleted (%.2f GB)%s; %d already missing, %d refused "
        "(outside the recording folders: check those rows), %d kept (held meanwhile), %d transcoded",
        by,
        result.deleted,
        result.bytes / 1e9,
        "".join(f", {n} by {name}" for name, n in result.by_policy.items()),
        result.missing,
        result.refused,
        result.held,
        result.transcoded,
    )
    return result


def transcode_due(
    policies: Sequence[RetentionPolicyConfig], now: datetime, folders: Sequence[Path], tool: Transcoder
) -> int:
    """Transcode the WAVs whose longest matching policy is enabled and wants them compressed by now."""
    wanting = [p for p in policies if p.enabled and p.transcode != "none"]
    if not wanting:
        return 0
    latest = now - timedelta(days=min(p.transcode_after_days for p in wanting))
    query = Recording.select().where(
        Recording.status == "present",
        ~Recording.legal_hold,
        Recording.format == "wav",
        Recording.started_at <= latest,
    )
    done = 0
    for rec in query.iterator():
        matching = [p for p in policies if matches(p, rec)]
        rule = max(matching, key=lambda p: p.keep_days) if matching else None
        if (
            rule is not None
            and rule in wanting
            and rec.started_at <= now - timedelta(days=rule.transcode_after_days)
        ):
            done += transcode_one(rec, rule.transcode, folders, tool)
    return done


def _delete_one(rec_id: int, policy: str, now: datetime, folders: Sequence[Path], result: RunResult) -> None:
    rec = Recording.get_or_none(Recording.id == rec_id)
    if rec is None or rec.legal_hold or rec.status not in WITH_FILE:
        result.held += 1
        return
    if not os.path.lexists(rec.path):
        Recording.update(status="missing", checked_at=now).where(Recording.id == rec_id).execute()
        result.missing += 1
        return
    try:
        real = resolve(rec.path, folders)
        if real != os.path.normpath(rec.path):  # the row must name the file itself, never a link to it
            raise Refused("the stored path is a link, not the recording file")
    except Refused as exc:
        log.warning("retention: recording #%d not deleted: %s (stored path %r)", rec_id, exc, rec.path)
        result.refused += 1
        return
    marked = (
        Recording.update(status="deleted", deleted_at=now, deleted_by=f"retention:{policy}")
        .where(Recording.id == rec_id, ~Recording.legal_hold, Recording.status.in_(WITH_FILE))
        .execute()
    )
    if not marked:  # a hold won the race
        result.held += 1
        return
    try:
        os.unlink(real)  # a link swapped in meanwhile is removed itself, never what it points to
    except FileNotFoundError:
        Recording.update(status="missing").where(Recording.id == rec_id).execute()
        result.missing += 1
        return
    result.deleted += 1
    result.bytes += rec.size or 0
    result.by_policy[policy] = result.by_policy.get(policy, 0) + 1


class RetentionService:
    """The daily run, at `at` ("HH:MM", server time)."""

    def __init__(
        self,
        policies: Sequence[RetentionPolicyConfig],
        folders: Sequence[Path],
        at: str = "03:30",
        transcoder: Transcoder | None = None,
    ) -> None:
        self.policies = tuple(policies)
        self.folders = tuple(folders)
        self.at = at
        self.transcoder = transcoder
        self._scheduler: Any = None

    @classmethod
    def from_config(cls, cfg: Config) -> RetentionService:
        wanted = any(p.enabled and p.transcode != "none" for p in cfg.retention_policies)
        return cls(
            cfg.retention_policies,
            cfg.recordings.folders,
            cfg.recordings.retention_time,
            Transcoder.find() if wanted else None,
        )

    def preview(self, now: datetime | None = None) -> RetentionPlan:
        return preview(self.policies, now or datetime.now(UTC))

    def run(self, by: str, plan: RetentionPlan | None = None) -> RunResult:
        now = datetime.now(UTC)
        return run(
            plan or self.policies,
            now,
            by,
            folders=self.folders,
            transcoder=self.transcoder,
            policies=self.policies,
        )

    def start(self) -> None:
        """Schedule the daily run (nothing at start-up: a restart must not delete at an unexpected hour)."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        if not any(p.enabled for p in self.policies):
            log.info("retention: no [[retention_policy]] is enabled; nothing is deleted (the preview works)")
        hour, minute = self.at.split(":")
        self._scheduler = BackgroundScheduler(executors={EXECUTOR: ThreadPoolExecutor(1)})
        self._scheduler.add_job(
            self._tick,
            "cron",
            hour=int(hour),
            minute=int(minute),
            id="retention",
            executor=EXECUTOR,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )
        self._scheduler.start()

    def stop(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)

    def next_run(self) -> datetime | None:
        job = self._scheduler.get_job("retention") if self._scheduler is not None else None
        return job.next_run_time if job is not None else None

    def _tick(self) -> None:
        try:
            self.run("schedule")
        except Exception:  # the job must come back tomorrow; the traceback says what broke
            log.exception("retention: the daily run failed; it is tried again at %s tomorrow", self.at)
