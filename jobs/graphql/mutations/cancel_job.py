"""cancelJob(id): a pending or retrying job never runs; a running one is asked to stop."""

from __future__ import annotations

import graphene
from django.db import transaction

from api.errors import NotFound
from api.permissions import require_staff
from jobs.graphql.mutations.audit import log_job_action
from jobs.models import JobState
from jobs.services import JobNotFound, job_cancel


class CancelJob(graphene.Mutation):
    class Arguments:
        id = graphene.ID(required=True)

    job_id = graphene.ID(required=True)
    state = graphene.String(required=True)
    cancel_requested = graphene.Boolean(required=True)
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, id):
        user = require_staff(info, "jobs.cancel_job")
        with transaction.atomic():
            try:
                job = job_cancel(job_id=id, user=user)  # JobStateError → BAD_USER_INPUT
            except JobNotFound as exc:
                raise NotFound(exc.message, ids=[id]) from None
            log_job_action(user=user, jobs=[job], message="Cancel requested over GraphQL")
        message = (
            f"Job {job.pk} was asked to stop; it stops at its next checkpoint."
            if job.state == JobState.RUNNING
            else f"Job {job.pk} cancelled; it will not run."
        )
        return CancelJob(
            job_id=str(job.pk),
            state=job.state,
            cancel_requested=job.cancel_requested,
            message=message,
        )
