"""retryFailedJobs(filter): retry every failed job matching a filter (at most ``limit``)."""

from __future__ import annotations

import graphene
from django.db import transaction

from api.errors import BadUserInput
from api.permissions import require_staff
from jobs.errors import JobStateError
from jobs.graphql import filters
from jobs.graphql.mutations.job_action import VIEW_JOB
from jobs.models import JobState
from jobs.services import job_retry

MAX_RETRY = 1000


FailedJobsFilter = type(
    "FailedJobsFilter",
    (graphene.InputObjectType,),
    {
        "queue": graphene.String(),
        "kind": graphene.String(),
        "search": graphene.String(),
        **filters.target_filter_arguments(),
    },
)


class RetryFailedJobs(graphene.Mutation):
    class Arguments:
        filter = FailedJobsFilter()
        limit = graphene.Int(default_value=100, description=f"1-{MAX_RETRY}, oldest first")

    job_ids = graphene.List(graphene.NonNull(graphene.ID), required=True)
    count = graphene.Int(required=True)
    message = graphene.String(required=True)

    @staticmethod
    def mutate(root, info, filter=None, limit=100):
        user = require_staff(info, VIEW_JOB, "jobs.retry_job")
        if limit is None or not 1 <= limit <= MAX_RETRY:
            raise BadUserInput(f"'limit' must be between 1 and {MAX_RETRY}.", field="limit")
        qs = filters.filtered_jobs(**dict(filter or {})).filter(state=JobState.FAILED)
        candidates = list(qs.order_by("created_at", "pk").values_list("pk", flat=True)[:limit])
        retried = []
        with transaction.atomic():
            for pk in candidates:
                try:
                    retried.append(job_retry(job_id=pk, user=user))
                except JobStateError:
                    continue  # someone else retried it meanwhile
        return RetryFailedJobs(
            job_ids=[str(j.pk) for j in retried],
            count=len(retried),
            message=f"{len(retried)} failed job(s) queued again.",
        )
