"""The one runner every handler goes through, in a worker (``perform``) or inline (``run_inline``).

It claims the ledger row (skipping cancelled, settled or duplicate deliveries), counts the
attempt, gives the handler a :class:`JobContext` for progress and cancellation, then records
the result, or the error with its traceback, and schedules the next attempt with the kind's
backoff. A heartbeat thread keeps ``heartbeat_at`` fresh so ``reconcile`` (``jobs/maintenance``)
can tell a slow job from a dead one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import traceback
from datetime import timedelta
from typing import Any

from django.core.mail import mail_admins
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connections, transaction
from django.utils import timezone
from rq import get_current_job

from jobs import conf
from jobs.context import JobCancelled, JobContext
from jobs.dispatch import dispatch
from jobs.models import Job, JobState
from jobs.pause import queue_paused
from jobs.registry import JobKind, UnknownJobKind, get_kind
from jobs.selectors import wait_for_job

logger = logging.getLogger(__name__)

# ``rq_job_id`` prefix of a run in this process (``run_inline``), not through RQ.
INLINE_PREFIX = "inline-"


class _Heartbeat(threading.Thread):
    """Touches ``heartbeat_at`` every few seconds while the handler runs; notices cancels."""

    def __init__(self, ctx: JobContext, interval: float | None = None) -> None:
        super().__init__(name=f"job-heartbeat-{ctx.job.pk}", daemon=True)
        self.ctx = ctx
        self.interval = interval or conf.heartbeat_interval()
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                try:
                    Job.objects.filter(pk=self.ctx.job.pk, state=JobState.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                    if Job.objects.filter(pk=self.ctx.job.pk, cancel_requested=True).exists():
                        self.ctx._mark_cancel()
                except Exception:
                    logger.warning("Heartbeat for job %s failed", self.ctx.job.pk, exc_info=True)
        finally:
            connections.close_all()  # this thread's own connection

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


def perform(job_id: str) -> dict:
    """RQ entrypoint: run the ledger job ``job_id``. Returns a short summary for RQ's result."""
    close_old_connections()
    rq_job = get_current_job()
    worker = (rq_job.worker_name if rq_job else None) or _local_name()
    job, skipped = _claim(job_id, worker_name=worker, rq_job_id=rq_job.id if rq_job else "")
    if job is None:
        logger.info("Job %s not run: %s", job_id, skipped)
        return {"skipped": skipped}
    job = _execute(job, rq_job)
    return {"state": job.state, "attempt": job.attempts}


def run_inline(job: Job) -> Job:
    """Run ``job`` in this process through the same runner (``--sync``; no Redis needed).

    Retries happen inline too, without the backoff wait, until the job settles.
    """
    worker = _local_name(prefix="inline")
    while True:
        claimed, _skipped = _claim(job.pk, worker_name=worker, rq_job_id="")
        if claimed is None:
            job.refresh_from_db()
            if not job.is_settled and job.state == JobState.RUNNING:
                # A worker got it first (it was dispatched too): wait for that run instead.
                return wait_for_job(job.pk, timeout=get_kind(job.kind).timeout + 60)
            return job
        job = _execute(claimed, None, inline=True)
        if job.state != JobState.RETRYING:
            return job


def _local_name(prefix: str = "local") -> str:
    return f"{prefix}@{socket.gethostname()}:{os.getpid()}"


