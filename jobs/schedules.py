"""Cron schedules (``settings.JOBS_SCHEDULES``, UTC) registered with rq-scheduler.

Each schedule is one rq-scheduler cron entry with the stable id ``schedule-<id>``: registering
again replaces the entry instead of adding one (rq-scheduler keeps a sorted set keyed by job
id), and entries whose id is no longer in the settings are removed. So starting the scheduler
three times leaves each schedule registered once.

A schedule names a registered request function and its JSON arguments (``request`` and
``kwargs``; see ``jobs.request_registry``), so a scheduled run asks for its job exactly as the
admin's button or a command does: the nightly check and "check active" in the admin merge into
one pending job with one dedup key and one target. The older form, ``kind`` and ``payload``,
still works: it becomes the ``jobs.enqueue`` request (dedup key ``schedule:<id>``).

The cron entry calls :func:`fire`, which calls the schedule's request (trigger ``schedule``),
unless the schedule was disabled after the run was queued. "Run now" (:func:`run_now`) is an
operator's explicit request and runs a disabled schedule too; it checks the permission and
writes the audit entry itself, so every door leaves the same one.

The ``jobs.relay`` request is infrastructure, not a job anyone needs to see 1,440 times a day
in the ledger: it runs the relay/reconcile pass in place and returns no job.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import django_rq
from django.db import transaction

from jobs import conf
from jobs.audit import audit_jobs, audit_note
from jobs.cron import next_run, validate
from jobs.enqueue import enqueue
from jobs.errors import JobPermissionDenied
from jobs.heartbeat import HeartbeatScheduler as Scheduler  # also writes the /health/ heartbeat
from jobs.maintenance.relay import relay_and_reconcile
from jobs.models import Job, JobTrigger, ScheduleState
from jobs.registry import UnknownJobKind, get_kind
from jobs.request_registry import (
    InvalidRequestArguments,
    UnknownRequest,
    get_request,
    register_request,
)

logger = logging.getLogger(__name__)

# rq-scheduler's own home queue; each entry is queued on its kind's queue (see schedule_queue).
SCHEDULE_QUEUE = "default"
SCHEDULE_PREFIX = "schedule-"
RELAY_REQUEST = "jobs.relay"
ENQUEUE_REQUEST = "jobs.enqueue"
# How often the scheduler process looks for due entries (rq-scheduler's default is 60 s).
SCHEDULER_INTERVAL = 10
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,60}$")


class ScheduleError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ScheduleNotFound(ScheduleError):
    api_code = "NOT_FOUND"
    code = "schedule_not_found"


def _relay_request(*, trigger: str) -> None:
    """Re-send undispatched jobs and reconcile dead ones, here and now (no ledger job)."""
    relay_and_reconcile()


def _enqueue_request(
    *,
    kind: str,
    payload: dict,
    dedup_key: str | None = None,
    trigger: str,
    requested_by=None,
    reason: str = "",
) -> Job:
    """A job of ``kind`` with ``payload`` (the schedules' older ``kind`` + ``payload`` form)."""
    return enqueue(
        kind,
        payload=payload,
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        dedup_key=dedup_key,
    )


register_request(RELAY_REQUEST, _relay_request, kind="relay")
register_request(ENQUEUE_REQUEST, _enqueue_request)


def _normalised(item: dict) -> tuple[str, dict]:
    """(request name, kwargs) of a schedule in either form."""
    if "request" in item:
        return item["request"], dict(item.get("kwargs") or {})
    kind = item.get("kind", "")
    if kind == "relay":
        return RELAY_REQUEST, {}
    payload = dict(item.get("payload") or {})
    # A backlog never piles up copies of the same schedule's job.
    return ENQUEUE_REQUEST, {
        "kind": kind,
        "payload": payload,
        "dedup_key": f"schedule:{item['id']}",
    }


def schedule_definitions() -> list[dict]:
    """The schedules from settings, checked: stable RQ-safe ids, valid cron strings, a
    registered request function and arguments it takes."""
    out, seen = [], set()
    for item in conf.schedules():
        sid = item.get("id", "")
        if not _ID_RE.match(sid):
            raise ScheduleError(f"Schedule id {sid!r}: use 1-60 letters, digits, '_' or '-'")
        if sid in seen:
            raise ScheduleError(f"Schedule id {sid!r} is used twice in JOBS_SCHEDULES")
        seen.add(sid)
        try:
            validate(item["cron"])
        except (ValueError, KeyError) as exc:
            raise ScheduleError(f"Schedule {sid!r}: bad cron {item.get('cron')!r}: {exc}") from exc
        request, kwargs = _normalised(item)
        try:
            registered = get_request(request)
            registered.check_kwargs(kwargs)
        except (UnknownRequest, InvalidRequestArguments) as exc:
            raise ScheduleError(f"Schedule {sid!r}: {exc.message}") from exc
        out.append(
            {
                "id": sid,
                "cron": item["cron"],
                "request": request,
                "kwargs": kwargs,
                # For display: the job kind it makes, and its arguments as the payload.
                "kind": kwargs.get("kind", "") if request == ENQUEUE_REQUEST else registered.kind,
                "payload": kwargs.get("payload", {}) if request == ENQUEUE_REQUEST else kwargs,
                "description": item.get("description", ""),
            }
        )
    return out


def get_schedule(schedule_id: str) -> dict:
    for item in schedule_definitions():
        if item["id"] == schedule_id:
            return item
    known = ", ".join(s["id"] for s in schedule_definitions())
    raise ScheduleNotFound(f"Unknown schedule {schedule_id!r} (known: {known})")


# --- enabled / disabled (the state lives in the database: ``ScheduleState``) -----------------
# Disabling takes the schedule's entry out of rq-scheduler at once; enabling puts it back. A
# restarted scheduler leaves disabled schedules out, and a run queued before the switch is skipped.


def schedules_enabled() -> dict[str, bool]:
    """Schedule id → enabled, for every schedule that has a stored state (others are enabled)."""
    return dict(ScheduleState.objects.values_list("schedule_id", "enabled"))


def schedule_is_enabled(*, schedule_id: str) -> bool:
    return schedules_enabled().get(schedule_id, True)


def schedule_set_enabled(*, schedule_id: str, enabled: bool, user=None) -> ScheduleState:
    """Enable or disable a schedule. Unknown ids raise ``ScheduleNotFound`` and change nothing."""
    get_schedule(schedule_id)  # raises ScheduleNotFound naming the known ids
    who = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        state, _ = ScheduleState.objects.update_or_create(
            schedule_id=schedule_id, defaults={"enabled": bool(enabled), "changed_by": who}
        )
        transaction.on_commit(sync_scheduler)
    return state


def sync_scheduler() -> None:
    """Make rq-scheduler hold exactly the enabled schedules (best effort: Redis may be down)."""
    try:
        scheduler = get_scheduler()
        register_schedules(scheduler)
        disabled = [sid for sid, on in schedules_enabled().items() if not on]
        for sid in disabled:
            scheduler.cancel(rq_schedule_id(sid))
    except Exception:
        logger.warning("Could not update rq-scheduler's schedule entries", exc_info=True)


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
    queue = get_request(item["request"]).queue
    if queue is None and item["request"] == ENQUEUE_REQUEST:
        try:
            queue = get_kind(item["kwargs"]["kind"]).queue
        except UnknownJobKind:
            queue = None
    return queue or conf.job_queues()[0]


def rq_schedule_id(schedule_id: str) -> str:
    return f"{SCHEDULE_PREFIX}{schedule_id}"


def register_schedules(scheduler=None) -> list[str]:
    """Register every schedule once (idempotent) and drop stale ones. Returns the RQ ids."""
    scheduler = scheduler or get_scheduler()
    current = {job.id: job for job in scheduler.get_jobs()}
    enabled = schedules_enabled()
    wanted = []
    for item in schedule_definitions():
        if not enabled.get(item["id"], True):
            continue  # disabled in the admin: not registered, and removed below if it was
        rq_id = rq_schedule_id(item["id"])
        wanted.append(rq_id)
        existing = current.get(rq_id)
        if (
            existing is not None
            and existing.meta.get("cron_string") == item["cron"]
            and list(existing.args) == [item["id"]]
            and existing.origin == schedule_queue(item)
        ):
            # Unchanged: keep its due time, so a restart at 02:00:05 does not skip 02:00.
            continue
        # New or changed. Same id → rq-scheduler overwrites the job hash and its single
        # sorted-set entry, never adding a second one.
        scheduler.cron(
            item["cron"],
            func=fire,
            args=[item["id"]],
            id=rq_id,
            queue_name=schedule_queue(item),
            use_local_timezone=False,
            description=item["description"] or item["id"],
            timeout=300,
            # Keep the job hash forever: rq-scheduler drops an entry whose hash expired, so a
            # weekly schedule with a one-day result TTL would silently vanish.
            result_ttl=-1,
            meta={"schedule_id": item["id"]},
        )
    for job in current.values():
        if job.id.startswith(SCHEDULE_PREFIX) and job.id not in wanted:
            logger.info("Removing stale schedule %s", job.id)
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
    except Exception:  # Redis down: still show the definitions
        logger.warning("Could not read registered schedules", exc_info=True)
        registered = {}
    out = []
    for item in schedule_definitions():
        last = Job.objects.filter(schedule_id=item["id"]).order_by("-created_at").first()
        out.append(
            {
                **item,
                "next_run": registered.get(item["id"]) or next_run(item["cron"]),
                "registered": item["id"] in registered,
                "last_job": last,
            }
        )
    return out


def fire(schedule_id: str) -> dict:
    """The cron entry point (runs in a worker): call the schedule's request now.

    Returns a summary for RQ's result (never read by callers): the job, or why nothing ran.
    """
    item = get_schedule(schedule_id)
    if not schedule_is_enabled(schedule_id=schedule_id):
        # Disabled after this run was already queued: skip it.
        return {"skipped": "schedule disabled"}
    if item["request"] == RELAY_REQUEST:
        return relay_and_reconcile()
    job = _call(item, trigger=JobTrigger.SCHEDULE, user=None)
    return {"job": str(job.pk) if job else None}


def run_now(schedule_id: str, user=None, *, trigger: str = JobTrigger.ADMIN) -> Job | None:
    """Run a schedule's request now (admin / GraphQL "run now"). Returns the ledger job; the
    relay runs here and returns None. Unknown ids raise ``ScheduleNotFound``; a user without
    ``jobs.run_schedule`` gets ``JobPermissionDenied``. Writes the audit entry.

    A disabled schedule runs too: disabling stops the cron, and an operator pressing "run now"
    asked for this run explicitly.
    """
    if user is not None and not user.has_perm("jobs.run_schedule"):
        raise JobPermissionDenied("You need the permission jobs.run_schedule for this.")
    item = get_schedule(schedule_id)
    disabled = not schedule_is_enabled(schedule_id=schedule_id)
    note = " (schedule disabled: run once on request)" if disabled else ""
    message = f"Schedule {schedule_id} run now{note}"
    with transaction.atomic():
        job = _call(item, trigger=trigger, user=user)
        if job is None:
            audit_note(user=user, title=f"Schedule {schedule_id}", message=message)
        else:
            audit_jobs(user=user, jobs=[job], message=message, added=True)
    return job


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
