"""What the runner asks of an RQ delivery before it claims the row: is its queue paused (then
hand it back), is it debounced (then wait out its window), and are this process's database
connections fit to use. Plain RQ API only (``rq_job.meta``, ``origin``, ``connection``)."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from django.db import connections
from rq.job import Job as RQJob

from jobs.dispatch import MAX_WORKER_DEBOUNCE, NOT_BEFORE
from jobs.models import Job, JobState
from jobs.pause import paused_on

logger = logging.getLogger(__name__)


def hand_back(job_id: Any, rq_job: RQJob) -> None:
    """Sent before the pause: hand it back undispatched; resuming the queue sends it again."""
    Job.objects.filter(
        pk=job_id, rq_job_id=rq_job.id, state__in=(JobState.PENDING, JobState.RETRYING)
    ).update(dispatched_at=None, rq_job_id="")


def wait_out_debounce(rq_job: RQJob) -> None:
    """A debounced delivery (``dispatch(debounce=...)``) is claimed no earlier than its time:
    until then the row stays pending and keeps absorbing the requests that merge into it.
    Bounded by ``MAX_WORKER_DEBOUNCE``, whatever the meta says (clocks of two machines)."""
    not_before = (rq_job.meta or {}).get(NOT_BEFORE)
    if not_before:
        wait = min(float(not_before) - time.time(), MAX_WORKER_DEBOUNCE)
        if wait > 0:
            time.sleep(wait)  # the window itself: nothing to wait on but the clock


def paused(rq_job: RQJob) -> bool:
    """Is the delivery's queue paused? Asked on the RQ job's own connection: a new Redis
    client per job (``queue_paused``) cost a TCP connect and handshake, more than the rest of a
    no-op job's ledger work. False when Redis cannot be asked (nothing can run then)."""
    try:
        return paused_on(rq_job.connection, rq_job.origin)
    except Exception:
        logger.warning(
            "Could not ask Redis whether queue %s is paused", rq_job.origin, exc_info=True
        )
        return False


def drop_broken_connections() -> None:
    """Close only connections that saw an error and fail a health check.

    Not ``close_old_connections``: with ``CONN_MAX_AGE = 0`` it closes every connection, so a
    worker that runs jobs in its own process (``JobsSimpleWorker``) would open a fresh one per
    job. A forking worker's horse starts without one anyway (hidden across the fork).
    """
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.errors_occurred:
            if conn.is_usable():
                conn.errors_occurred = False
            else:
                conn.close()


def local_name(prefix: str = "local") -> str:
    """A worker name for a run outside RQ (this host and process)."""
    return f"{prefix}@{socket.gethostname()}:{os.getpid()}"
