"""Operations on ledger jobs: retry, cancel, purge, wait. Every door (admin, GraphQL, commands)
calls these; they record who asked on the row, callers add their own audit (admin LogEntry).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import django_rq
from django.db import transaction
from django.utils import timezone
from rq.job import Job as RQJob

from jobs.audit import CANCELLED, RETRIED, audit_jobs
from jobs.dispatch import dispatch
from jobs.errors import JobError, JobNotFound, JobPermissionDenied, JobStateError
from jobs.liveness import is_awaiting_children
from jobs.maintenance.prune import jobs_purge
from jobs.models import ACTIVE_STATES, SETTLED_STATES, Job, JobState, LastAction
from jobs.parents import check_parent
from jobs.selectors import job_get, parse_job_id, wait_for_job

__all__ = [  # the reads and errors stay importable from here (their old home)
    "JobError",
    "JobNotFound",
    "JobPermissionDenied",
    "JobStateError",
    "job_get",
    "jobs_purge",
    "parse_job_id",
    "wait_for_job",
]

logger = logging.getLogger(__name__)


def _user_or_none(user):
    return user if getattr(user, "is_authenticated", False) else None


def _check_permission(user, permission: str) -> None:
    """A person must hold the permission; ``user=None`` is the system (a command run without
    ``--user``, a batch parent retrying its children)."""
    if user is not None and not user.has_perm(permission):
        raise JobPermissionDenied(f"You need the permission {permission} for this.")


def job_retry(*, job_id, user=None, actor: str = "") -> Job:
    """Run a failed or cancelled job again, as its next attempt on the same row.

    Checks ``jobs.retry_job`` for ``user`` and writes the audit entry, whichever door asked.
    ``actor`` names a caller that is no Django user (the OS user of a shell command).
    """
    _check_permission(user, "jobs.retry_job")
    pk = parse_job_id(job_id)
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=pk).first()
        if job is None:
            raise JobNotFound(f"No job with id {pk}")
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise JobStateError(
                f"Only failed or cancelled jobs can be retried; job {pk} is {job.state}"
            )
        if (
            job.dedup_key
            and Job.objects.filter(dedup_key=job.dedup_key, state=JobState.PENDING)
            .exclude(pk=pk)
            .exists()
        ):
            # A newer pending job already covers this key; this row runs on its own.
            job.dedup_key = None
        now = timezone.now()
        who = _user_or_none(user)
        job.state = JobState.PENDING
        # A manual retry always gets at least one more attempt; earlier errors stay.
        job.max_attempts = max(job.max_attempts, job.attempts + 1)
        job.cancel_requested = False
        job.settled_at = None
        job.next_attempt_at = None
        job.dispatched_at = None
        job.progress = 0
        by = getattr(who, "get_username", lambda: "")() if who else actor
        job.progress_message = f"Retry requested{' by ' + by if by else ''}"[:255]
        job.last_action, job.last_action_by, job.last_action_at = LastAction.RETRY, who, now
        job.save()
        audit_jobs(user=who, jobs=[job], message=RETRIED)
        transaction.on_commit(lambda: dispatch(pk))
    return job


def job_cancel(*, job_id, user=None) -> Job:
    """Cancel a job: a pending or retrying job never runs; a running one is asked to stop.

    Children of a bulk job are cancelled with it. Checks ``jobs.cancel_job`` for ``user`` and
    writes the audit entry (on the job asked for), whichever door asked.
    """
    _check_permission(user, "jobs.cancel_job")
    pk = parse_job_id(job_id)
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=pk).first()
        if job is None:
            raise JobNotFound(f"No job with id {pk}")
        if job.state in SETTLED_STATES:
            raise JobStateError(f"Job {pk} is already {job.state}; nothing to cancel")
        _cancel_row(job, user=_user_or_none(user))
        for child in Job.objects.select_for_update().filter(parent=job, state__in=ACTIVE_STATES):
            _cancel_row(child, user=_user_or_none(user))
        audit_jobs(user=_user_or_none(user), jobs=[job], message=CANCELLED)
        if is_awaiting_children(job):
            # Nobody runs a parent that waits for its children: settle it here, after commit.
            transaction.on_commit(lambda: check_parent(job.pk))
    return job


def _cancel_row(job: Job, *, user) -> None:
    now = timezone.now()
    job.cancel_requested = True
    job.last_action, job.last_action_by, job.last_action_at = LastAction.CANCEL, user, now
    if job.state == JobState.RUNNING:
        job.progress_message = "Cancel requested"
    else:
        job.state = JobState.CANCELLED
        job.settled_at = now
        job.next_attempt_at = None
        job.progress_message = "Cancelled before it ran"
        rq_id = job.rq_job_id
        if rq_id:
            transaction.on_commit(lambda: _drop_rq_job(job.queue, rq_id))
    job.save()


def _drop_rq_job(queue_name: str, rq_job_id: str) -> None:
    """Best effort: take a cancelled job out of RQ (the runner skips it anyway)."""
    try:
        conn = django_rq.get_connection(queue_name)
        rq_job = RQJob.fetch(rq_job_id, connection=conn)
        rq_job.cancel()
    except Exception:
        logger.debug("Could not cancel RQ job %s", rq_job_id, exc_info=True)


def jobs_delete_settled(*, job_ids: Iterable, user=None) -> int:
    """Delete the settled jobs among ``job_ids`` (with their children). Returns how many ledger
    rows went, children included.

    Pending, running and retrying jobs are kept, and so is a settled parent whose children are
    still active (deleting it would cascade to them). A malformed id raises
    :class:`JobNotFound` and deletes nothing; ids of jobs that no longer exist are ignored.
    """
    pks = [parse_job_id(job_id) for job_id in job_ids]
    chosen = (
        Job.objects.filter(pk__in=pks, state__in=SETTLED_STATES)
        .exclude(children__state__in=ACTIVE_STATES)
        .values_list("pk", flat=True)
    )
    with transaction.atomic():
        _, per_model = Job.objects.filter(pk__in=list(chosen)).delete()
    deleted = per_model.get(Job._meta.label, 0)
    who = _user_or_none(user)
    logger.info("%s deleted %d settled job(s)", who or "someone", deleted)
    return deleted
