"""GraphQL types of the jobs app: the ledger row with every field, queues, schedules."""

from __future__ import annotations

from datetime import datetime

import graphene
from graphene.types.generic import GenericScalar

from api.graphql_utils import PageInfo
from jobs.models import JobState
from jobs.scheduling.cron import in_words
from jobs.selectors import job_is_stale


class UserRef(graphene.ObjectType):
    """The user who asked for something (only the id and the username are shown)."""

    id = graphene.ID(required=True)
    username = graphene.String(required=True)

    @staticmethod
    def resolve_username(user, info) -> str:
        return user.get_username()


class JobAttemptError(graphene.ObjectType):
    """One failed attempt of a job."""

    attempt = graphene.Int(required=True)
    at = graphene.DateTime()
    message = graphene.String(required=True)
    traceback = graphene.String()
    worker = graphene.String()

    @staticmethod
    def resolve_attempt(entry: dict, info) -> int:
        return int(entry.get("attempt") or 0)

    @staticmethod
    def resolve_at(entry: dict, info) -> datetime | None:
        try:
            return datetime.fromisoformat(entry["at"])
        except (KeyError, TypeError, ValueError):
            return None

    @staticmethod
    def resolve_message(entry: dict, info) -> str:
        return str(entry.get("message", ""))

    @staticmethod
    def resolve_traceback(entry: dict, info) -> str | None:
        return entry.get("traceback")

    @staticmethod
    def resolve_worker(entry: dict, info) -> str | None:
        return entry.get("worker")


class Job(graphene.ObjectType):
    """A background job as the ledger records it (System → Jobs in the admin)."""

    id = graphene.ID(required=True)
    queue = graphene.String(required=True)
    kind = graphene.String(required=True)
    payload = GenericScalar(required=True)
    target_type = graphene.String(required=True)
    target_id = graphene.String(required=True)
    target_label = graphene.String(required=True)
    state = graphene.String(required=True, description=", ".join(JobState.values))
    progress = graphene.Int(required=True)
    progress_message = graphene.String(required=True)
    attempts = graphene.Int(required=True)
    max_attempts = graphene.Int(required=True)
    result = GenericScalar()
    errors = graphene.List(
        graphene.NonNull(JobAttemptError),
        required=True,
        description="One entry per failed attempt, oldest first, with its traceback.",
    )
    last_error = graphene.Field(JobAttemptError)
    error_fingerprint = graphene.String(
        required=True, description="The last failed attempt's error group (errorGroups); '' if none"
    )
    trigger = graphene.String(required=True)
    reason = graphene.String(required=True)
    requested_by = graphene.Field(UserRef)
    last_action = graphene.String(required=True, description="retry or cancel, if any")
    last_action_by = graphene.Field(UserRef)
    last_action_at = graphene.DateTime()
    schedule_id = graphene.String(required=True)
    parent_id = graphene.ID()
    parent = graphene.Field(lambda: Job)
    children = graphene.List(graphene.NonNull(lambda: Job), required=True)
    children_total = graphene.Int(required=True, description="A parent's children")
    children_settled = graphene.Int(required=True, description="…of which settled")
    children_failed = graphene.Int(required=True, description="…of which failed")
    children_cancelled = graphene.Int(required=True, description="…of which cancelled")
    counted_by_parent = graphene.Boolean(
        required=True, description="A child: its settle is counted on its parent"
    )
    dedup_key = graphene.String()
    merged_count = graphene.Int(required=True, description="Requests merged into this job")
    cancel_requested = graphene.Boolean(required=True)
    worker_name = graphene.String(required=True)
    rq_job_id = graphene.String(required=True)
    next_attempt_at = graphene.DateTime()
    created_at = graphene.DateTime(required=True)
    dispatched_at = graphene.DateTime()
    started_at = graphene.DateTime()
    settled_at = graphene.DateTime()
    heartbeat_at = graphene.DateTime()
    is_settled = graphene.Boolean(required=True)
    is_stale = graphene.Boolean(
        required=True, description="Running, but its worker has not reported for too long."
    )

    @staticmethod
    def resolve_id(job, info) -> str:
        return str(job.pk)

    @staticmethod
    def resolve_parent_id(job, info) -> str | None:
        return str(job.parent_id) if job.parent_id else None

    @staticmethod
    def resolve_errors(job, info) -> list[dict]:
        return [e for e in (job.errors or []) if isinstance(e, dict)]

    @staticmethod
    def resolve_last_error(job, info) -> dict | None:
        entries = [e for e in (job.errors or []) if isinstance(e, dict)]
        return entries[-1] if entries else None

    @staticmethod
    def resolve_children(job, info):
        # Prefetched (ordered) by the list resolvers when the query asks for children.
        return job.children.all()

    @staticmethod
    def resolve_is_stale(job, info) -> bool:
        # The admin's stale badge rule: silent too long, or its RQ worker is dead.
        return job_is_stale(job)


