"""Parent / children jobs: a parent that settles when its children have (bulk operations).

The children are ledger jobs of their own, recorded with the parent and sent to RQ like any
job, so several workers share them. A parent's handler makes sure its children exist (and, on a
retry, runs the unfinished ones again with :func:`retry_unfinished`), then returns
:func:`await_children`: the parent holds no worker while they run. The runner settles it from
each child's settle (``jobs.parents``): progress "k/N batches done", stop on the first failure
unless ``continue_on_error``, cancel, and the kind's ``summarize`` result at "N/N batches done".
A ``--sync`` run (``run_inline``) runs the children in the calling process instead.
"""

from __future__ import annotations

from jobs.models import Job, JobState, LastAction
from jobs.parents import AWAIT_CHILDREN, AwaitChildren
from jobs.services import job_retry

__all__ = ["await_children", "retry_unfinished"]


def await_children() -> AwaitChildren:
    """What a parent's handler returns once its children exist: wait for them, no worker held."""
    return AWAIT_CHILDREN


def retry_unfinished(parent: Job) -> None:
    """A retried parent runs its failed and cancelled children again.

    Each gets a new attempt on its own row (errors kept, who asked recorded), exactly like
    a retry from the admin; completed children are not run twice.
    """
    who = parent.last_action_by if parent.last_action == LastAction.RETRY else None
    stopped = Job.objects.filter(parent=parent, state__in=(JobState.FAILED, JobState.CANCELLED))
    for child_id in list(stopped.values_list("pk", flat=True)):
        job_retry(job_id=child_id, user=who)
