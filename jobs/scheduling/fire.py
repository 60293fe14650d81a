"""The cron entry point: a schedule's fire runs once, in time, as the person who last changed
the schedule.

The scheduler stamps each RQ job with the cron time it fires for; a ``ScheduleFire`` row,
unique per schedule and fire time, makes each fire run once whoever asks (two schedulers, a
restart at the fire time, a catch-up). A fire later than the schedule's grace period is
recorded as skipped and shown, never run late; so is one whose last editor no longer holds
the request's permissions (and that refusal goes to their admin log). A schedule nobody
edited since it was created from settings runs as the system.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rq import get_current_job

from jobs.audit import audit_refusal
from jobs.maintenance.ledger_pass import relay_and_reconcile
from jobs.models import FireOutcome, Job, JobTrigger, Schedule, ScheduleFire
from jobs.permissions import User, missing_permissions
from jobs.request_functions import get_request, register_request
from jobs.scheduling.cron import next_run
from jobs.scheduling.defaults import RELAY_REQUEST
from jobs.scheduling.permissions import request_permissions

logger = logging.getLogger(__name__)

# ScheduleFire rows older than this are dropped when the schedule next fires (the every-minute
# relay would otherwise add 1,440 a day); the dedup only needs the recent ones.
FIRE_HISTORY = timedelta(days=7)


def _relay_request(*, trigger: str) -> None:
    """Re-send undispatched jobs and reconcile dead ones, here and now (no ledger job)."""
    relay_and_reconcile()


# The relay re-sends jobs and settles dead ones: what a person does with "retry".
register_request(RELAY_REQUEST, _relay_request, permission="jobs.retry_job", kind="relay")


def _fire_time(fire_at: str | datetime | None) -> datetime:
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
    when = _fire_time(fire_at)
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
        job = call_request(schedule, trigger=JobTrigger.SCHEDULE, user=schedule.changed_by)
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
    missing = missing_permissions(user, request_permissions(schedule.request))
    if not missing:
        return ""
    assert user is not None  # None is the system, which lacks nothing
    return (
        f"Fire at {when:%Y-%m-%d %H:%M} UTC refused: {user.get_username()}, who last changed "
        f"it, lacks {', '.join(missing)}"
    )


def call_request(schedule: Schedule, *, trigger: str, user: User | None) -> Job | None:
    """Ask for the schedule's job through its request function (a fire or a run-now); the
    ledger job is tagged with the schedule. None when the request needs no job (the relay)."""
    with transaction.atomic():
        job = get_request(schedule.request).call(
            dict(schedule.arguments or {}),
            trigger=trigger,
            requested_by=user,
            reason=schedule.description or f"schedule {schedule.name}",
        )
        if job is not None and job.schedule_id != schedule.name:
            Job.objects.filter(pk=job.pk).update(schedule_id=schedule.name)
            job.schedule_id = schedule.name
    return job
