"""The jobs app's GraphQL roots: queries over the ledger, queues and schedules; job mutations.

Every resolver checks the admin's permission first: ``jobs.view_job`` to read.
"""

from __future__ import annotations

import graphene

from api.errors import NotFound
from api.graphql_utils import build_connection, check_page_size, selected_fields
from api.permissions import require_staff
from jobs.errors import JobNotFound
from jobs.graphql import filters
from jobs.graphql.alerts import AlertsMutation, AlertsQuery
from jobs.graphql.error_groups import ErrorGroupsMutation, ErrorGroupsQuery
from jobs.graphql.mutations.cancel_job import CancelJob
from jobs.graphql.mutations.queue_pause import PauseQueue, ResumeQueue
from jobs.graphql.mutations.retry_failed_jobs import RetryFailedJobs
from jobs.graphql.mutations.retry_job import RetryJob
from jobs.graphql.mutations.retry_job_now import RetryJobNow
from jobs.graphql.mutations.run_schedule import RunSchedule
from jobs.graphql.mutations.update_schedule import UpdateSchedule
from jobs.graphql.types import (
    Job,
    JobConnection,
    JobEdge,
    JobQueue,
    Schedule,
    SchedulerStatus,
    Worker,
)
from jobs.models import Job as JobModel
from jobs.scheduling.listing import list_schedules
from jobs.scheduling.status import scheduler_status
from jobs.selectors import job_get, resolve_job_id
from jobs.selectors import workers as list_workers

VIEW_JOB = "jobs.view_job"


class JobsQuery(AlertsQuery, ErrorGroupsQuery, graphene.ObjectType):
    job = graphene.Field(
        Job,
        id=graphene.ID(required=True),
        description="One job by id, or its first 8 or more characters as the admin shows them",
    )
    jobs = graphene.Field(
        JobConnection,
        required=True,
        queue=graphene.String(),
        state=graphene.String(),
        kind=graphene.String(),
        search=graphene.String(description="Id, kind, target, reason, or a bundle's SKU"),
        **filters.target_filter_arguments(),
        first=graphene.Int(description="Page size, 1-100 (default 20)"),
        after=graphene.String(description="endCursor of the previous page"),
        description="Jobs, newest first, filtered and paginated by cursor",
    )
    job_queues = graphene.List(graphene.NonNull(JobQueue), required=True)
    schedules = graphene.List(graphene.NonNull(Schedule), required=True)
    scheduler = graphene.Field(
        SchedulerStatus, required=True, description="The scheduler's heartbeat, flagged stale"
    )
    workers = graphene.List(
        graphene.NonNull(Worker), description="RQ workers (null: Redis unreachable)"
    )

    @staticmethod
    def resolve_job(root, info, id):
        require_staff(info, VIEW_JOB)
        try:  # a prefix as the admin and the commands take it; ambiguous: says how many
            job = job_get(job_id=resolve_job_id(id))
        except JobNotFound as exc:
            raise NotFound(exc.message, ids=[id]) from None
        return filters.with_relations(
            JobModel.objects.filter(pk=job.pk), selected_fields(info)
        ).first()

    @staticmethod
    def resolve_jobs(root, info, first=None, after=None, **filter_args):
        require_staff(info, VIEW_JOB)
        check_page_size(first)  # before the filters: the same error order as ever
        return build_connection(
            info,
            filters.filtered_jobs(**filter_args),
            first=first,
            after=after,
            with_relations=filters.with_relations,
            page=filters.job_page,
            cursor=filters.job_cursor,
            connection=JobConnection,
            edge=JobEdge,
        )

    @staticmethod
    def resolve_job_queues(root, info):
        require_staff(info, VIEW_JOB)
        return filters.queue_counts()

    @staticmethod
    def resolve_workers(root, info):
        require_staff(info, VIEW_JOB)
        return list_workers()

    @staticmethod
    def resolve_schedules(root, info):
        require_staff(info, VIEW_JOB)
        return list_schedules()

    @staticmethod
    def resolve_scheduler(root, info):
        require_staff(info, VIEW_JOB)
        return scheduler_status()


class JobsMutation(AlertsMutation, ErrorGroupsMutation, graphene.ObjectType):
    retry_job = RetryJob.Field()
    cancel_job = CancelJob.Field()
    retry_failed_jobs = RetryFailedJobs.Field()
    run_schedule = RunSchedule.Field()
    update_schedule = UpdateSchedule.Field()
    retry_job_now = RetryJobNow.Field()
    pause_queue = PauseQueue.Field()
    resume_queue = ResumeQueue.Field()
