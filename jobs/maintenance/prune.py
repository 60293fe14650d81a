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


class RetentionTooShort(JobError):
    api_code = "BAD_USER_INPUT"
    code = "retention_too_short"
    audit = True  # asking to wipe recent evidence is logged, not only refused


def check_retention(days: object) -> None:
    """Refuse a retention that is no whole number or is below ``JOBS_MIN_RETENTION_DAYS``."""
    floor = conf.min_retention_days()
    if isinstance(days, bool) or not isinstance(days, int):
        raise RetentionTooShort(f"Retention days must be a whole number, at least {floor}.")
    if days < floor:
        raise RetentionTooShort(
            f"Retention days must be at least {floor} (JOBS_MIN_RETENTION_DAYS)."
        )


def jobs_purge(*, older_than_days: int) -> int:
    """Delete settled jobs that settled more than ``older_than_days`` days ago. Returns the count.

    A parent whose children are still active is kept. Fewer days than
    ``JOBS_MIN_RETENTION_DAYS`` raise :class:`RetentionTooShort` and delete nothing.
    """
    check_retention(older_than_days)
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
