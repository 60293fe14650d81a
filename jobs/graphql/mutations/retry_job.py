"""retryJob(id): run a failed or cancelled job again (same row, next attempt)."""

from __future__ import annotations

import graphene
from django.db import transaction

from api.errors import NotFound
from api.permissions import require_staff
from jobs.graphql.mutations.audit import log_job_action
from jobs.services import JobNotFound, job_retry


class RetryJob(graphene.Mutation):
    class Arguments:
        id = graphene.ID(required=True)

    job_id = graphene.ID(required=True)
    state = graphene.String(required=True)
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, id):
        user = require_staff(info, "jobs.retry_job")
        with transaction.atomic():
            try:
                job = job_retry(job_id=id, user=user)  # JobStateError → BAD_USER_INPUT
            except JobNotFound as exc:
                raise NotFound(exc.message, ids=[id]) from None
            log_job_action(user=user, jobs=[job], message="Retry requested over GraphQL")
        return RetryJob(
            job_id=str(job.pk),
            state=job.state,
            message=f"Job {job.pk} queued for attempt {job.attempts + 1}.",
        )
