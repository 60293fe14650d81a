"""runSchedule(id): run a cron schedule's job now, like the admin's "run now"."""

from __future__ import annotations

import graphene
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import transaction

from api.errors import NotFound
from api.permissions import require_staff
from jobs.graphql.mutations.audit import log_job_action
from jobs.models import JobTrigger
from jobs.schedules import ScheduleNotFound, run_now


class RunSchedule(graphene.Mutation):
    class Arguments:
        id = graphene.ID(required=True, description="Schedule id, e.g. nightly-consistency-check")

    job_id = graphene.ID(description="The job it queued (null for the inline relay)")
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, id):
        user = require_staff(info, "jobs.run_schedule")
        with transaction.atomic():
            try:
                job = run_now(str(id), user=user, trigger=JobTrigger.GRAPHQL)
            except ScheduleNotFound as exc:
                raise NotFound(exc.message, ids=[id]) from None
            if job is not None:
                log_job_action(user=user, jobs=[job], message=f"Schedule {id} run now over GraphQL")
            else:
                LogEntry.objects.create(
                    user_id=user.pk,
                    object_repr=f"Schedule {id}"[:200],
                    action_flag=CHANGE,
                    change_message=f"Schedule {id} run now over GraphQL",
                )
        if job is None:
            return RunSchedule(job_id=None, message=f"Schedule {id} ran inline.")
        return RunSchedule(
            job_id=str(job.pk),
            message=f"Schedule {id} queued as job {job.pk}. View progress in System → Jobs.",
        )
