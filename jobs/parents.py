"""A parent job that waits for its children holding no worker, settled when its last child is.

GoodJob's batch callback is the model (``app/models/good_job/batch.rb``): nobody sits in a loop.
A parent's handler creates its children and returns :func:`await_children`; the runner then
*parks* the row: it stays ``running`` (to people it is running: its children are), with no
worker, no heartbeat requirement, and an ``rq_job_id`` of ``children-…`` that reconcile, the
stale badge and the claim understand.

The parent keeps counters of its children (total, settled, failed, cancelled), so a child's
settle costs the same few statements whether it has 2 siblings or 2,000:

Phase 1, park (:func:`park`): under the parent's row lock, one aggregate counts the children
and marks the settled ones counted. This is the only place that reads every child's state.

Phase 2, a child settles (:func:`child_settled`, the runner's on-settle hook): under the
parent's row lock, one conditional ``UPDATE`` marks the child counted; only if it was not
counted yet do the parent's counters move (so a hook that runs twice counts once).

Phase 3, decide from the counters (:func:`_decide`): a cancel request cancels the children that
have not started and settles the parent cancelled; a failed or cancelled child when the payload
says ``continue_on_error: false`` does the same and fails it ("Batch b/N failed: …"); the last
child's settle completes it with its kind's ``summarize(parent)`` (run once, streaming only
the fields it needs); otherwise the parent's progress becomes "k/N batches done".

Repair (:func:`repair`, from reconcile): a hook lost with a dying process leaves a settled
child uncounted; a partial index finds exactly those, and they are counted now. Nothing
scans every child of every parent on each pass.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.db.models.fields.json import KT
from django.utils import timezone

from jobs.liveness import AWAITING_PREFIX
from jobs.models import SETTLED_STATES, Job, JobState
from jobs.registry import UnknownJobKind, get_kind

logger = logging.getLogger(__name__)

STOPPED = (JobState.FAILED, JobState.CANCELLED)
# The parent columns a decision needs (never its payload: a bulk parent's lists every id).
_COUNTERS = (
    "pk",
    "state",
    "kind",
    "attempts",
    "rq_job_id",
    "cancel_requested",
    "children_total",
    "children_settled",
    "children_failed",
    "children_cancelled",
)


class AwaitChildren:
    """What a parent's handler returns to wait for its children without holding a worker."""

    def __repr__(self) -> str:
        return "AWAIT_CHILDREN"


AWAIT_CHILDREN = AwaitChildren()


def await_children() -> AwaitChildren:
    """What a parent's handler returns once its children exist: wait for them, no worker held.
    (A retried parent first runs its stopped children again: ``jobs.services.retry_unfinished``.)
    """
    return AWAIT_CHILDREN


def ordered_children(parent_id: Any) -> QuerySet[Job]:
    """The children as a queryset, batch 1 first (rows written by one INSERT can share a
    creation time; a bulk child's payload numbers its batch)."""
    return Job.objects.filter(parent_id=parent_id).order_by(
        KT("payload__batch"), "created_at", "pk"
    )


def progress_text(settled: int, total: int) -> tuple[int, str]:
    """(percent, "k/N batches done"): settled children count as 100 %."""
    return settled * 100 // (total or 1), f"{settled}/{total} batches done"


def cancel_unstarted(parent_id: Any) -> int:
    """Children that have not run yet never will (settled now; an RQ copy is skipped)."""
    return Job.objects.filter(
        parent_id=parent_id, state__in=(JobState.PENDING, JobState.RETRYING)
    ).update(
        state=JobState.CANCELLED,
        cancel_requested=True,
        settled_at=timezone.now(),
        next_attempt_at=None,
        progress_message="Cancelled before it ran",
        counted_by_parent=True,  # its parent settles right now: nothing left to count
    )


def park(job: Job) -> Job:
    """The parent's handler returned: keep the row running with no worker, count its children
    once and decide (a parent whose children all settled already completes here)."""
    with transaction.atomic():
        parked = Job.objects.filter(pk=job.pk, state=JobState.RUNNING, attempts=job.attempts)
        if parked.update(
            rq_job_id=f"{AWAITING_PREFIX}{job.pk}-{job.attempts}",
            worker_name="",
            heartbeat_at=None,
        ):
            check_parent(job.pk)
    return Job.objects.get(pk=job.pk)


