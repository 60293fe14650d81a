"""Operations on ledger jobs: retry, cancel, purge, wait. Every door (admin, GraphQL, commands)
calls these; they record who asked on the row, callers add their own audit (admin LogEntry).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from django.db import IntegrityError, transaction
from django.utils import timezone
from rq.job import Job as RQJob

from jobs import conf
from jobs.audit import CANCELLED, RETRIED, RETRIED_NOW, audit_deleted, audit_jobs, audit_note
from jobs.dispatch import dispatch
from jobs.errors import JobNotFound, JobStateError
from jobs.liveness import is_awaiting_children
from jobs.models import ACTIVE_STATES, SETTLED_STATES, Job, JobState, LastAction
from jobs.parents import check_parent, child_reopened, child_settled
from jobs.pause import set_paused
from jobs.permissions import User, check_permissions
from jobs.redis_client import redis_for
from jobs.selectors import JobId, parse_job_id

if TYPE_CHECKING:
    from django.contrib.auth.models import User as UserRow

logger = logging.getLogger(__name__)


def _user_or_none(user: User | None) -> UserRow | None:
    # An authenticated user is a row of the user model (the stubs cannot tell from the flag).
    return cast("UserRow", user) if getattr(user, "is_authenticated", False) else None


def _locked_job(pk: uuid.UUID) -> Job:
    """The row, locked until the caller's transaction ends; ``JobNotFound`` if it is gone."""
    job = Job.objects.select_for_update().filter(pk=pk).first()
    if job is None:
        raise JobNotFound(f"No job with id {pk}")
    return job


def job_retry(*, job_id: JobId, user: User | None = None, actor: str = "") -> Job:
    """Run a failed or cancelled job again, as its next attempt on the same row.

    Checks ``jobs.retry_job`` for ``user`` and writes the audit entry, whichever door asked.
    ``actor`` names a caller that is no Django user (the OS user of a shell command).
    """
    check_permissions(user, "jobs.retry_job")
    pk = parse_job_id(job_id)
    with transaction.atomic():
        job = _locked_job(pk)
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
        was = job.state
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
        _save_pending(job)
        child_reopened(job, was=was)
        audit_jobs(user=who, jobs=[job], message=RETRIED)
        transaction.on_commit(lambda: dispatch(pk))
    return job


def retry_unfinished(parent: Job) -> None:
    """A retried parent runs its failed and cancelled children again (from its handler).

    Each gets a new attempt on its own row (errors kept, who asked recorded), exactly like
    a retry from the admin; completed children are not run twice.
    """
    who = parent.last_action_by if parent.last_action == LastAction.RETRY else None
    stopped = Job.objects.filter(parent=parent, state__in=(JobState.FAILED, JobState.CANCELLED))
    for child_id in list(stopped.values_list("pk", flat=True)):
        job_retry(job_id=child_id, user=who)


def _save_pending(job: Job) -> None:
    """Save a row going back to pending. An enqueue with the same dedup key can land between
    the look above and this write (the key is unique among pending rows): then that job
    covers the key and this row runs on its own, as if the look had seen it."""
    if not job.dedup_key:
        job.save()
        return
    try:
        with transaction.atomic():  # a savepoint: the lost race leaves the transaction usable
            job.save()
    except IntegrityError:
        job.dedup_key = None
        job.save()


def job_cancel(*, job_id: JobId, user: User | None = None) -> Job:
    """Cancel a job: a pending or retrying job never runs; a running one is asked to stop.

    Children of a bulk job waiting for them are cancelled with it (not a fan-out's batches).
    Checks ``jobs.cancel_job`` for ``user`` and writes the audit entry (on the job asked for),
    whichever door asked.
    """
    check_permissions(user, "jobs.cancel_job")
    pk = parse_job_id(job_id)
    with transaction.atomic():
        job = _locked_job(pk)
        if job.state in SETTLED_STATES:
            raise JobStateError(f"Job {pk} is already {job.state}; nothing to cancel")
        awaiting = is_awaiting_children(job)
        _cancel_row(job, user=_user_or_none(user))
        if awaiting:
            # A batch parent's children are its own: they go with it. Other children (the
            # coalesced batches a fan-out opened) hold changes of other requests too and stay;
            # a running parent that parks later cancels its unstarted children then.
            for child in Job.objects.select_for_update().filter(
                parent=job, state__in=ACTIVE_STATES
            ):
                _cancel_row(child, user=_user_or_none(user))
        audit_jobs(user=_user_or_none(user), jobs=[job], message=CANCELLED)
        if awaiting:
            # Nobody runs a parent that waits for its children: settle it here, after commit.
            transaction.on_commit(lambda: check_parent(job.pk))
    return job


