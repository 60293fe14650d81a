"""Cron schedules the database owns (``jobs.models.Schedule``), timed by rq-scheduler.

The table is the truth; rq-scheduler holds a copy. Each enabled row is one rq-scheduler cron
entry with the stable id ``schedule-<name>``, and :func:`register_schedules` (run by the
scheduler loop every cycle) diffs what Redis holds against the table: a changed, added or
disabled row takes effect within one cycle, and after Redis came back empty every entry is put
back. An entry put back after a fire fell into the gap is put back *due* at that fire, so the
fire still runs (once: see below).

A schedule names a registered request function and its JSON arguments (see
``jobs.request_registry``), so a scheduled run asks for its job exactly as the admin's button
or a command does: the nightly check and "check active" merge into one pending job.

The cron entry calls :func:`fire` with the cron time it fired for (the scheduler stamps it on
the RQ job). A ``ScheduleFire`` row, unique per schedule and fire time, makes each fire run
once whoever asks (two schedulers, a restart at the fire time, a catch-up). A fire that runs
later than the schedule's grace period is recorded as skipped and shown, never run late.

Permissions follow the work, not the door. Writes (create, update, enable, run now) need the
schedule permission *and* every permission the request declares (``bundles.check`` needs
``bundles.change_bundle``…), for the request before and after an edit; a refusal changes
nothing and is written to the admin log. A cron fire runs as the person who last changed the
schedule (the job's ``requested_by``), and only while they still hold the request's
permissions; a schedule nobody edited since it was created from settings runs as the system.
Writes and refusals are logged here, so the admin, GraphQL and commands leave the same trace.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import django_rq
from django.db import IntegrityError, transaction
from django.utils import timezone
from rq import get_current_job

from jobs import conf
from jobs.audit import audit_change, audit_jobs, audit_note, audit_refusal
from jobs.cron import next_run, previous_run, validate, validate_timezone
from jobs.errors import JobPermissionDenied
from jobs.heartbeat import HeartbeatScheduler as Scheduler  # also writes the /health/ heartbeat
from jobs.maintenance.relay import relay_and_reconcile
from jobs.models import FireOutcome, Job, JobTrigger, Schedule, ScheduleFire
from jobs.request_registry import (
    InvalidRequestArguments,
    UnknownRequest,
    get_request,
    register_request,
)
from jobs.schedule_defaults import RELAY_REQUEST, defaults

logger = logging.getLogger(__name__)

# rq-scheduler's own home queue; each entry is queued on its kind's queue (see schedule_queue).
SCHEDULE_QUEUE = "default"
SCHEDULE_PREFIX = "schedule-"
# How often the scheduler process looks for due entries (rq-scheduler's default is 60 s).
SCHEDULER_INTERVAL = 10
# ScheduleFire rows older than this are dropped when the schedule next fires (the every-minute
# relay would otherwise add 1,440 a day); the dedup only needs the recent ones.
FIRE_HISTORY = timedelta(days=7)
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,60}$")
CHANGE_PERMISSION = "jobs.change_schedule"
ADD_PERMISSION = "jobs.add_schedule"
RUN_PERMISSION = "jobs.run_schedule"
EDITABLE = ("description", "cron", "timezone", "request", "arguments", "enabled", "grace_seconds")


class ScheduleError(Exception):
    api_code = "BAD_USER_INPUT"
    code = "schedule_invalid"

    def __init__(self, message: str, field: str | None = None, *, audit: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.audit = audit  # a refusal the admin log keeps (see schedule_validate_as)


class ScheduleNotFound(ScheduleError):
    api_code = "NOT_FOUND"
    code = "schedule_not_found"


def _relay_request(*, trigger: str) -> None:
    """Re-send undispatched jobs and reconcile dead ones, here and now (no ledger job)."""
    relay_and_reconcile()


# The relay re-sends jobs and settles dead ones: what a person does with "retry".
register_request(RELAY_REQUEST, _relay_request, permission="jobs.retry_job", kind="relay")


# --- validation ------------------------------------------------------------------------------


def schedule_validate(fields: dict) -> dict:
    """Check a schedule's fields; raise ``ScheduleError`` naming the field and the problem.
    Returns the fields cleaned (stripped strings, dict arguments)."""
    out = dict(fields)
    if "name" in out:
        out["name"] = str(out["name"] or "").strip()
        if not _NAME_RE.match(out["name"]):
            raise ScheduleError("Use 1-60 letters, digits, '_' or '-' for the name.", "name")
    if "cron" in out:
        out["cron"] = " ".join(str(out["cron"] or "").split())
        try:
            validate(out["cron"])
        except ValueError as exc:
            raise ScheduleError(f"Bad cron expression {out['cron']!r}: {exc}", "cron") from None
    if "timezone" in out:
        out["timezone"] = str(out["timezone"] or "UTC").strip()
        try:
            validate_timezone(out["timezone"])
        except ValueError as exc:
            raise ScheduleError(str(exc), "timezone") from None
    if "grace_seconds" in out:
        grace = out["grace_seconds"]
        if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
            raise ScheduleError(
                "The grace period is a whole number of seconds ≥ 0.", "grace_seconds"
            )
    if "arguments" in out:
        if out["arguments"] is None:
            out["arguments"] = {}
        if not isinstance(out["arguments"], dict):
            raise ScheduleError("Arguments are a JSON object of keyword arguments.", "arguments")
    if "request" in out or "arguments" in out:
        try:
            get_request(out["request"]).check_kwargs(out.get("arguments") or {})
        except UnknownRequest as exc:
            raise ScheduleError(exc.message, "request") from None
        except InvalidRequestArguments as exc:
            raise ScheduleError(exc.message, "arguments", audit=exc.audit) from None
    return out


def schedule_validate_as(*, user, fields: dict, schedule: Schedule | None = None) -> dict:
    """``schedule_validate``, with the refusals that matter logged for ``user`` (a retention
    below the floor: an attempt worth seeing; a typo is only a form error)."""
    try:
        return schedule_validate(fields)
    except ScheduleError as exc:
        if not exc.audit:
            raise
        name = schedule.name if schedule else str(fields.get("name") or "")
        audit_refusal(user=user, title=f"Schedule {name}", message=exc.message, obj=schedule)
        raise


def _request_permissions(request: str) -> tuple[str, ...]:
    """What the request's work needs (nothing for an unknown name: validation refuses it)."""
    try:
        return get_request(request).permissions
    except UnknownRequest:
        return ()


