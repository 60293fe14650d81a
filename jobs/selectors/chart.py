"""Completed and failed jobs per time bucket, for the chart (from the hourly rollup, or the
settled_at index for the last hour)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone

from jobs.models import Job, JobState
from jobs.rollup import settled_counts


@dataclass(frozen=True)
class HourBucket:
    hour: datetime  # start of the hour, UTC
    completed: int
    failed: int


def jobs_per_hour(*, hours: int = 24, now: datetime | None = None) -> list[HourBucket]:
    """Completed and failed jobs per hour (by settle time) over the last ``hours`` hours.

    Always ``hours`` buckets, oldest first, the last one being the current hour. From the
    hourly rollup (stored closed hours, the open ones live).
    """
    now = now or timezone.now()
    current = now.replace(minute=0, second=0, microsecond=0)
    start = current - timedelta(hours=hours - 1)
    by_hour: dict[datetime, dict[str, int]] = defaultdict(lambda: {"completed": 0, "failed": 0})
    for (hour, _queue, _kind, state), n in settled_counts(since=start, now=now).items():
        if state in (JobState.COMPLETED, JobState.FAILED):
            by_hour[hour][state] += n
    return [
        HourBucket(hour=h, completed=by_hour[h]["completed"], failed=by_hour[h]["failed"])
        for h in (start + timedelta(hours=i) for i in range(hours))
    ]


# The chart's ranges: (bucket width, how many buckets).
CHART_RANGES: dict[str, tuple[timedelta, int]] = {
    "1h": (timedelta(minutes=5), 12),
    "24h": (timedelta(hours=1), 24),
    "7d": (timedelta(hours=6), 28),
}


def jobs_chart(
    *, range_name: str = "24h", now: datetime | None = None, settled: Counter | None = None
) -> list[HourBucket]:
    """Completed / failed per bucket over one of :data:`CHART_RANGES`, oldest first.

    ``settled``: the caller's :func:`settled_last_24h` at the same ``now``, reused for 24 h
    (its range starts after now - 24 h).

    24 h and 7 d: from the hourly rollup (``jobs.rollup``: a few dozen stored rows plus the
    open hours counted live). 1 h: one grouped query on the settled_at index, truncated to the
    minute (an hour of rows at most).
    """
    if range_name not in CHART_RANGES:
        raise ValueError(f"range must be one of {', '.join(CHART_RANGES)}")
    width, count = CHART_RANGES[range_name]
    now = now or timezone.now()
    step = int(width.total_seconds())
    epoch_now = int(now.timestamp())
    last_start = epoch_now - epoch_now % step
    first_start = last_start - step * (count - 1)
    start = datetime.fromtimestamp(first_start, tz=timezone.get_fixed_timezone(0))
    counts = [{"completed": 0, "failed": 0} for _ in range(count)]
    rows: Iterable[tuple[datetime, str, int]]  # (hour or minute, state, how many)
    if width >= timedelta(hours=1):
        if settled is None or range_name != "24h":
            settled = settled_counts(since=start, now=now)
        rows = [
            (hour, state, n)
            for (hour, _queue, _kind, state), n in settled.items()
            if state in (JobState.COMPLETED, JobState.FAILED)
        ]
    else:
        rows = (
            Job.objects.filter(
                settled_at__gte=start, state__in=(JobState.COMPLETED, JobState.FAILED)
            )
            .order_by()
            .annotate(at=TruncMinute("settled_at"))
            .values_list("at", "state")
            .annotate(n=Count("pk"))
        )
    for at, state, n in rows:
        index = (int(at.timestamp()) - first_start) // step
        if 0 <= index < count:
            counts[index][state] += n
    return [
        HourBucket(hour=start + i * width, completed=c["completed"], failed=c["failed"])
        for i, c in enumerate(counts)
    ]