def _cancel_row(job: Job, *, user: UserRow | None) -> None:
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
        if job.parent_id:
            transaction.on_commit(lambda: child_settled(job))
    job.save()


def _drop_rq_job(queue_name: str, rq_job_id: str) -> None:
    """Best effort: take a cancelled job out of RQ (the runner skips it anyway)."""
    try:
        conn = redis_for(queue_name)
        rq_job = RQJob.fetch(rq_job_id, connection=conn)
        rq_job.cancel()
    except Exception:
        logger.debug("Could not cancel RQ job %s", rq_job_id, exc_info=True)


def jobs_delete_settled(*, job_ids: Iterable[JobId], user: User | None = None) -> int:
    """Delete the settled jobs among ``job_ids`` (with their children). Returns how many ledger
    rows went, children included.

    Pending, running and retrying jobs are kept, and so is a settled parent whose children are
    still active (deleting it would cascade to them). A malformed id raises
    :class:`JobNotFound` and deletes nothing; ids of jobs that no longer exist are ignored.
    Checks ``jobs.delete_job`` for ``user`` and writes a deletion entry per job deleted
    (children included), whichever door asked.
    """
    check_permissions(user, "jobs.delete_job")
    pks = [parse_job_id(job_id) for job_id in job_ids]
    who = _user_or_none(user)
    with transaction.atomic():
        chosen = list(
            Job.objects.filter(pk__in=pks, state__in=SETTLED_STATES)
            .exclude(children__state__in=ACTIVE_STATES)
            .values_list("pk", flat=True)
        )
        # The entries name every row that goes: the chosen jobs and their (settled) children.
        going = Job.objects.filter(pk__in=chosen) | Job.objects.filter(parent_id__in=chosen)
        audit_deleted(user=who, jobs=going.order_by("created_at"))
        _, per_model = Job.objects.filter(pk__in=chosen).delete()
    deleted = per_model.get(Job._meta.label, 0)
    logger.info("%s deleted %d settled job(s)", who or "someone", deleted)
    return deleted


def job_retry_now(*, job_id: JobId, user: User | None = None) -> Job:
    """Send a retrying job at once instead of after the rest of its backoff.

    The row gets a fresh RQ delivery; the copy still scheduled in RQ is superseded (the runner
    skips a delivery whose id is not the row's). Checks ``jobs.retry_job``; audited.
    """
    check_permissions(user, "jobs.retry_job")
    pk = parse_job_id(job_id)
    with transaction.atomic():
        job = _locked_job(pk)
        if job.state != JobState.RETRYING:
            raise JobStateError(f"Only a retrying job can be retried now; job {pk} is {job.state}")
        sent_at = job.dispatched_at
        job.next_attempt_at = None
        job.save(update_fields=["next_attempt_at"])
        audit_jobs(user=_user_or_none(user), jobs=[job], message=RETRIED_NOW)
        transaction.on_commit(lambda: dispatch(pk, expect_dispatched_at=sent_at))
    return job


def _check_queue(queue: str) -> None:
    if queue not in conf.job_queues():
        raise JobNotFound(f"No queue {queue!r}; the queues are {', '.join(conf.job_queues())}")


def queue_pause(*, queue: str, user: User | None = None) -> bool:
    """Hold ``queue`` on every worker: its jobs stay pending (visibly) until it is resumed.

    Kept in the database with who and when (``jobs.pause``), so it outlives any Redis restart.
    True if it was running before. Checks ``jobs.pause_queue``; audited.
    """
    check_permissions(user, "jobs.pause_queue")
    _check_queue(queue)
    changed = set_paused(queue, True, user=_user_or_none(user))
    audit_note(user=_user_or_none(user), title=f"Queue {queue}", message=f"Paused queue {queue}")
    logger.info("Queue %s paused by %s", queue, _user_or_none(user) or "the system")
    return changed


def queue_resume(*, queue: str, user: User | None = None) -> int:
    """Let ``queue`` run again and send its waiting jobs now. Returns how many were sent.

    Checks ``jobs.pause_queue``; audited.
    """
    check_permissions(user, "jobs.pause_queue")
    _check_queue(queue)
    set_paused(queue, False, user=_user_or_none(user))
    audit_note(user=_user_or_none(user), title=f"Queue {queue}", message=f"Resumed queue {queue}")
    waiting = Job.objects.filter(
        queue=queue,
        state__in=(JobState.PENDING, JobState.RETRYING),
        dispatched_at__isnull=True,
        cancel_requested=False,
    ).values_list("pk", flat=True)
    return sum(1 for pk in waiting.iterator() if dispatch(pk))
