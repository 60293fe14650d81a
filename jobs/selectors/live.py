"""The list's 2-second refresh: state, progress and attempts of the jobs on the page."""

from __future__ import annotations

import uuid

from django.utils import timezone

from jobs.models import SETTLED_STATES, Job
from jobs.selectors.job import duration_seconds, last_error_line
from jobs.selectors.staleness import job_is_stale


def job_live_rows(*, ids: list) -> list[dict]:
    """State, progress and attempts of the given jobs (one query), for the 2-second refresh."""
    clean = []
    for value in ids[:500]:
        try:
            clean.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    rows = Job.objects.filter(pk__in=clean).only(
        "pk",
        "state",
        "progress",
        "progress_message",
        "attempts",
        "max_attempts",
        "errors",
        "started_at",
        "settled_at",
        "merged_count",
        "cancel_requested",
        "heartbeat_at",
        "created_at",
    )
    now = timezone.now()
    return [
        {
            "id": str(job.pk),
            "state": job.state,
            "state_label": job.get_state_display(),
            "progress": job.progress,
            "message": job.progress_message,
            "attempts": job.attempts,
            "max_attempts": job.max_attempts,
            "last_error": last_error_line(job),
            "errors": len(job.errors or []),
            "settled": job.state in SETTLED_STATES,
            "merged_count": job.merged_count,
            "cancel_requested": job.cancel_requested,
            "duration": duration_seconds(job),
            "stale": job_is_stale(job, now=now),
        }
        for job in rows
    ]
