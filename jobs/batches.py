"""Parent / children jobs: a parent that settles when its children have (bulk operations).

The children are ledger jobs of their own, recorded with the parent and sent to RQ like any
job, so several workers share them. :func:`wait_for_children` is what a parent's handler calls
once its children exist: it reports their combined progress ("2/5 batches done"), runs any
child nobody has started yet in place (through the same runner, so a single worker never
deadlocks on its own children), stops at the first failure unless told to go on, and cancels
the children that had not started when the parent is cancelled.

(Still a waiting loop inside the parent's handler, as before the move: a parent settled by
an on-settle hook, holding no worker, is the next step; see the README.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from django.utils import timezone

from jobs.context import JobCancelled, JobContext
from jobs.models import SETTLED_STATES, Job, JobState, LastAction
from jobs.runner import run_inline
from jobs.services import job_retry

# How often a parent looks at its children while other workers run them.
POLL_SECONDS = 0.25


class ChildFailed(Exception):
    """A child failed and the parent stops at the first failure."""


# The name bundles' tests and older code used.
BulkOperationFailed = ChildFailed


def progress_of(children: Sequence[Job]) -> tuple[int, str]:
    """(percent, "k/N batches done") over the children: settled ones count as 100 %."""
    total = len(children) or 1
    settled = sum(1 for c in children if c.state in SETTLED_STATES)
    pct = sum(100 if c.state in SETTLED_STATES else c.progress for c in children) // total
    return pct, f"{settled}/{len(children)} batches done"


def retry_unfinished(parent: Job, children: Sequence[Job]) -> None:
    """A retried parent runs its failed and cancelled children again.

    Each gets a new attempt on its own row (errors kept, who asked recorded), exactly like
    a retry from the admin; completed children are not run twice.
    """
    who = parent.last_action_by if parent.last_action == LastAction.RETRY else None
    for child in children:
        if child.state in (JobState.FAILED, JobState.CANCELLED):
            job_retry(job_id=child.pk, user=who)


def runnable(children: Sequence[Job]) -> list[Job]:
    """Children the parent may run now: pending ones, and retrying ones whose backoff is over."""
    now = timezone.now()
    return [
        c
        for c in children
        if c.state == JobState.PENDING
        or (
            c.state == JobState.RETRYING and (c.next_attempt_at is None or c.next_attempt_at <= now)
        )
    ]


def cancel_unstarted(children: Sequence[Job]) -> None:
    # Children that have not run yet never will (settled now, so a --sync run with no worker
    # leaves nothing pending; an RQ copy is skipped by the runner); a running one finishes.
    Job.objects.filter(
        pk__in=[c.pk for c in children], state__in=(JobState.PENDING, JobState.RETRYING)
    ).update(
        state=JobState.CANCELLED,
        cancel_requested=True,
        settled_at=timezone.now(),
        next_attempt_at=None,
        progress_message="Cancelled before it ran",
    )


def wait_for_children(
    ctx: JobContext,
    *,
    children_of: Callable[[Job], list[Job]],
    continue_on_error: bool = True,
) -> list[Job]:
    """Until every child of ``ctx.job`` has settled; returns them, settled, in their order.

    Raises :class:`ChildFailed` at the first failed or cancelled child unless
    ``continue_on_error`` (the unstarted ones are cancelled), and ``JobCancelled`` when the
    parent is cancelled. The last progress written says "N/N batches done".
    """
    try:
        while True:
            children = children_of(ctx.job)
            total = len(children)
            failed = [c for c in children if c.state in (JobState.FAILED, JobState.CANCELLED)]
            pct, message = progress_of(children)
            done = all(c.state in SETTLED_STATES for c in children)
            if not done:
                ctx.set_progress(min(pct, 99), message)
            # Unthrottled: a cancel settles the children at once, so look before concluding.
            if Job.objects.filter(pk=ctx.job.pk, cancel_requested=True).exists():
                raise JobCancelled("Cancel requested")
            if failed and not continue_on_error:
                cancel_unstarted(children)
                first = failed[0]
                why = first.errors[-1]["message"] if first.errors else first.state
                raise ChildFailed(
                    f"Batch {first.payload.get('batch')}/{total} {first.state}: {why}"
                )
            if done:
                # Written unthrottled (100 %), so the list, the page and --wait say N/N.
                ctx.set_progress(100, message)
                return children
            waiting = runnable(children)
            if waiting:
                run_inline(waiting[0])  # skips it if a worker claimed it first
            else:
                # The rest are running on other workers, or waiting out a retry's backoff.
                time.sleep(POLL_SECONDS)
    except JobCancelled:
        cancel_unstarted(children_of(ctx.job))
        raise
