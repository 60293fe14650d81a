"""The claim: mark a ledger row running for this attempt, or say why it is not run.

A delivery is run only while its row is pending or retrying, not asked to cancel, and this very
delivery is the row's current one (a re-dispatch replaced an older one). One conditional
statement claims it and reads it back (``jobs.runner.sql``); only a claim that misses takes the
locked path to find out why (cancelled, settled, superseded).
"""

from __future__ import annotations

from typing import Any

from django.db import connections, transaction

from jobs.models import Job, JobState
from jobs.runner.settle import on_settle, settle_row
from jobs.runner.sql import claim_statement


def claim(job_id: Any, *, worker_name: str, rq_job_id: str) -> tuple[Job | None, str]:
    """Mark the row running. Returns (job, "") or (None, why it was skipped).

    One conditional ``UPDATE … RETURNING`` claims it and reads it back; only a claim that
    misses takes the locked path below to find out why (cancelled, settled, superseded).
    """
    connection = connections[Job.objects.db]
    if not connection.features.has_select_for_update_skip_locked:
        # SQLite: no row locks to wait on (a statement waiting for the write lock dies with its
        # process), so one autocommit statement is the claim.
        claimed = claim_statement(job_id, worker_name=worker_name, rq_job_id=rq_job_id)
    else:
        # PostgreSQL: one autocommit statement that never waits on a row lock (SKIP LOCKED).
        # Only a row someone holds locked (a merge into it, a cancel) takes the transaction:
        # a horse killed while its UPDATE waits on a row lock never sends the COMMIT, so its
        # claim is rolled back (in autocommit PostgreSQL would still apply it once the lock
        # frees, leaving a row "running" on a dead horse). BEGIN / COMMIT are two round trips
        # more per job, so only there.
        claimed = try_claim(job_id, worker_name=worker_name, rq_job_id=rq_job_id)
        if claimed is None:
            with transaction.atomic():
                claimed = claim_statement(job_id, worker_name=worker_name, rq_job_id=rq_job_id)
    if claimed is not None:
        return claimed, ""
    return None, why_not_claimed(job_id, rq_job_id=rq_job_id)


def try_claim(job_id: Any, *, worker_name: str, rq_job_id: str) -> Job | None:
    """The claim, if it can be had at once: on PostgreSQL a row someone holds locked is skipped
    (``FOR UPDATE SKIP LOCKED``) rather than waited for. None when it was not claimed, for
    whatever reason (``claim`` finds out which)."""
    skip_locked = connections[Job.objects.db].features.has_select_for_update_skip_locked
    return claim_statement(
        job_id, worker_name=worker_name, rq_job_id=rq_job_id, skip_locked=skip_locked
    )


def why_not_claimed(job_id: Any, *, rq_job_id: str) -> str:
    """Why a claim missed (under the row lock); a row asked to cancel is settled cancelled."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return "vanished from the ledger"
        if job.state not in (JobState.PENDING, JobState.RETRYING):
            return f"state is {job.state}"
        if job.cancel_requested:
            settle_row(job, JobState.CANCELLED, message="Cancelled before it started")
            on_settle(job)
            return "cancelled before it started"
        return f"superseded by RQ job {job.rq_job_id}"
