"""runSchedule(id): run a cron schedule's job now, like the admin's "run now".

A disabled schedule runs too: disabling stops its cron runs, while this is an explicit request
(the audit entry and the message say the schedule is disabled).
"""

from __future__ import annotations

import graphene
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import transaction

from api.errors import NotFound
from api.permissions import require_staff
from jobs.graphql.mutations.audit import log_job_action
from jobs.models import JobTrigger
from jobs.schedule_state import schedule_is_enabled
from jobs.schedules import ScheduleNotFound, run_now


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
        audit = f"Schedule {schedule_id} run now over GraphQL{note}"
        with transaction.atomic():
            try:
                job = run_now(schedule_id, user=user, trigger=JobTrigger.GRAPHQL)
            except ScheduleNotFound as exc:
                raise NotFound(exc.message, ids=[id]) from None
            if job is not None:
                log_job_action(user=user, jobs=[job], message=audit)
            else:
                LogEntry.objects.create(
                    user_id=user.pk,
                    object_repr=f"Schedule {schedule_id}"[:200],
                    action_flag=CHANGE,
                    change_message=audit,
                )
        if job is None:
            return RunSchedule(job_id=None, message=f"Schedule {schedule_id} ran inline{note}.")
        return RunSchedule(
            job_id=str(job.pk),
            message=f"Schedule {schedule_id} queued as job {job.pk}{note}. "
            "View progress in System → Jobs.",
        )
