"""Reconcile: settle running rows whose worker is gone.

The work horse was killed (RQ failed the job without callbacks), the whole worker died
(``jobs.liveness``: gone from RQ's registry or silent, and the row silent too; an RQ job Redis
lost is no sign of death), or the row's heartbeat is older than ``JOBS_STALE_AFTER_SECONDS``.
Each becomes a failed attempt with a clear message, retried by the kind's policy or failed for
good. A parent awaiting its children (``jobs.parents``) is checked instead: settled if its
children are. A running job that ignores its cancel request for long is stopped the hard way.

Every state change is conditional on the row's current state and attempt, so a pass that races
a worker's own settle changes nothing. Runs with relay under one lock:
``jobs.maintenance.ledger_pass``. What it does not do: judge inline runs by anything but their
heartbeat (they have no RQ job or worker to ask).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime

from django.utils import timezone
from rq.command import send_stop_job_command
from rq.job import Job as RQJob
from rq.job import JobStatus

from jobs import conf
from jobs.liveness import WorkerSeen, is_awaiting_children, is_inline, worker_death
from jobs.maintenance.rq_view import RQ_DEAD, fetch_rq_jobs, rq_status, workers_seen_everywhere
from jobs.models import Job, JobState
from jobs.parents import park_if_parent
from jobs.parents import repair as repair_parents
from jobs.redis_client import redis_for
from jobs.registry import UnknownJobKind, get_kind
from jobs.runner import SETTLED_BY_WORKER, record_failure

logger = logging.getLogger(__name__)


def reconcile(*, stale_after: int | None = None) -> list[Job]:
    """Settle running rows whose worker died. Returns the rows it changed."""
    stale_after = stale_after or conf.stale_after_seconds()
    now = timezone.now()
    # Parked parents: their children settle them; this counts a settle hook lost with a dying
    # process (only those children, through a partial index).
    changed = [Job.objects.get(pk=pk) for pk in repair_parents()]
    # Payload, result and errors are not needed to judge (record_failure reads the row again).
    running = list(Job.objects.filter(state=JobState.RUNNING).defer("payload", "result", "errors"))
    running = [r for r in running if not is_awaiting_children(r)]
    if not running:
        return changed
    delivered = [r for r in running if r.rq_job_id and not is_inline(r)]
    rq_jobs = fetch_rq_jobs(delivered) if delivered else {}
    seen = workers_seen_everywhere()
    for row in running:
        reason = _death_reason(row, rq_jobs, seen, now=now, stale_after=stale_after)
        if reason is None:
            _escalate_cancel(row, now=now)
            continue
        logger.warning("Job %s (attempt %s): %s", row.pk, row.attempts, reason)
        parked = park_if_parent(row)
        if parked is not None:  # its children carry the work: it waits for them, not failed
            if parked.is_settled:
                changed.append(parked)
            _stop_rq_job(row)
            continue
        try:
            kind = get_kind(row.kind)
        except UnknownJobKind:
            kind = None
        updated = record_failure(
            row, message=reason, kind=kind, dispatch_retry=True, expect_attempt=row.attempts
        )
        if updated.state != JobState.RUNNING:
            changed.append(updated)
        _stop_rq_job(row)
    return changed


def _death_reason(
    row: Job, rq_jobs: dict, seen: WorkerSeen, *, now: datetime, stale_after: int
) -> str | None:
    last_sign = row.heartbeat_at or row.started_at or row.created_at
    silent_for = (now - last_sign).total_seconds()
    # An inline run (``--sync``, a bulk parent's child) has no RQ job and no RQ worker: only
    # its heartbeat says whether it is alive.
    inline = is_inline(row)
    if not inline and row.rq_job_id and row.rq_job_id in rq_jobs:
        rq_job = rq_jobs[row.rq_job_id]
        started_long_ago = row.started_at and (now - row.started_at).total_seconds() > 5
        # RQ no longer knowing the job (Redis restarted empty, its key expired) says nothing
        # about the worker running it, which may well be alive and heartbeating the row:
        # only the worker's silence and the row's tell (``worker_death`` below).
        if rq_job is not None and started_long_ago and _is_this_run(row, rq_job):
            status = rq_status(rq_job)
            if status in RQ_DEAD:
                detail = ""
                if status == JobStatus.FAILED.value:
                    latest = rq_job.latest_result()
                    lines = (getattr(latest, "exc_string", "") or "").strip().splitlines()
                    detail = f": {lines[-1]}" if lines else ""
                return (
                    f"Worker died: RQ marked job {row.rq_job_id} {status}{detail} "
                    f"(worker {row.worker_name})"
                )
    if (died := worker_death(row, seen, now=now)) is not None:
        return died
    if silent_for > stale_after:
        return f"Worker died or hung: no heartbeat for {int(silent_for)}s (limit {stale_after}s)"
    return None


def _is_this_run(row: Job, rq_job: RQJob) -> bool:
    """Whether the RQ job's outcome tells anything about the row's current run.

    A copy that another worker took, or that the runner skipped (the row was already running),
    ends ``finished`` while the real run goes on: its status is no sign of death. Nor is a
    horse that finished and left the recording to its worker (``SETTLED_BY_WORKER``), which
    does it a moment later; if that worker died first, ``worker_death`` tells.
    """
    if rq_job.worker_name and row.worker_name and rq_job.worker_name != row.worker_name:
        return False
    if rq_status(rq_job) == JobStatus.FINISHED.value:
        with contextlib.suppress(Exception):
            value = getattr(rq_job.latest_result(), "return_value", None)
            if isinstance(value, dict) and ("skipped" in value or SETTLED_BY_WORKER in value):
                return False
    return True


def _stop_rq_job(row: Job) -> None:
    """Best effort: if RQ still runs the abandoned delivery somewhere, stop it."""
    if not row.rq_job_id or is_inline(row):
        return

    # Raises when the job is not executing any more (the usual case).
    with contextlib.suppress(Exception):
        send_stop_job_command(redis_for(row.queue), row.rq_job_id)


CANCEL_ESCALATE_AFTER_SECONDS = 30


def _escalate_cancel(row: Job, *, now) -> None:
    """A running job asked to cancel that ignores it for long is stopped the hard way."""
    if not row.cancel_requested or not row.last_action_at:
        return
    if (now - row.last_action_at).total_seconds() < CANCEL_ESCALATE_AFTER_SECONDS:
        return
    logger.warning("Job %s ignores its cancel request; stopping its work horse", row.pk)
    _stop_rq_job(row)
