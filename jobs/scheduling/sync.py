"""rq-scheduler made to hold exactly the enabled schedules, as a cheap diff each cycle.

Enabled rows Redis lacks or holds differently are registered, the entries of disabled or
deleted rows dropped, the rest left untouched (keeping their due times, so a restart at
02:00:05 does not skip 02:00). After Redis came back empty every entry is put back; one put
back after a fire fell into the gap is put back *due* at that fire, so the fire still runs
(once: see ``fire``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.utils import timezone

from jobs import conf
from jobs.models import Schedule, ScheduleFire
from jobs.request_functions import UnknownRequest, get_request
from jobs.scheduling.cron import next_run, previous_run
from jobs.scheduling.fire import fire
from jobs.scheduling.scheduler import HeartbeatScheduler, get_scheduler

logger = logging.getLogger(__name__)

SCHEDULE_PREFIX = "schedule-"
# What each entry calls; an entry stored under another path (a module moved) is registered again.
FIRE_FUNC = f"{fire.__module__}.{fire.__qualname__}"


def schedule_queue(request: str) -> str:
    """Where a schedule's ``fire`` runs: its request's queue (or its kind's), so the workers
    that serve the job queues (one per queue in production) serve the schedules too; the
    relay and anything unplaced on the first."""
    try:
        queue = get_request(request).queue
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


def register_schedules(scheduler: HeartbeatScheduler | None = None) -> list[str]:
    """The cheap diff (see the module's doc). Returns the RQ ids wanted."""
    scheduler = scheduler or get_scheduler()
    current = {job.id: job for job in scheduler.get_jobs()}
    now = timezone.now()
    wanted = []
    for schedule in Schedule.objects.filter(enabled=True).order_by("id"):
        rq_id = rq_schedule_id(schedule.name)
        wanted.append(rq_id)
        queue = schedule_queue(schedule.request)
        existing = current.get(rq_id)
        if (
            existing is not None
            and existing.meta.get("cron_string") == schedule.cron
            and existing.meta.get("timezone", "UTC") == schedule.timezone
            and list(existing.args) == [schedule.name]
            and existing.origin == queue
            and existing.func_name == FIRE_FUNC
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


def registered_runs(scheduler: HeartbeatScheduler | None = None) -> dict[str, datetime]:
    """Next run of every registered schedule as rq-scheduler has it, by schedule id (UTC)."""
    scheduler = scheduler or get_scheduler()
    out = {}
    for job, at in scheduler.get_jobs(with_times=True):
        if job.id.startswith(SCHEDULE_PREFIX):
            out[job.id[len(SCHEDULE_PREFIX) :]] = at.replace(tzinfo=UTC)
    return out
