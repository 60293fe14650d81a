"""Relay: send jobs RQ never got, so a row waiting in the ledger is always on its way to a worker.

Rows still waiting whose dispatch failed (Redis down at commit) or whose RQ job vanished (Redis
restarted empty, job expired, delivery failed) are sent again. A waiting row whose delivery RQ
failed (or whose RQ worker died holding it) before the runner claimed it gets a failed attempt
with RQ's reason first. Even run twice at once it would not send a job twice: it claims each row
before sending it (``jobs.dispatch.dispatch``, conditional on the ``dispatched_at`` it saw).
Runs with reconcile under one lock: ``jobs.maintenance.ledger_pass``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from rq.job import JobStatus

from jobs.dispatch import dispatch
from jobs.liveness import WorkerSeen
from jobs.maintenance.rq_view import (
    RQ_DEAD,
    fetch_rq_jobs,
    rq_failure,
    rq_status,
    started_by_dead_worker,
    workers_seen_everywhere,
)
from jobs.models import Job, JobState
from jobs.runner import record_undelivered

logger = logging.getLogger(__name__)

# A dispatch younger than this may still be in flight in another process: leave it alone.
DISPATCH_GRACE_SECONDS = 15


def relay(*, grace_seconds: int = DISPATCH_GRACE_SECONDS, limit: int = 1000) -> int:
    """Dispatch waiting jobs that RQ does not have. Returns how many were sent."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=grace_seconds)
    waiting = Q(state=JobState.PENDING, created_at__lt=cutoff) | Q(
        state=JobState.RETRYING, next_attempt_at__lte=now
    )
    rows = list(
        Job.objects.filter(waiting, cancel_requested=False)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=cutoff))
        .order_by("created_at")
        .only("pk", "queue", "rq_job_id", "dispatched_at", "state", "next_attempt_at")[:limit]
    )
    if not rows:
        return 0
    dispatched = [r for r in rows if r.dispatched_at and r.rq_job_id]
    rq_jobs = fetch_rq_jobs(dispatched) if dispatched else {}
    seen = workers_seen_everywhere() if dispatched else WorkerSeen({})
    sent = 0
    for row in rows:
        if row.dispatched_at and row.rq_job_id:
            rq_job = rq_jobs.get(row.rq_job_id)
            status = rq_status(rq_job) if rq_job is not None else ""
            if rq_job is not None and status == JobStatus.STARTED.value:
                if not started_by_dead_worker(rq_job, seen, now=now):
                    continue  # a live worker is about to claim it
                why = f"its worker {rq_job.worker_name} died before the runner claimed the job"
                if record_undelivered(
                    row.pk,
                    rq_job_id=row.rq_job_id,
                    worker_name=rq_job.worker_name or "",
                    message=f"Delivery failed: {why} (RQ job {row.rq_job_id})",
                ):
                    continue  # its retry is dispatched by record_failure
            elif (
                rq_job is not None
                and status == JobStatus.SCHEDULED.value
                and row.next_attempt_at is not None
                and row.next_attempt_at < cutoff
            ):
                # Overdue in RQ's scheduled registry: the worker holding RQ's scheduler lock
                # died (the lock outlives it by minutes). Sent now; the old copy is superseded.
                logger.warning("Job %s: its RQ scheduler is not moving it; sending it now", row.pk)
                if dispatch(row.pk, expect_dispatched_at=row.dispatched_at, delay=0):
                    sent += 1
                continue
            elif rq_job is not None and status not in RQ_DEAD:
                continue  # RQ still has it queued / scheduled
            elif rq_job is not None and status == JobStatus.FAILED.value:
                reason = rq_failure(rq_job) or "no reason given"
                if record_undelivered(
                    row.pk,
                    rq_job_id=row.rq_job_id,
                    worker_name=rq_job.worker_name or "",
                    message=f"Delivery failed before the runner claimed the job: {reason} "
                    f"(RQ job {row.rq_job_id})",
                ):
                    continue
            logger.warning("Job %s was dispatched but RQ lost it; sending it again", row.pk)
        # Claimed by a conditional UPDATE on the dispatched_at we saw: if another relay or an
        # on-commit dispatch got there first, this sends nothing.
        if dispatch(row.pk, expect_dispatched_at=row.dispatched_at):
            sent += 1
    if sent:
        logger.info("Relay sent %d undispatched job(s)", sent)
    return sent