def _missing(user, permissions) -> list[str]:
    if user is None:  # the system: settings, migrations, a command without --user
        return []
    return [p for p in dict.fromkeys(permissions) if not user.has_perm(p)]


def schedule_check_permission(
    *, user, name: str, action: str, permissions, schedule: Schedule | None = None
) -> None:
    """Raise ``JobPermissionDenied`` naming what ``user`` lacks, after writing the refusal to
    the admin log (callers run this outside the transaction a refusal would roll back)."""
    missing = _missing(user, permissions)
    if missing:
        message = f"You need the permission {', '.join(missing)} to {action} schedule {name}."
        audit_refusal(user=user, title=f"Schedule {name}", message=message, obj=schedule)
        refused = JobPermissionDenied(message)
        refused.permissions = missing  # GraphQL names them (extensions.permissions)
        raise refused


def schedule_check_write(*, user, schedule: Schedule | None, fields: dict) -> None:
    """The permission check of a create (``schedule`` None) or an update: the schedule
    permission, and what the request needs, before and after the change."""
    if schedule is None:
        perms = [ADD_PERMISSION, *_request_permissions(str(fields.get("request") or ""))]
        name, action = str(fields.get("name") or ""), "add"
    else:
        new_request = fields.get("request") or schedule.request
        perms = [
            CHANGE_PERMISSION,
            *_request_permissions(schedule.request),
            *_request_permissions(str(new_request)),
        ]
        name, action = schedule.name, "change"
    schedule_check_permission(
        user=user, name=name, action=action, permissions=perms, schedule=schedule
    )


def _who(user):
    return user if getattr(user, "is_authenticated", False) else None


# --- writes ----------------------------------------------------------------------------------


def schedule_create(*, user=None, **fields) -> Schedule:
    """A new schedule (validated; ``jobs.add_schedule`` and the request's permissions for a
    user). Registered on commit."""
    schedule_check_write(user=user, schedule=None, fields=fields)
    fields.setdefault("timezone", "UTC")
    fields.setdefault("arguments", {})
    cleaned = schedule_validate_as(user=user, fields=fields)
    if Schedule.objects.filter(name=cleaned["name"]).exists():
        raise ScheduleError(f"A schedule named {cleaned['name']!r} exists already.", "name")
    with transaction.atomic():
        schedule = Schedule.objects.create(**cleaned, changed_by=_who(user))
        audit_change(
            user=user,
            obj=schedule,
            message=f"Added schedule {schedule.name} ({schedule.cron})",
            added=True,
        )
        transaction.on_commit(sync_scheduler)
    return schedule


