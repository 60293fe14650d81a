"""cancelJob(id): a pending or retrying job never runs; a running one is asked to stop."""

from __future__ import annotations

import graphene

from jobs.graphql.mutations.job_action import job_action
from jobs.models import JobState
from jobs.services import job_cancel


class CancelJob(graphene.Mutation):
    class Arguments:
        id = graphene.ID(required=True)

    job_id = graphene.ID(required=True)
    state = graphene.String(required=True)
    cancel_requested = graphene.Boolean(required=True)
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, id):
        job = job_action(
            info,
            job_id=id,
            permission="jobs.cancel_job",
            service=job_cancel,
        )
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
