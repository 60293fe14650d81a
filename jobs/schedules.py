"""Cron schedules (``settings.JOBS_SCHEDULES``, UTC) registered with rq-scheduler.

Each schedule is one rq-scheduler cron entry with the stable id ``schedule-<id>``: registering
again replaces the entry instead of adding one (rq-scheduler keeps a sorted set keyed by job
id), and entries whose id is no longer in the settings are removed. So starting the scheduler
three times leaves each schedule registered once.

The cron entry calls :func:`fire`, which enqueues the schedule's kind through the one way in
(trigger ``schedule``), unless the schedule was disabled after the run was queued. "Run now"
(:func:`run_now`) is an operator's explicit request and runs a disabled schedule too.

The ``relay`` kind is the exception: the every-minute relay/reconcile is infrastructure, not a
job anyone needs to see 1,440 times a day in the ledger, so ``fire`` calls it directly.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import django_rq
from django.conf import settings
from django.db import transaction

from jobs.cron import next_run, validate
from jobs.models import Job, JobTrigger

logger = logging.getLogger(__name__)

# rq-scheduler's own home queue; each entry is queued on its kind's queue (see schedule_queue).
SCHEDULE_QUEUE = "default"
SCHEDULE_PREFIX = "schedule-"
RELAY_KIND = "relay"
# How often the scheduler process looks for due entries (rq-scheduler's default is 60 s).
SCHEDULER_INTERVAL = 10
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,60}$")


class ScheduleError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ScheduleNotFound(ScheduleError):
    pass


def schedule_definitions() -> list[dict]:
    """The schedules from settings, checked: stable RQ-safe ids, valid cron strings."""
    out, seen = [], set()
    for item in settings.JOBS_SCHEDULES:
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
        out.append(
            {
                "id": sid,
                "cron": item["cron"],
                "kind": item["kind"],
                "payload": dict(item.get("payload") or {}),
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


def get_scheduler(interval: int = SCHEDULER_INTERVAL):
    from jobs.heartbeat import HeartbeatScheduler as Scheduler  # writes the /health/ heartbeat

    return Scheduler(
        queue_name=SCHEDULE_QUEUE,
        connection=django_rq.get_connection(SCHEDULE_QUEUE),
        interval=interval,
    )


def schedule_queue(item: dict) -> str:
    """Where a schedule's ``fire`` runs: its kind's own queue, so the workers that serve the
    job queues (one per queue in production) serve the schedules too; relay on the first."""
    from jobs.registry import UnknownJobKind, get_kind

    if item["kind"] != RELAY_KIND:
        try:
            return get_kind(item["kind"]).queue
        except UnknownJobKind:
            pass
    return settings.JOB_QUEUES[0]


def rq_schedule_id(schedule_id: str) -> str:
    return f"{SCHEDULE_PREFIX}{schedule_id}"


def register_schedules(scheduler=None) -> list[str]:
    """Register every schedule once (idempotent) and drop stale ones. Returns the RQ ids."""
    from jobs.schedule_state import schedules_enabled

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
    """The cron entry point (runs in a worker): enqueue the schedule's job now.

    Returns a summary for RQ's result (never read by callers): the job, the relay's counts, or
    why nothing ran.
    """
    from jobs.schedule_state import schedule_is_enabled

    item = get_schedule(schedule_id)
    if not schedule_is_enabled(schedule_id=schedule_id):
        # Disabled after this run was already queued: skip it.
        return {"skipped": "schedule disabled"}
    if item["kind"] == RELAY_KIND:
        from jobs.relay import relay_and_reconcile

        return relay_and_reconcile()
    job = _enqueue_schedule(item, trigger=JobTrigger.SCHEDULE, user=None)
    return {"job": str(job.pk)}


def run_now(schedule_id: str, user=None, *, trigger: str = JobTrigger.ADMIN) -> Job | None:
    """Run a schedule's job now (admin / GraphQL "run now"). Returns the ledger job; the relay
    runs here and returns None. Unknown ids raise ``ScheduleNotFound``.

    A disabled schedule runs too: disabling stops the cron, and an operator pressing "run now"
    asked for this run explicitly.
    """
    item = get_schedule(schedule_id)
    if item["kind"] == RELAY_KIND:
        from jobs.relay import relay_and_reconcile

        relay_and_reconcile()
        return None
    return _enqueue_schedule(item, trigger=trigger, user=user)


def _enqueue_schedule(item: dict, *, trigger: str, user) -> Job:
    from jobs.enqueue import enqueue

    with transaction.atomic():
        job = enqueue(
            item["kind"],
            payload=item["payload"],
            trigger=trigger,
            reason=item["description"] or f"schedule {item['id']}",
            requested_by=user,
            # A backlog never piles up copies of the same schedule's job.
            dedup_key=f"schedule:{item['id']}",
        )
        if job.schedule_id != item["id"]:
            Job.objects.filter(pk=job.pk).update(schedule_id=item["id"])
            job.schedule_id = item["id"]
    return job
