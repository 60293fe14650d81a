"""A parent job that waits for its children holding no worker, settled when its last child is.

GoodJob's batch callback is the model (``app/models/good_job/batch.rb``): nobody sits in a loop.
A parent's handler creates its children and returns :data:`AWAIT_CHILDREN`; the runner then
*parks* the row: it stays ``running`` (to people it is running: its children are), with no
worker, no heartbeat requirement, and an ``rq_job_id`` of ``children-…`` that reconcile, the
stale badge and the claim understand. Every time a child settles, the runner calls
:func:`child_settled`, which under the parent's row lock

* writes the parent's progress ("k/N batches done", settled children count as 100 %);
* on a cancel request: cancels the children that have not started and settles it cancelled;
* on a failed or cancelled child when the parent's payload says ``continue_on_error: false``:
  cancels the unstarted ones and fails the parent ("Batch b/N failed: …");
* when every child has settled: completes it with its kind's ``summarize(parent, children)``
  result (or counts) at 100 %, "N/N batches done".

Reconcile calls :func:`check_parent` on every parked parent too, so a hook lost with a dying
process settles the parent on the next pass anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from jobs.liveness import AWAITING_PREFIX, is_awaiting_children
from jobs.models import SETTLED_STATES, Job, JobState
from jobs.registry import UnknownJobKind, get_kind

logger = logging.getLogger(__name__)


class AwaitChildren:
    """What a parent's handler returns to wait for its children without holding a worker."""

    def __repr__(self) -> str:
        return "AWAIT_CHILDREN"


AWAIT_CHILDREN = AwaitChildren()


def children_in_order(parent_id) -> list[Job]:
    """The children, batch 1 first (rows written by one INSERT can share a creation time)."""
    children = Job.objects.filter(parent_id=parent_id)
    return sorted(children, key=lambda c: (int((c.payload or {}).get("batch") or 0), c.created_at))


def progress_of(children: Sequence[Job]) -> tuple[int, str]:
    """(percent, "k/N batches done") over the children: settled ones count as 100 %."""
    total = len(children) or 1
    settled = sum(1 for c in children if c.state in SETTLED_STATES)
    pct = sum(100 if c.state in SETTLED_STATES else c.progress for c in children) // total
    return pct, f"{settled}/{len(children)} batches done"


def cancel_unstarted(children: Sequence[Job]) -> int:
    """Children that have not run yet never will (settled now; an RQ copy is skipped)."""
    return Job.objects.filter(
        pk__in=[c.pk for c in children], state__in=(JobState.PENDING, JobState.RETRYING)
    ).update(
        state=JobState.CANCELLED,
        cancel_requested=True,
        settled_at=timezone.now(),
        next_attempt_at=None,
        progress_message="Cancelled before it ran",
    )


def park(job: Job) -> Job:
    """The parent's handler returned: keep the row running with no worker, then check it."""
    Job.objects.filter(pk=job.pk, state=JobState.RUNNING, attempts=job.attempts).update(
        rq_job_id=f"{AWAITING_PREFIX}{job.pk}-{job.attempts}",
        worker_name="",
        heartbeat_at=None,
    )
    check_parent(job.pk)
    return Job.objects.get(pk=job.pk)


def child_settled(child: Job) -> None:
    """The runner's on-settle hook: look at the child's parent. Never raises (the child's own
    outcome is recorded already; reconcile repeats the check)."""
    if not child.parent_id:
        return
    try:
        check_parent(child.parent_id)
    except Exception:
        logger.exception("Could not update parent %s of job %s", child.parent_id, child.pk)


def check_parent(parent_id) -> str | None:
    """Progress, cancel, stop-on-error or completion of a parked parent. Returns its new state
    when it settled, else None."""
    with transaction.atomic():
        parent = Job.objects.select_for_update().filter(pk=parent_id).first()
        if parent is None or not is_awaiting_children(parent):
            return None
        children = children_in_order(parent.pk)
        parked = Job.objects.filter(
            pk=parent.pk, state=JobState.RUNNING, rq_job_id=parent.rq_job_id
        )
        pct, message = progress_of(children)
        if parent.cancel_requested:
            cancel_unstarted(children)
            _settle(parked, JobState.CANCELLED, progress_message="Cancelled while running")
            return JobState.CANCELLED
        failed = [c for c in children if c.state in (JobState.FAILED, JobState.CANCELLED)]
        if failed and not (parent.payload or {}).get("continue_on_error", True):
            cancel_unstarted(children)
            first = failed[0]
            why = first.errors[-1]["message"] if first.errors else first.state
            text = f"ChildFailed: Batch {first.payload.get('batch')}/{len(children)} "
            text += f"{first.state}: {why}"
            error = {
                "attempt": parent.attempts,
                "at": timezone.now().isoformat(),
                "message": text[:2000],
                "traceback": "",
                "worker": "",
            }
            _settle(
                parked,
                JobState.FAILED,
                errors=[*(parent.errors or []), error],
                progress=min(pct, 99),
                progress_message=text[:255],
            )
            return JobState.FAILED
        if all(c.state in SETTLED_STATES for c in children):
            _settle(
                parked,
                JobState.COMPLETED,
                result=_summary(parent, children),
                progress=100,
                progress_message=message,
            )
            return JobState.COMPLETED
        parked.update(progress=min(pct, 99), progress_message=message)
    return None


def _summary(parent: Job, children: list[Job]) -> dict:
    try:
        summarize = get_kind(parent.kind).summarize
    except UnknownJobKind:
        summarize = None
    if summarize is not None:
        return summarize(parent, children)
    done = sum(1 for c in children if c.state == JobState.COMPLETED)
    return {"batches": len(children), "completed_batches": done}


def _settle(rows, state: str, **fields) -> None:
    rows.update(state=state, settled_at=timezone.now(), next_attempt_at=None, **fields)
