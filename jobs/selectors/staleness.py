"""Stale jobs: running rows that stopped reporting, or whose worker is dead. The reconciler
settles them within a minute or so; until then the admin shows a badge."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs import conf
from jobs.liveness import AWAITING_PREFIX, is_awaiting_children, worker_death
from jobs.models import Job, JobState
from jobs.selectors.workers import workers_seen_recently


def stale_jobs(*, stale_after: int | None = None, now: datetime | None = None) -> QuerySet[Job]:
    """Running jobs that have not reported (heartbeat or progress) for ``stale_after`` seconds.

    The reconciler settles them within a minute or so; until then the admin shows a badge.
    A parent awaiting its children (no worker, no heartbeat) is never stale.
    """
    stale_after = stale_after or conf.stale_after_seconds()
    cutoff = (now or timezone.now()) - timedelta(seconds=stale_after)
    return (
        Job.objects.filter(state=JobState.RUNNING)
        .exclude(rq_job_id__startswith=AWAITING_PREFIX)
        .annotate(last_sign=Coalesce("heartbeat_at", "started_at", "created_at"))
        .filter(last_sign__lt=cutoff)
    )


def job_is_stale(job: Job, *, stale_after: int | None = None, now: datetime | None = None) -> bool:
    """:func:`stale_jobs`' rule for one row already loaded (no query): the list's badge.

    Also stale at once: a running row whose RQ worker is dead by ``jobs.liveness``' rule (gone
    or silent, and the row silent too), the moment reconcile would see it too.
    """
    if job.state != JobState.RUNNING or is_awaiting_children(job):
        return False
    now = now or timezone.now()
    last_sign = job.heartbeat_at or job.started_at or job.created_at
    stale_after = stale_after or conf.stale_after_seconds()
    if last_sign < now - timedelta(seconds=stale_after):
        return True
    if (now - last_sign).total_seconds() <= conf.worker_silent_after():
        return False  # fresh: no need to ask Redis
    seen = workers_seen_recently()
    return seen is not None and worker_death(job, seen, now=now) is not None
