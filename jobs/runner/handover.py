"""The handover between a forking worker and its work horse (``jobs.worker.JobsWorker``).

A work horse that opened its own database connection paid for a new PostgreSQL backend
(fork, authentication, cold catalog caches) and for its first ORM queries in a fresh
copy-on-write heap: its claim took 15-17 ms, the worker's own claim and settle 2 ms each
(8 ms against 1.5 ms on SQLite, where only the cold ORM and schema read cost). So the
worker claims the row before it forks, on its own long-lived connection, and records the
outcome the horse reports once the horse has exited. The horse opens a connection only when
the handler touches the database (progress, cancel checks, its own queries, a heartbeat).

The horse reports its :class:`AttemptOutcome` in a private file the worker made for it (a
fork shares no memory back); the worker reads it once the horse has exited.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass

from django.db import OperationalError, connections
from rq.job import Job as RQJob

from jobs.dispatch import NOT_BEFORE, RUNNER_ENTRYPOINT
from jobs.models import Job
from jobs.parents import park_if_parent
from jobs.registry import UnknownJobKind, get_kind
from jobs.runner import attempt
from jobs.runner.attempt import AttemptOutcome
from jobs.runner.claim import try_claim
from jobs.runner.delivery import drop_broken_connections, hand_back, paused
from jobs.runner.settle import record_failure

logger = logging.getLogger(__name__)


# Key of a worker's finished RQ job result: the worker, not the horse, records the outcome.
SETTLED_BY_WORKER = "settled_by_worker"
# How long the worker's claim may wait for SQLite's write lock before leaving the claim to the
# horse (which then waits as long as it takes, as it always has).
SQLITE_CLAIM_WAIT_MS = 250

HANDOVERS: dict[str, Handover] = {}


@dataclass
class Handover:
    """A delivery the worker claimed (or skipped) before forking the horse that runs it."""

    rq_job_id: str
    job: Job | None  # the claimed row; None: nothing to run
    skipped: str = ""  # why not, when job is None
    report_path: str = ""  # where the horse writes its AttemptOutcome


def claim_for_horse(rq_job: RQJob, *, worker_name: str) -> Handover | None:
    """In the worker, before the fork: the claim, if it can be had without waiting.

    None when the delivery is not a ledger job, or its row cannot be claimed at once (locked,
    cancelled, settled, superseded) or the database is away: the horse then goes through
    ``jobs.runner.perform`` as a whole, as it would without a worker's help."""
    if rq_job.func_name != RUNNER_ENTRYPOINT or not rq_job.args:
        return None
    not_before = (rq_job.meta or {}).get(NOT_BEFORE)
    if not_before and float(not_before) > time.time():
        # A debounced delivery (a fan-out) is held by its horse, which waits out the window
        # as RQ's "started" job, merging requests meanwhile; rare, so no claim is saved here.
        return None
    job_id = rq_job.args[0]
    try:
        drop_broken_connections()
        if paused(rq_job):
            hand_back(job_id, rq_job)
            handover = Handover(rq_job.id, None, skipped=f"queue {rq_job.origin} is paused")
        else:
            try:
                with _short_lock_wait():
                    job = try_claim(job_id, worker_name=worker_name, rq_job_id=rq_job.id)
            except OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                job = None  # SQLite's write lock is held: the horse waits for it instead
            if job is None:
                return None
            # Made here, empty and private (0600, O_EXCL: no other local user can plant one):
            # the horse writes into it, the worker reads it and removes it.
            fd, path = tempfile.mkstemp(prefix="jobs-outcome-", suffix=".json")
            os.close(fd)
            handover = Handover(rq_job.id, job, report_path=path)
    except Exception:
        logger.warning("Worker could not claim job %s; its horse will", job_id, exc_info=True)
        connections.close_all()
        return None
    HANDOVERS[rq_job.id] = handover
    return handover


@contextlib.contextmanager
def _short_lock_wait():
    """SQLite: let the claim wait at most ``SQLITE_CLAIM_WAIT_MS`` for the write lock (raising
    "database is locked" after), then restore the connection's own timeout. A no-op on
    databases with row locks (the claim skips a locked row there)."""
    connection = connections[Job.objects.db]
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        (previous,) = cursor.fetchone()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_CLAIM_WAIT_MS}")
        try:
            yield
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {int(previous)}")


def perform_handed_over(handover: Handover, rq_job: RQJob) -> dict:
    """In the horse: run the handler on the row its worker claimed; report, do not record."""
    if handover.job is None:
        return {"skipped": handover.skipped}
    outcome = attempt.run_handler(handover.job, rq_job)
    with open(handover.report_path, "w", encoding="utf-8") as report:
        json.dump(outcome.__dict__, report)  # cut short, it does not parse: no report
    return {"attempt": handover.job.attempts, "outcome": outcome.status, SETTLED_BY_WORKER: True}


def forget_handover(handover: Handover) -> None:
    """Drop a handover whose outcome will not be recorded here (its report file included)."""
    HANDOVERS.pop(handover.rq_job_id, None)
    if handover.report_path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handover.report_path)


def settle_after_horse(handover: Handover, *, how_it_ended: str) -> Job | None:
    """In the worker, once the horse is gone: record what it reported, or, if it reported
    nothing (killed, stopped, crashed), a failed attempt saying how it ended. Every write is
    conditional on the attempt, so a settle that reconcile got to first is left alone."""
    job = handover.job
    outcome = None
    if job is not None:
        with (
            contextlib.suppress(FileNotFoundError, ValueError),  # no report, or a partial one
            open(handover.report_path, encoding="utf-8") as report,
        ):
            outcome = AttemptOutcome(**json.load(report))
    forget_handover(handover)
    if job is None:
        return None
    if outcome is not None:
        return attempt.record_outcome(job, outcome, dispatch_retry=True)
    parked = park_if_parent(job)
    if parked is not None:  # its children carry the work: nothing of it died
        return parked
    kind = None
    with contextlib.suppress(UnknownJobKind):
        kind = get_kind(job.kind)
    return record_failure(
        job,
        message=f"Worker died: work horse {how_it_ended} while running attempt {job.attempts}",
        kind=kind,
        expect_attempt=job.attempts,
    )