def park_if_parent(job: Job) -> Job | None:
    """A parent kind's run whose worker died once its children were recorded has nothing
    left to do but wait for them: park it (None when ``job`` is no such parent)."""
    try:
        is_parent_kind = get_kind(job.kind).summarize is not None
    except UnknownJobKind:
        return None
    if not is_parent_kind or not Job.objects.filter(parent_id=job.pk).exists():
        return None
    return park(job)


def child_settled(child: Job) -> None:
    """The runner's on-settle hook: count ``child`` on its parent. Never raises (the child's own
    outcome is recorded already; reconcile's :func:`repair` counts it later)."""
    if not child.parent_id:
        return
    try:
        _count(child)
    except Exception:
        logger.exception("Could not update parent %s of job %s", child.parent_id, child.pk)


def child_reopened(child: Job, *, was: str) -> None:
    """A settled child runs again (a retry): it no longer counts as settled on its parent.
    Call inside the transaction that reopens it."""
    if not child.parent_id:
        return
    if not Job.objects.filter(pk=child.pk, counted_by_parent=True).update(counted_by_parent=False):
        return
    # One conditional UPDATE (no lock taken first: the retry holds the child's row already).
    Job.objects.filter(
        pk=child.parent_id, state=JobState.RUNNING, rq_job_id__startswith=AWAITING_PREFIX
    ).update(
        children_settled=F("children_settled") - 1,
        children_failed=F("children_failed") - int(was == JobState.FAILED),
        children_cancelled=F("children_cancelled") - int(was == JobState.CANCELLED),
    )


def check_parent(parent_id: Any) -> str | None:
    """Count a parked parent's children from scratch and decide. Returns its new state when
    it settled, else None. Reads every child's state once: for park, a cancel, a repair."""
    with transaction.atomic():
        parent = _locked(parent_id)
        if parent is None or not _awaiting(parent):
            return None
        children = Job.objects.filter(parent_id=parent_id)
        counts = children.aggregate(
            total=Count("pk"),
            settled=Count("pk", filter=Q(state__in=SETTLED_STATES)),
            failed=Count("pk", filter=Q(state=JobState.FAILED)),
            cancelled=Count("pk", filter=Q(state=JobState.CANCELLED)),
        )
        children.filter(state__in=SETTLED_STATES, counted_by_parent=False).update(
            counted_by_parent=True
        )
        children.exclude(state__in=SETTLED_STATES).filter(counted_by_parent=True).update(
            counted_by_parent=False
        )
        parent |= {
            "children_total": counts["total"],
            "children_settled": counts["settled"],
            "children_failed": counts["failed"],
            "children_cancelled": counts["cancelled"],
        }
        return _decide(parent, failed_child=None)


def repair(*, limit: int = 1000) -> list:
    """Reconcile's pass: count settled children whose hook was lost, and settle parked parents
    that wait for nothing (a cancel whose hook was lost, or no children at all). Returns the
    ids of parents that settled."""
    settled_parents = []
    lost = Job.objects.filter(
        parent__isnull=False, counted_by_parent=False, state__in=SETTLED_STATES
    ).defer("payload", "result")[:limit]
    for child in lost:
        if _count(child) is not None:
            settled_parents.append(child.parent_id)
    stuck = Job.objects.filter(
        Q(cancel_requested=True) | Q(children_total=0),
        state=JobState.RUNNING,
        rq_job_id__startswith=AWAITING_PREFIX,
    ).values_list("pk", flat=True)
    for parent_id in stuck:
        if check_parent(parent_id) is not None:
            settled_parents.append(parent_id)
    return settled_parents


# --- the counting -------------------------------------------------------------------------------


def _locked(parent_id) -> dict | None:
    """The parent's counters under its row lock (a dict: the payload stays in the database)."""
    row = Job.objects.select_for_update().filter(pk=parent_id).values(*_COUNTERS).first()
    return row