def schedule_update(*, schedule_id: str, user=None, **changes) -> Schedule:
    """Change a schedule's fields (only those given; ``None`` means "leave it"). Validates
    first and changes nothing on error; checks ``jobs.change_schedule`` and the permissions
    of the request before and after the change (refusals are logged); writes the admin log
    entry naming what changed; re-registers it on commit (the loop would within a cycle)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ScheduleError(f"Not editable: {', '.join(sorted(unknown))}")
    changes = {k: v for k, v in changes.items() if v is not None}
    # Checked (and a refusal logged) before the transaction, which a refusal would roll back.
    current = schedule_get(schedule_id)
    schedule_check_write(user=user, schedule=current, fields=changes)
    schedule_validate_as(
        user=user, schedule=current, fields={f: getattr(current, f) for f in EDITABLE} | changes
    )
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_for_update().filter(pk=schedule_get(schedule_id).pk).first()
        )
        if schedule is None:
            raise ScheduleNotFound(_not_found_message(schedule_id))
        if _missing(user, _request_permissions(schedule.request)):
            # Its request changed since the check above (a concurrent edit): check again.
            schedule_check_write(user=user, schedule=schedule, fields=changes)
        merged = {f: getattr(schedule, f) for f in EDITABLE} | changes
        cleaned = schedule_validate(merged)
        changed = [f for f in EDITABLE if cleaned[f] != getattr(schedule, f)]
        if not changed:
            return schedule
        for field in changed:
            setattr(schedule, field, cleaned[field])
        if {"cron", "timezone", "enabled"} & set(changed):
            # Fires before this moment were the old schedule's: none is caught up.
            schedule.changed_at = timezone.now()
        schedule.changed_by = _who(user)
        schedule.next_run_at = (
            next_run(schedule.cron, tz=schedule.timezone) if schedule.enabled else None
        )
        schedule.save()
        audit_change(user=user, obj=schedule, message=_change_message(schedule, changed))
        transaction.on_commit(sync_scheduler)
    return schedule


def _change_message(schedule: Schedule, changed: list[str]) -> str:
    if changed == ["enabled"]:
        return f"Schedule {schedule.name} {'enabled' if schedule.enabled else 'disabled'}"
    parts = [f"{f} → {getattr(schedule, f)!r}" for f in changed]
    return f"Changed schedule {schedule.name}: {'; '.join(parts)}"


def schedule_set_enabled(*, schedule_id: str, enabled: bool, user=None) -> Schedule:
    """Enable or disable a schedule. Unknown ids raise ``ScheduleNotFound`` and change nothing."""
    return schedule_update(schedule_id=schedule_id, user=user, enabled=bool(enabled))


def schedules_load_defaults() -> list[Schedule]:
    """Create the settings' schedules that have no row yet (what the data migration does).
    Existing rows are left as they are: settings decide only the first creation."""
    created = []
    existing = set(Schedule.objects.values_list("name", flat=True))
    for fields in defaults():
        if fields["name"] in existing:
            continue
        created.append(Schedule.objects.create(**schedule_validate(fields)))
    return created


# --- reads -----------------------------------------------------------------------------------


def _not_found_message(schedule_id: str) -> str:
    known = ", ".join(Schedule.objects.values_list("name", flat=True)) or "none"
    return f"Unknown schedule {schedule_id!r} (known: {known})"


def schedule_get(schedule_id: str) -> Schedule:
    # A name that cannot exist is never sent to the database (PostgreSQL refuses NUL bytes).
    if not isinstance(schedule_id, str) or not _NAME_RE.match(schedule_id):
        raise ScheduleNotFound(_not_found_message(str(schedule_id)[:80]))
    schedule = Schedule.objects.filter(name=schedule_id).first()
    if schedule is None:
        raise ScheduleNotFound(_not_found_message(schedule_id))
    return schedule


def _as_item(schedule: Schedule) -> dict:
    request = schedule.request
    kwargs = dict(schedule.arguments or {})
    try:
        kind = get_request(request).kind
    except UnknownRequest:
        kind = ""
    return {
        "id": schedule.name,
        "pk": schedule.pk,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "request": request,
        "kwargs": kwargs,
        # For display: the job kind it makes, and its arguments as the payload.
        "kind": kind,
        "payload": kwargs,
        "description": schedule.description,
        "enabled": schedule.enabled,
        "grace_seconds": schedule.grace_seconds,
        "schedule": schedule,
    }


def schedule_definitions() -> list[dict]:
    """Every stored schedule as a dict (id, cron, timezone, request, kwargs, enabled, …)."""
    return [_as_item(s) for s in Schedule.objects.order_by("id")]


def get_schedule(schedule_id: str) -> dict:
    return _as_item(schedule_get(schedule_id))


def schedules_enabled() -> dict[str, bool]:
    """Schedule name → enabled."""
    return dict(Schedule.objects.values_list("name", "enabled"))


def schedule_is_enabled(*, schedule_id: str) -> bool:
    if not isinstance(schedule_id, str) or not _NAME_RE.match(schedule_id):
        return False  # no such schedule (and never a NUL byte sent to PostgreSQL)
    return bool(Schedule.objects.filter(name=schedule_id, enabled=True).exists())


def get_scheduler(interval: int = SCHEDULER_INTERVAL) -> Scheduler:
    return Scheduler(
        queue_name=SCHEDULE_QUEUE,
        connection=django_rq.get_connection(SCHEDULE_QUEUE),
        interval=interval,
    )


def schedule_queue(item: dict) -> str:
    """Where a schedule's ``fire`` runs: its request's queue (or its kind's), so the workers
    that serve the job queues (one per queue in production) serve the schedules too; the
    relay and anything unplaced on the first."""
    try:
        queue = get_request(item["request"]).queue
    except UnknownRequest:
        queue = None
    return queue or conf.job_queues()[0]


def rq_schedule_id(schedule_id: str) -> str:
    return f"{SCHEDULE_PREFIX}{schedule_id}"


def sync_scheduler() -> None:
    """Make rq-scheduler hold exactly the enabled schedules (best effort: Redis may be down;
    the scheduler loop does the same every cycle)."""
    try:
        register_schedules(get_scheduler())
    except Exception:
        logger.warning("Could not update rq-scheduler's schedule entries", exc_info=True)


def _catch_up_time(schedule: Schedule, now: datetime) -> datetime | None:
    """The cron time to register a *missing* entry at, if a fire fell into the gap: the last
    fire time before now, when it came after the schedule's last change and has not run."""
    last = previous_run(schedule.cron, before=now, tz=schedule.timezone)
    if last <= max(schedule.created_at, schedule.changed_at):
        return None
    if ScheduleFire.objects.filter(schedule=schedule, fire_at=last).exists():
        return None
    return last


def register_schedules(scheduler=None) -> list[str]:
    """The cheap diff: register enabled schedules Redis lacks or holds differently, drop the
    entries of disabled or deleted ones, leave the rest untouched (keeping their due times, so
    a restart at 02:00:05 does not skip 02:00). Returns the RQ ids wanted."""
    scheduler = scheduler or get_scheduler()
    current = {job.id: job for job in scheduler.get_jobs()}
    now = timezone.now()
    wanted = []
    for schedule in Schedule.objects.filter(enabled=True).order_by("id"):
        item = _as_item(schedule)
        rq_id = rq_schedule_id(schedule.name)
        wanted.append(rq_id)
        queue = schedule_queue(item)
        existing = current.get(rq_id)
        if (
            existing is not None
            and existing.meta.get("cron_string") == schedule.cron
            and existing.meta.get("timezone", "UTC") == schedule.timezone
            and list(existing.args) == [schedule.name]
            and existing.origin == queue
        ):
            continue
        # New or changed. Same id → rq-scheduler overwrites the job hash and its single
        # sorted-set entry, never adding a second one.
        job = scheduler.cron(
            schedule.cron,
            func=fire,
            args=[schedule.name],
            id=rq_id,
            queue_name=queue,
            use_local_timezone=False,
            description=schedule.description or schedule.name,
            timeout=300,
            # Keep the job hash forever: rq-scheduler drops an entry whose hash expired, so a
            # weekly schedule with a one-day result TTL would silently vanish.
            result_ttl=-1,
            meta={"schedule_id": schedule.name, "timezone": schedule.timezone},
        )
        due = next_run(schedule.cron, after=now, tz=schedule.timezone)
        if existing is None:
            logger.info(
                "Registering schedule %s (%s %s)", schedule.name, schedule.cron, schedule.timezone
            )
            due = _catch_up_time(schedule, now) or due
        scheduler.connection.zadd(scheduler.scheduled_jobs_key, {job.id: due.timestamp()})
        Schedule.objects.filter(pk=schedule.pk).update(next_run_at=max(due, now))
    for job in current.values():
        if job.id.startswith(SCHEDULE_PREFIX) and job.id not in wanted:
            logger.info("Removing schedule %s (disabled or deleted)", job.id)
            scheduler.cancel(job)
            job.delete()
    return wanted


def registered_runs(scheduler=None) -> dict[str, datetime]:
    """Next run of every registered schedule as rq-scheduler has it, by schedule id (UTC)."""
    scheduler = scheduler or get_scheduler()
    out = {}
    for job, at in scheduler.get_jobs(with_times=True):
        if job.id.startswith(SCHEDULE_PREFIX):
            out[job.id[len(SCHEDULE_PREFIX) :]] = at.replace(tzinfo=UTC)
    return out


def list_schedules() -> list[dict]:
    """For the admin / GraphQL: each schedule with its next run (UTC) and its last job."""
    try:
        registered = registered_runs()
    except Exception:  # Redis down: still show the table
        logger.warning("Could not read registered schedules", exc_info=True)
        registered = {}
    out = []
    for schedule in Schedule.objects.select_related("last_job").order_by("id"):
        item = _as_item(schedule)
        computed = next_run(schedule.cron, tz=schedule.timezone) if schedule.enabled else None
        out.append(
            {
                **item,
                "next_run": registered.get(schedule.name) or computed,
                "registered": schedule.name in registered,
                "last_job": schedule.last_job,
                "last_run_at": schedule.last_run_at,
                "last_skipped_at": schedule.last_skipped_at,
                "last_skipped_note": schedule.last_skipped_note,
            }
        )
    return out


# --- firing ----------------------------------------------------------------------------------


def _fire_time(schedule: Schedule, fire_at) -> datetime:
    if fire_at:
        value = datetime.fromisoformat(fire_at) if isinstance(fire_at, str) else fire_at
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    rq_job = get_current_job()
    stamped = rq_job.meta.get("fire_at") if rq_job is not None else None
    if stamped:
        return datetime.fromisoformat(stamped)
    # Called directly (or queued by an older scheduler): a fire now, at cron's resolution.
    return timezone.now().replace(second=0, microsecond=0)


def fire(schedule_id: str, fire_at: str | datetime | None = None) -> dict:
    """The cron entry point (runs in a worker): run the fire at ``fire_at`` once.

    ``fire_at`` defaults to the cron time the scheduler stamped on the RQ job. The request runs
    as the person who last changed the schedule, and is skipped (with a note on the schedule
    and a refusal in the admin log) when they no longer hold its permissions. Returns a
    summary for RQ's result (never read by callers): the job, or why nothing ran.
    """
    schedule = Schedule.objects.select_related("changed_by").filter(name=schedule_id).first()
    if schedule is None:
        return {"skipped": "schedule deleted"}
    if not schedule.enabled:
        # Disabled after this run was already queued: skip it.
        return {"skipped": "schedule disabled"}
    if schedule.request == RELAY_REQUEST:
        # Infrastructure, idempotent and guarded by its own lock: no ledger job to dedupe and
        # no fire row (1,440 a day); a late relay is still worth running.
        result = relay_and_reconcile()
        Schedule.objects.filter(pk=schedule.pk).update(last_run_at=timezone.now())
        return result
    when = _fire_time(schedule, fire_at)
    now = timezone.now()
    late = (now - when).total_seconds()
    refusal = ""
    if late > schedule.grace_seconds:
        note = (
            f"Fire at {when:%Y-%m-%d %H:%M} UTC skipped: {late:.0f}s late, "
            f"beyond the grace period of {schedule.grace_seconds}s"
        )
    else:
        note = refusal = _fire_refusal(schedule, when)
    outcome = FireOutcome.SKIPPED if note else FireOutcome.RAN
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = ScheduleFire.objects.create(
                    schedule=schedule, fire_at=when, outcome=outcome
                )
        except IntegrityError:
            return {"skipped": f"the fire at {when.isoformat()} ran already"}
        ScheduleFire.objects.filter(schedule=schedule, created_at__lt=now - FIRE_HISTORY).delete()
        if outcome == FireOutcome.SKIPPED:
            logger.warning("Schedule %s: %s", schedule.name, note)
            if refusal:  # once per fire (after the fire row), in the admin log of that person
                audit_refusal(
                    user=schedule.changed_by,
                    title=f"Schedule {schedule.name}",
                    message=refusal,
                    obj=schedule,
                )
            Schedule.objects.filter(pk=schedule.pk).update(
                last_skipped_at=when, last_skipped_note=note[:255]
            )
            return {"skipped": note}
        job = _call(_as_item(schedule), trigger=JobTrigger.SCHEDULE, user=schedule.changed_by)
        record.job = job
        record.save(update_fields=["job"])
        Schedule.objects.filter(pk=schedule.pk).update(
            last_run_at=now,
            last_job=job,
            next_run_at=next_run(schedule.cron, after=now, tz=schedule.timezone),
        )
    return {"job": str(job.pk) if job else None}


def _fire_refusal(schedule: Schedule, when: datetime) -> str:
    """Why the person who last changed the schedule may not have it run now ("" if they may)."""
    user = schedule.changed_by
    missing = _missing(user, _request_permissions(schedule.request))
    if user is None or not missing:  # the system (no user) lacks nothing
        return ""
    return (
        f"Fire at {when:%Y-%m-%d %H:%M} UTC refused: {user.get_username()}, who last changed "
        f"it, lacks {', '.join(missing)}"
    )


def run_now(schedule_id: str, user=None, *, trigger: str = JobTrigger.ADMIN) -> Job | None:
    """Run a schedule's request now (admin / GraphQL "run now"). Returns the ledger job; the
    relay runs here and returns None. Unknown ids raise ``ScheduleNotFound``; a user without
    ``jobs.run_schedule`` or the request's permissions gets ``JobPermissionDenied`` (logged as
    a refusal). A request that refuses to run (arguments no longer valid, data gone) raises
    ``ScheduleError`` saying why, after writing it to the admin log. Writes the audit entry.

    A disabled schedule runs too: disabling stops the cron, and an operator pressing "run now"
    asked for this run explicitly.
    """
    schedule = schedule_get(schedule_id)
    schedule_check_permission(
        user=user,
        name=schedule.name,
        action="run",
        permissions=[RUN_PERMISSION, *_request_permissions(schedule.request)],
        schedule=schedule,
    )
    item = _as_item(schedule)
    note = " (schedule disabled: run once on request)" if not schedule.enabled else ""
    message = f"Schedule {schedule_id} run now{note}"
    try:
        with transaction.atomic():
            job = _call(item, trigger=trigger, user=user)
            updates: dict[str, Any] = {"last_run_at": timezone.now()}
            if job is not None:
                updates["last_job"] = job
            Schedule.objects.filter(pk=schedule.pk).update(**updates)
            if job is None:
                audit_note(user=user, title=f"Schedule {schedule_id}", message=message)
            else:
                audit_jobs(user=user, jobs=[job], message=message, added=True)
    except (UnknownRequest, InvalidRequestArguments) as exc:
        raise _run_failed(user, schedule, exc.message) from exc
    except Exception as exc:
        if getattr(exc, "api_code", None) is None:
            raise  # a bug or an outage, not a refusal: the door reports it
        raise _run_failed(user, schedule, getattr(exc, "message", str(exc))) from exc
    return job


def _run_failed(user, schedule: Schedule, reason: str) -> ScheduleError:
    """The error of a run-now whose request refused to run, logged (after the rollback)."""
    message = f"Schedule {schedule.name} did not run: {reason}"
    logger.warning("%s", message)
    audit_change(user=user, obj=schedule, message=message)
    return ScheduleError(message, "arguments")


def _call(item: dict, *, trigger: str, user) -> Job | None:
    with transaction.atomic():
        job = get_request(item["request"]).call(
            item["kwargs"],
            trigger=trigger,
            requested_by=user,
            reason=item["description"] or f"schedule {item['id']}",
        )
        if job is not None and job.schedule_id != item["id"]:
            Job.objects.filter(pk=job.pk).update(schedule_id=item["id"])
            job.schedule_id = item["id"]
    return job
