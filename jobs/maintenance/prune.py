"""The pruner: settled jobs older than the retention age leave the ledger (Oban's Pruner).

Run weekly by a maintenance job and by ``manage.py jobs purge``.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from jobs import conf
from jobs.errors import JobError
from jobs.models import ACTIVE_STATES, SETTLED_STATES, Job
from jobs.rollup import prune_stored_hours


def prune_settled_jobs(*, older_than_days: int | None = None) -> tuple[int, int]:
    """Prune with the configured retention (``JOBS_RETENTION_DAYS``) unless told otherwise.
    Returns (rows deleted, days used)."""
    days = conf.retention_days() if older_than_days is None else older_than_days
    deleted = jobs_purge(older_than_days=days)
    prune_stored_hours(now=timezone.now())  # the chart's hourly rollup keeps 8 days
    return deleted, days


def jobs_purge(*, older_than_days: int) -> int:
    """Delete settled jobs that settled more than ``older_than_days`` days ago. Returns the count.

    A parent whose children are still active is kept.
    """
    if not isinstance(older_than_days, int) or older_than_days < 0:
        raise JobError("older_than_days must be a whole number of days, 0 or more")
    cutoff = timezone.now() - timedelta(days=older_than_days)
    candidates = Job.objects.filter(state__in=SETTLED_STATES, settled_at__lt=cutoff).exclude(
        Q(children__state__in=ACTIVE_STATES)
    )
    deleted = 0
    # Batches keep each DELETE (and its cascade to children) small.
    while True:
        ids = list(candidates.values_list("pk", flat=True)[:500])
        if not ids:
            return deleted
        # Count only the ledger rows we chose (children cascade and count too).
        _, per_model = Job.objects.filter(pk__in=ids).delete()
        deleted += per_model.get(Job._meta.label, 0)