def _claim(job_id, *, worker_name: str, rq_job_id: str) -> tuple[Job | None, str]:
    """Lock the row and mark it running. Returns (job, "") or (None, why it was skipped)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return None, "vanished from the ledger"
        if job.state not in (JobState.PENDING, JobState.RETRYING):
            return None, f"state is {job.state}"
        if job.cancel_requested:
            _settle(job, JobState.CANCELLED, message="Cancelled before it started")
            return None, "cancelled before it started"
        if rq_job_id and job.rq_job_id and job.rq_job_id != rq_job_id:
            # An older delivery of this row (a re-dispatch replaced it): let the newest run.
            return None, f"superseded by RQ job {job.rq_job_id}"
        if rq_job_id and queue_paused(job.queue):
            # Sent before the pause: hand it back undispatched; resuming sends it again.
            Job.objects.filter(pk=job.pk).update(dispatched_at=None, rq_job_id="")
            return None, f"queue {job.queue} is paused"
        now = timezone.now()
        job.state = JobState.RUNNING
        job.attempts += 1
        job.started_at = now
        job.heartbeat_at = now
        job.worker_name = worker_name[:255]
        job.next_attempt_at = None
        job.progress = 0
        job.progress_message = ""
        # An inline run (``--sync``, a bulk parent running a child) gets an id of its own: any
        # RQ copy of the row is then superseded, and reconcile knows to judge this run by its
        # heartbeat alone (there is no RQ job or RQ worker to ask).
        job.rq_job_id = rq_job_id or f"{INLINE_PREFIX}{job.pk}-{job.attempts}"
        job.save(
            update_fields=[
                "state",
                "attempts",
                "started_at",
                "heartbeat_at",
                "worker_name",
                "next_attempt_at",
                "progress",
                "progress_message",
                "rq_job_id",
            ]
        )
    return job, ""


def _execute(job: Job, rq_job, *, inline: bool = False) -> Job:
    ctx = JobContext(job, rq_job)
    heartbeat = _Heartbeat(ctx)
    heartbeat.start()
    try:
        try:
            kind = get_kind(job.kind)
            result = kind.run(ctx, dict(job.payload or {}))
            result = _jsonable(result)
        except JobCancelled:
            outcome = ("cancelled", None)
        except Exception as exc:
            outcome = ("error", (exc, traceback.format_exc()))
        else:
            outcome = ("cancelled", result) if ctx.cancel_seen else ("ok", result)
    finally:
        heartbeat.stop()

    status, value = outcome
    if status == "ok":
        return _finish(job, value)
    if status == "cancelled":
        return _finish_cancelled(job, value)
    exc, tb = value
    kind_or_none = None
    with contextlib.suppress(UnknownJobKind):
        kind_or_none = get_kind(job.kind)
    return record_failure(
        job,
        message=f"{type(exc).__name__}: {exc}",
        tb=tb,
        kind=kind_or_none,
        dispatch_retry=not inline,
    )


def _jsonable(value: Any) -> Any:
    # Decimals, dates and UUIDs in a result become strings, like in an API response.
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _finish(job: Job, result: Any) -> Job:
    now = timezone.now()
    # One conditional UPDATE: if reconcile settled this attempt meanwhile, it wins.
    Job.objects.filter(pk=job.pk, state=JobState.RUNNING, attempts=job.attempts).update(
        state=JobState.COMPLETED,
        result=result,
        progress=100,
        settled_at=now,
        next_attempt_at=None,
    )
    return Job.objects.get(pk=job.pk)


def _finish_cancelled(job: Job, result: Any) -> Job:
    with transaction.atomic():
        row = Job.objects.select_for_update().get(pk=job.pk)
        if row.state != JobState.RUNNING or row.attempts != job.attempts:
            return row
        row.result = result
        _settle(row, JobState.CANCELLED, message="Cancelled while running", extra=["result"])
    return row


def _settle(row: Job, state: str, *, message: str | None = None, extra=()) -> None:
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
                "at": now.isoformat(),
                "message": message[:2000],
                "traceback": tb,
                "worker": row.worker_name,
            },
        ]
        retry_possible = kind is not None and row.attempts < row.max_attempts
        if row.cancel_requested or not retry_possible:
            state = JobState.CANCELLED if row.cancel_requested else JobState.FAILED
            _settle(row, state, message=message, extra=["errors"])
            if state == JobState.FAILED:
                transaction.on_commit(lambda: _mail_admins_failed(row))
            return row
        delay = kind.backoff_for(row.attempts) if dispatch_retry else 0
        row.state = JobState.RETRYING
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.dispatched_at = None
        row.progress_message = f"Attempt {row.attempts} failed; retry in {delay}s"[:255]
        row.save(
            update_fields=[
                "state",
                "errors",
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