def _awaiting(parent: dict) -> bool:
    return parent["state"] == JobState.RUNNING and parent["rq_job_id"].startswith(AWAITING_PREFIX)


def _count(child: Job) -> str | None:
    with transaction.atomic():
        parent = _locked(child.parent_id)
        counted = Job.objects.filter(
            pk=child.pk, state__in=SETTLED_STATES, counted_by_parent=False
        ).update(counted_by_parent=True)
        if parent is None or not counted or not _awaiting(parent):
            return None
        parent["children_settled"] += 1
        parent["children_failed"] += int(child.state == JobState.FAILED)
        parent["children_cancelled"] += int(child.state == JobState.CANCELLED)
        return _decide(parent, failed_child=child if child.state in STOPPED else None)


def _stop_on_error(parent_id) -> bool:
    """Does the parent's payload say ``continue_on_error: false``? Read only when a child
    stopped (a bulk parent's payload lists every id: parsing it per settle cost 3 ms)."""
    value = (
        Job.objects.filter(pk=parent_id)
        .values_list(KT("payload__continue_on_error"), flat=True)
        .first()
    )
    # KT() reads a JSON boolean as text on PostgreSQL ("false") and as 0/1 on SQLite.
    return value is not None and str(value).lower() in ("false", "0")


def _decide(parent: dict, *, failed_child: Job | None) -> str | None:
    """Settle or update the locked parent from its counters; its new state if it settled."""
    pk, total, settled = parent["pk"], parent["children_total"], parent["children_settled"]
    pct, message = progress_text(settled, total)
    parked = Job.objects.filter(pk=pk, state=JobState.RUNNING, rq_job_id=parent["rq_job_id"])
    counters = {k: v for k, v in parent.items() if k.startswith("children_")}
    if parent["cancel_requested"]:
        cancel_unstarted(pk)
        _settle(parked, JobState.CANCELLED, progress_message="Cancelled while running", **counters)
        return JobState.CANCELLED
    stopped = parent["children_failed"] + parent["children_cancelled"]
    if stopped and _stop_on_error(pk):
        cancel_unstarted(pk)
        text = _failure_text(failed_child or _first_stopped(pk), total)
        error = {
            "attempt": parent["attempts"],
            "at": timezone.now().isoformat(),
            "message": text[:2000],
            "traceback": "",
            "worker": "",
        }
        errors = list(Job.objects.filter(pk=pk).values_list("errors", flat=True).first() or [])
        _settle(
            parked,
            JobState.FAILED,
            errors=[*errors, error],
            progress=min(pct, 99),
            progress_message=text[:255],
            **counters,
        )
        return JobState.FAILED
    if settled >= total:
        _settle(
            parked,
            JobState.COMPLETED,
            result=_summary(pk, parent),
            progress=100,
            progress_message=message,
            **counters,
        )
        return JobState.COMPLETED
    parked.update(progress=min(pct, 99), progress_message=message, **counters)
    return None


def _first_stopped(parent_id) -> Job | None:
    return (
        ordered_children(parent_id)
        .filter(state__in=STOPPED)
        .only("pk", "state", "errors", "payload")
        .first()
    )


def _failure_text(child: Job | None, total: int) -> str:
    if child is None:
        return f"ChildFailed: a batch of {total} stopped"
    why = child.errors[-1]["message"] if child.errors else child.state
    batch = (child.payload or {}).get("batch")
    return f"ChildFailed: Batch {batch}/{total} {child.state}: {why}"


def _summary(parent_id, parent: dict) -> dict:
    """The kind's ``summarize(parent)``, once; else the counters."""
    try:
        summarize = get_kind(parent["kind"]).summarize
    except UnknownJobKind:
        summarize = None
    if summarize is not None:
        return summarize(Job.objects.get(pk=parent_id))
    stopped = parent["children_failed"] + parent["children_cancelled"]
    return {
        "batches": parent["children_total"],
        "completed_batches": parent["children_total"] - stopped,
    }


def _settle(rows, state: str, **fields) -> None:
    rows.update(state=state, settled_at=timezone.now(), next_attempt_at=None, **fields)
