"""One job: fetched, waited for, its children summed up, its audit trail, its times for display."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Avg, Count
from django.utils import timezone

from jobs.errors import JobNotFound
from jobs.models import SETTLED_STATES, Job
from jobs.selectors.ids import JobId, parse_job_id


def job_get(*, job_id: JobId) -> Job:
    """The job with that id; ``JobNotFound`` for a malformed or unknown one."""
    pk = parse_job_id(job_id)
    try:
        return Job.objects.get(pk=pk)
    except Job.DoesNotExist:
        raise JobNotFound(f"No job with id {pk}") from None


def wait_for_job(
    job_id: JobId,
    timeout: float | None,
    on_progress: Callable[[Job], None] | None = None,
    poll_interval: float = 0.2,
) -> Job:
    """Poll the ledger until the job settles or ``timeout`` seconds pass; return the row.

    ``on_progress(job)`` is called whenever its state, progress or message changes. After a
    timeout the row is returned as it is (check ``job.is_settled``).
    """
    pk = parse_job_id(job_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = None
    while True:
        job = job_get(job_id=pk)
        snapshot = (job.state, job.progress, job.progress_message, job.attempts)
        if on_progress is not None and snapshot != seen:
            on_progress(job)
        seen = snapshot
        if job.is_settled:
            return job
        if deadline is not None and time.monotonic() >= deadline:
            return job
        time.sleep(poll_interval)


@dataclass(frozen=True)
class ChildrenSummary:
    total: int
    by_state: dict[str, int]
    progress: int  # average progress of the children, 0-100
    settled: int


def job_children_summary(*, job_id: JobId) -> ChildrenSummary:
    """Aggregate progress of a bulk job's children (one grouped query)."""
    rows = (
        Job.objects.filter(parent_id=parse_job_id(job_id))
        .order_by()
        .values("state")
        .annotate(n=Count("pk"), avg=Avg("progress"))
    )
    by_state = {row["state"]: row["n"] for row in rows}
    total = sum(by_state.values())
    weighted = sum((row["avg"] or 0) * row["n"] for row in rows)
    settled = sum(n for s, n in by_state.items() if s in SETTLED_STATES)
    # A settled child (failed or cancelled too) is as far as it will go: count it as done.
    done = weighted + sum(
        (100 - (row["avg"] or 0)) * row["n"] for row in rows if row["state"] in SETTLED_STATES
    )
    return ChildrenSummary(
        total=total,
        by_state=by_state,
        progress=int(done / total) if total else 0,
        settled=settled,
    )


def job_audit(*, job_id: JobId) -> list[LogEntry]:
    """Admin log entries about this job (who triggered, retried, cancelled it), oldest first."""
    ct = ContentType.objects.get_for_model(Job)
    return list(
        LogEntry.objects.filter(content_type=ct, object_id=str(job_id))
        .select_related("user")
        .order_by("action_time")
    )


def duration_seconds(job: Job, *, now: datetime | None = None) -> float | None:
    """Seconds from start to settle (or to now while it runs); None if it never started."""
    if not job.started_at:
        return None
    end = job.settled_at or now or timezone.now()
    return max(0.0, (end - job.started_at).total_seconds())


def last_error_line(job: Job) -> str:
    """First line of the last attempt's error message ("" if it never failed)."""
    if not job.errors:
        return ""
    message = (job.errors[-1] or {}).get("message", "") or ""
    return message.strip().splitlines()[0] if message.strip() else ""
