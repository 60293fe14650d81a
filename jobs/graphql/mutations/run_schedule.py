"""runSchedule(id): run a cron schedule's job now, like the admin's "run now".

Needs ``jobs.run_schedule`` and the permissions of the schedule's request (FORBIDDEN, logged);
a request that refuses to run is BAD_USER_INPUT saying why.

A disabled schedule runs too: disabling stops its cron runs, while this is an explicit request
(the audit entry and the message say the schedule is disabled).
"""

from __future__ import annotations

import graphene

from api.errors import Forbidden, NotFound
from api.permissions import require_staff
from jobs.errors import JobPermissionDenied
from jobs.models import JobTrigger
from jobs.scheduling.run_now import run_now
from jobs.scheduling.store import schedule_is_enabled
from jobs.scheduling.validation import ScheduleNotFound


class RunSchedule(graphene.Mutation):
    class Arguments:
        id = graphene.ID(required=True, description="Schedule id, e.g. nightly-consistency-check")

    job_id = graphene.ID(description="The job it queued (null for the inline relay)")
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, id):
        user = require_staff(info, "jobs.run_schedule")
        schedule_id = str(id)
        note = (
            " (schedule disabled: run once on request)"
            if not schedule_is_enabled(schedule_id=schedule_id)
            else ""
        )
        try:
            # The service checks the request's permissions too and writes the audit entry, or
            # the refusal (no transaction here: a refusal's log entry must outlive it).
            job = run_now(schedule_id, user=user, trigger=JobTrigger.GRAPHQL)
        except ScheduleNotFound as exc:
            raise NotFound(exc.message, ids=[id]) from None
        except JobPermissionDenied as exc:
            raise Forbidden(exc.message, permissions=getattr(exc, "permissions", [])) from None
        if job is None:
            return RunSchedule(job_id=None, message=f"Schedule {schedule_id} ran inline{note}.")
        return RunSchedule(
            job_id=str(job.pk),
            message=f"Schedule {schedule_id} queued as job {job.pk}{note}. "
            "View progress in System → Jobs.",
        )
