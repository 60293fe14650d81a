"""retryJobNow(id): send a retrying job at once, skipping the rest of its backoff."""

from __future__ import annotations

import graphene

from jobs.graphql.mutations.job_action import job_action
from jobs.services import job_retry_now


class RetryJobNow(graphene.Mutation):
    class Arguments:
        id = graphene.ID(required=True)

    job_id = graphene.ID(required=True)
    state = graphene.String(required=True)
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, id):
        job = job_action(info, job_id=id, permission="jobs.retry_job", service=job_retry_now)
        return RetryJobNow(
            job_id=str(job.pk), state=job.state, message=f"Job {job.pk} sent to run now."
        )