class JobEdge(graphene.ObjectType):
    cursor = graphene.String(required=True)
    node = graphene.Field(Job, required=True)


class JobConnection(graphene.ObjectType):
    edges = graphene.List(graphene.NonNull(JobEdge), required=True)
    page_info = graphene.Field(PageInfo, required=True)
    total_count = graphene.Int(required=True, description="Jobs matching the filters")


class JobQueue(graphene.ObjectType):
    """One RQ queue with the ledger's counts."""

    name = graphene.String(required=True)
    waiting = graphene.Int(required=True, description="Pending or waiting for a retry")
    running = graphene.Int(required=True)
    failed = graphene.Int(required=True)
    completed_last_24h = graphene.Int(required=True)
    workers = graphene.Int(description="Workers listening to the queue (null: Redis down)")
    rq_queued = graphene.Int(description="Jobs in RQ's queue right now (null: Redis down)")
    paused = graphene.Boolean(required=True, description="Held by pauseQueue: its jobs wait")
    paused_by = graphene.String(description="Who paused it (null: running, or the system)")
    paused_at = graphene.DateTime(description="When it was paused (null: running)")
    oldest_waiting_seconds = graphene.Float(description="Age of the oldest pending job")
    completed_per_minute = graphene.Float(required=True, description="Last 15 minutes")
    failed_per_minute = graphene.Float(required=True, description="Last 15 minutes")


class Worker(graphene.ObjectType):
    """An RQ worker as System → Workers shows it; dead when its heartbeat stopped."""

    name = graphene.String(required=True)
    hostname = graphene.String(required=True)
    pid = graphene.Int()
    queues = graphene.List(graphene.NonNull(graphene.String), required=True)
    state = graphene.String(required=True, description="idle, busy, suspended... or dead")
    dead = graphene.Boolean(required=True)
    current_job_id = graphene.ID(description="The ledger job it runs")
    current_since = graphene.DateTime()
    last_heartbeat = graphene.DateTime()
    successful = graphene.Int(required=True)
    failed = graphene.Int(required=True)


class Schedule(graphene.ObjectType):
    """A stored cron schedule (jobs.Schedule): a request function and its arguments."""

    id = graphene.ID(required=True, description="The schedule's stable name")
    cron = graphene.String(required=True)
    cron_in_words = graphene.String(required=True)
    timezone = graphene.String(required=True)
    enabled = graphene.Boolean(required=True)
    grace_seconds = graphene.Int(
        required=True, description="A fire missed by at most this long runs once on recovery"
    )
    arguments = GenericScalar(required=True, description="The request function's arguments")
    last_run_at = graphene.DateTime()
    last_skipped_at = graphene.DateTime(description="The last fire skipped (beyond the grace)")
    last_skipped_note = graphene.String(required=True)
    kind = graphene.String(required=True, description="The job kind its request asks for")
    request = graphene.String(required=True, description="The request function it calls")
    kwargs = GenericScalar(required=True, description="The request function's arguments")
    description = graphene.String(required=True)
    payload = GenericScalar(required=True)
    next_run = graphene.DateTime()
    registered = graphene.Boolean(
        required=True, description="Registered with the running scheduler"
    )
    last_job = graphene.Field(Job)

    @staticmethod
    def resolve_cron_in_words(item, info):
        return in_words(item["cron"], item["timezone"])

    @staticmethod
    def resolve_arguments(item, info):
        return item["kwargs"]


class SchedulerStatus(graphene.ObjectType):
    """The scheduler process: its last heartbeat, whether that is stale, who is active."""

    reachable = graphene.Boolean(required=True, description="False: Redis could not be asked")
    last_seen = graphene.DateTime(description="The active scheduler's last heartbeat")
    age_seconds = graphene.Float()
    stale = graphene.Boolean(required=True, description="No heartbeat within maxAgeSeconds")
    active = graphene.String(description="Host and pid of the active (lock-holding) instance")
    max_age_seconds = graphene.Int(required=True)

    @staticmethod
    def resolve_max_age_seconds(status, info):
        return status.max_age
