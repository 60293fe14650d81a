"""How an attempt is recorded: completed, cancelled, or failed (retried with the kind's backoff,
or failed for good, with a mail to the admins). Every write is conditional on the attempt: a
settle that reconcile got to first is left alone. A settled child tells its parent.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

from django.core.mail import mail_admins
from django.db import transaction
from django.utils import timezone

from jobs.dispatch import dispatch
from jobs.error_fingerprint import fingerprint
from jobs.models import SETTLED_STATES, Job, JobState
from jobs.parents import child_settled
from jobs.registry import JobKind, UnknownJobKind, get_kind
from jobs.runner.sql import finish_statement

logger = logging.getLogger(__name__)


def finish(job: Job, result: Any) -> Job:
    """Complete ``job``'s current attempt with ``result``."""
    now = timezone.now()
    # One conditional UPDATE: if reconcile settled this attempt meanwhile, it wins. Written out
    # (``jobs.runner.sql``: the figures that keep it there).
    if not finish_statement(job, result, now=now):
        return Job.objects.get(pk=job.pk)
    # No read back: the row is what this UPDATE made it (progress messages were written by the
    # handler's context, which keeps them on ``job`` too).
    job.state, job.result, job.progress = JobState.COMPLETED, result, 100
    job.settled_at, job.next_attempt_at = now, None
    on_settle(job)
    return job


def finish_cancelled(job: Job, result: Any) -> Job:
    """``job``'s handler saw the cancel and returned: settle it cancelled, keeping ``result``."""
    with transaction.atomic():
        row = Job.objects.select_for_update().get(pk=job.pk)
        if row.state != JobState.RUNNING or row.attempts != job.attempts:
            return row
        row.result = result
        settle_row(row, JobState.CANCELLED, message="Cancelled while running", extra=["result"])
        on_settle(row)
    return row


def settle_row(
    row: Job, state: str, *, message: str | None = None, extra: tuple | list = ()
) -> None:
    row.state = state
    row.settled_at = timezone.now()
    row.next_attempt_at = None
    fields = ["state", "settled_at", "next_attempt_at", *extra]
    if message is not None:
        row.progress_message = message[:255]
        fields.append("progress_message")
    row.save(update_fields=fields)


def record_failure(
    job: Job,
    *,
    message: str,
    tb: str = "",
    kind: JobKind | None = None,
    dispatch_retry: bool = True,
    expect_state: str = JobState.RUNNING,
    expect_attempt: int | None = None,
) -> Job:
    """Store a failed attempt; schedule the next one (kind's backoff) or fail for good.

    Used by the runner for handler errors and by the reconciler for dead workers.
    """
    with transaction.atomic():
        row = Job.objects.select_for_update().get(pk=job.pk)
        if row.state != expect_state:
            return row
        # Only the attempt that failed may be recorded (a newer one may be running by now).
        attempt = job.attempts if expect_attempt is None else expect_attempt
        if row.attempts != attempt:
            return row
        now = timezone.now()
        row.errors = [
            *(row.errors or []),
            {
                "attempt": row.attempts,
                "started": row.started_at.isoformat() if row.started_at else None,
                "at": now.isoformat(),
                "message": message[:2000],
                "traceback": tb,
                "worker": row.worker_name,
            },
        ]
        row.error_fingerprint = fingerprint(tb or message)  # its error group (Errors page)
        retry_possible = kind is not None and row.attempts < row.max_attempts
        if row.cancel_requested or not retry_possible:
            state = JobState.CANCELLED if row.cancel_requested else JobState.FAILED
            settle_row(row, state, message=message, extra=["errors", "error_fingerprint"])
            on_settle(row)
            if state == JobState.FAILED:
                transaction.on_commit(lambda: _mail_admins_failed(row))
            return row
        assert kind is not None  # retry_possible
        delay = kind.backoff_for(row.attempts) if dispatch_retry else 0
        row.state = JobState.RETRYING
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.dispatched_at = None
        row.progress_message = f"Attempt {row.attempts} failed; retry in {delay}s"[:255]
        row.save(
            update_fields=[
                "state",
                "errors",
                "error_fingerprint",
                "next_attempt_at",
                "dispatched_at",
                "progress_message",
            ]
        )
        if dispatch_retry:
            row_id = row.pk
            transaction.on_commit(lambda: dispatch(row_id, delay=delay))
    return row


def _mail_admins_failed(job: Job) -> None:
    """Tell the site admins (settings.ADMINS) that a job failed for good."""
    last = (job.errors or [{}])[-1]
    target = f" on {job.target_type} {job.target_label or job.target_id}" if job.target_id else ""
    body = (
        f"Job {job.pk} ({job.kind}{target}) failed after {job.attempts} attempt(s).\n\n"
        f"Last error: {last.get('message', '')}\n\n{last.get('traceback', '')}\n"
        f"Retry it from System > Jobs or with: manage.py jobs retry {job.pk}\n"
    )
    try:
        mail_admins(f"Job failed: {job.kind}{target}", body, fail_silently=True)
    except Exception:  # mail trouble must never break the runner
        logger.warning("Could not mail admins about failed job %s", job.pk, exc_info=True)


def record_undelivered(
    job_id: Any, *, rq_job_id: str, message: str, worker_name: str = ""
) -> Job | None:
    """A delivery that RQ failed before the runner claimed the row (the horse was killed at
    start-up, its worker died): counted as a failed attempt with RQ's reason, then retried by
    the kind's policy or failed for good. Only while that delivery is still the row's current
    one and nobody claimed it; returns the row, or None when nothing was recorded."""
    with transaction.atomic():
        row = Job.objects.select_for_update().filter(pk=job_id).first()
        if row is None or row.state not in (JobState.PENDING, JobState.RETRYING):
            return None
        if row.rq_job_id != rq_job_id or row.cancel_requested:
            return None
        row.state = JobState.RUNNING
        row.attempts += 1
        row.started_at = row.heartbeat_at = timezone.now()
        row.worker_name = worker_name[:255]
        row.save(update_fields=["state", "attempts", "started_at", "heartbeat_at", "worker_name"])
        kind = None
        with contextlib.suppress(UnknownJobKind):
            kind = get_kind(row.kind)
        return record_failure(row, message=message, kind=kind, expect_attempt=row.attempts)


def on_settle(row: Job) -> None:
    """A settled child tells its parent (after the commit, so the parent sees it settled)."""
    if row.parent_id and row.state in SETTLED_STATES:
        transaction.on_commit(lambda: child_settled(row))
