"""Inline runs (``--sync``, tests; no Redis needed): the same claim, attempt and settle as in a
worker, in this process, retries included and a parent's children one after the other."""

from __future__ import annotations

import time

from django.utils import timezone

from jobs.models import SETTLED_STATES, Job, JobState
from jobs.parents import check_parent, ordered_children
from jobs.registry import get_kind
from jobs.runner.attempt import execute
from jobs.runner.claim import claim
from jobs.runner.delivery import local_name
from jobs.selectors import wait_for_job


def run_inline(job: Job) -> Job:
    """Run ``job`` in this process through the same runner (``--sync``; no Redis needed).

    Retries happen inline too, without the backoff wait, until the job settles. A parent's
    children run here too, one after the other (there may be no worker at all).
    """
    worker = local_name(prefix="inline")
    while True:
        claimed, _skipped = claim(job.pk, worker_name=worker, rq_job_id="")
        if claimed is None:
            job.refresh_from_db()
            if not job.is_settled and job.state == JobState.RUNNING:
                # A worker got it first (it was dispatched too): wait for that run instead.
                return wait_for_job(job.pk, timeout=get_kind(job.kind).timeout + 60)
            return job
        job = execute(claimed, None, inline=True)
        if job.state == JobState.RUNNING:  # a parent awaiting its children
            return _run_children_inline(job)
        if job.state != JobState.RETRYING:
            return job


def _run_children_inline(parent: Job) -> Job:
    """Run a parked parent's unfinished children here, batch 1 first. Each child's settle
    counts it on the parent (the same hook as in a worker); one read of the parent's state per
    child tells whether it settled (stop on error, a cancel)."""
    waiting = ordered_children(parent.pk).filter(state__in=(JobState.PENDING, JobState.RETRYING))
    for child_id, due in list(waiting.values_list("pk", "next_attempt_at")):
        if due is not None:
            # A batch waiting out its retry's backoff runs when it is due, not before.
            time.sleep(max(0.0, (due - timezone.now()).total_seconds()))
        run_inline(Job(pk=child_id))
        if Job.objects.filter(pk=parent.pk, state__in=SETTLED_STATES).exists():
            break
    check_parent(parent.pk)  # one recount: a hook that failed here is made good at once
    return Job.objects.get(pk=parent.pk)
