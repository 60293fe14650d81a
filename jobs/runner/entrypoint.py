"""The RQ entrypoint (``jobs.dispatch.RUNNER_ENTRYPOINT``): run one delivery of a ledger job."""

from __future__ import annotations

import logging

from rq import get_current_job

from jobs.runner.attempt import execute
from jobs.runner.claim import claim
from jobs.runner.delivery import (
    drop_broken_connections,
    hand_back,
    local_name,
    paused,
    wait_out_debounce,
)
from jobs.runner.handover import HANDOVERS, perform_handed_over

logger = logging.getLogger(__name__)


def perform(job_id: str) -> dict:
    """RQ entrypoint: run the ledger job ``job_id``. Returns a short summary for RQ's result."""
    rq_job = get_current_job()
    handover = HANDOVERS.pop(rq_job.id, None) if rq_job is not None else None
    if handover is not None:  # in a work horse whose worker claimed the row before forking
        assert rq_job is not None  # a handover is only looked up by the RQ job's id
        return perform_handed_over(handover, rq_job)
    drop_broken_connections()
    if rq_job is not None:
        wait_out_debounce(rq_job)
    if rq_job is not None and paused(rq_job):
        hand_back(job_id, rq_job)
        return {"skipped": f"queue {rq_job.origin} is paused"}
    worker = (rq_job.worker_name if rq_job else None) or local_name()
    job, skipped = claim(job_id, worker_name=worker, rq_job_id=rq_job.id if rq_job else "")
    if job is None:
        logger.info("Job %s not run: %s", job_id, skipped)
        return {"skipped": skipped}
    job = execute(job, rq_job)
    return {"state": job.state, "attempt": job.attempts}
