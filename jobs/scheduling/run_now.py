"""Run a schedule's request on demand (the admin's and GraphQL's "run now")."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from jobs.audit import audit_change, audit_jobs, audit_note
from jobs.models import Job, JobTrigger, Schedule
from jobs.permissions import User
from jobs.request_functions import InvalidRequestArguments, UnknownRequest
from jobs.scheduling.fire import call_request
from jobs.scheduling.permissions import (
    RUN_PERMISSION,
    request_permissions,
    schedule_check_permission,
)
from jobs.scheduling.store import schedule_get
from jobs.scheduling.validation import ScheduleError

logger = logging.getLogger(__name__)


def run_now(
    schedule_id: str, user: User | None = None, *, trigger: str = JobTrigger.ADMIN
) -> Job | None:
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
        permissions=[RUN_PERMISSION, *request_permissions(schedule.request)],
        schedule=schedule,
    )
    note = " (schedule disabled: run once on request)" if not schedule.enabled else ""
    message = f"Schedule {schedule_id} run now{note}"
    try:
        with transaction.atomic():
            job = call_request(schedule, trigger=trigger, user=user)
            updates: dict[str, object] = {"last_run_at": timezone.now()}
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


def _run_failed(user: User | None, schedule: Schedule, reason: str) -> ScheduleError:
    """The error of a run-now whose request refused to run, logged (after the rollback)."""
    message = f"Schedule {schedule.name} did not run: {reason}"
    logger.warning("%s", message)
    audit_change(user=user, obj=schedule, message=message)
    return ScheduleError(message, "arguments")
