"""Jobs settled per hour, per queue, kind and state: a read-through rollup of the ledger.

The chart (24 h, 7 d), the strip's "completed 24 h" and ``/metrics``' ``jobs_settled_last_24h``
count settled jobs over many hours. At 1,000,000 ledger rows that is 10,000s of rows per page
view; here it is a few dozen small rows.

Freshness rule:
- An hour is *closed* once it ended more than :data:`CLOSE_AFTER` ago. Closed hours come from
  :class:`~jobs.models.JobHourStats`; the first read that needs one counts it from the ledger
  (one grouped query on the ``settled_at`` index for all missing hours) and stores it.
- Everything newer (the current hour and the one before it until :data:`CLOSE_AFTER` has
  passed) and a partial first hour are counted live from the ledger at every read. So a job that
  settles shows up at once; nothing is cached in a process, any web process answers the same.
- A closed hour is history: a job later retried, discarded or pruned still counts in the hour
  it settled in (as a throughput chart should). The weekly prune deletes stored hours older
  than :data:`KEEP` (:func:`prune_stored_hours`).

This module writes (the stored hours) from read paths on purpose: it is a cache table, filled
the way a cache is, never a source of truth (drop every row and the numbers stay the same).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour

from jobs.models import Job, JobHourStats

HOUR = timedelta(hours=1)
# A settle is stamped with the time just before its UPDATE commits; after this long no more
# rows can arrive in an hour, so it may be stored.
CLOSE_AFTER = timedelta(minutes=5)
# Stored hours older than this are deleted (the longest chart range is 7 days).
KEEP = timedelta(days=8)

# (hour start, queue, kind, state) -> jobs settled
Key = tuple[datetime, str, str, str]


def floor_hour(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return value.replace(minute=0, second=0, microsecond=0)


def settled_counts(*, since: datetime, now: datetime) -> Counter[Key]:
    """Jobs settled since ``since``, by (hour, queue, kind, state); ``now`` says which hours are
    closed.

    Two queries: the stored closed hours, then one grouped count on the ``settled_at`` index of
    the live rest (a partial first hour, the open hours) together with any closed hour never
    stored yet, which is then stored (a third query, once per hour).
    """
    since, now = since.astimezone(UTC), now.astimezone(UTC)
    first_full = floor_hour(since) + (HOUR if floor_hour(since) < since else timedelta(0))
    closed_end = floor_hour(now - CLOSE_AFTER)  # hours [first_full, closed_end) are closed
    closed = []
    hour = first_full
    while hour < closed_end:
        closed.append(hour)
        hour += HOUR
    stored = {}
    if closed:
        stored = {
            row.hour.astimezone(UTC): row.counts
            for row in JobHourStats.objects.filter(hour__gte=closed[0], hour__lt=closed_end)
        }
    missing = [h for h in closed if h not in stored]
    live_from = missing[0] if missing else (closed_end if closed else since)
    live = Q(settled_at__gte=since) if live_from <= since else Q(settled_at__gte=live_from)
    if closed and since < first_full:
        live |= Q(settled_at__gte=since, settled_at__lt=first_full)
    out: Counter[Key] = Counter()
    fresh: dict[datetime, list] = {h: [] for h in missing}
    for key, n in _count(Job.objects.filter(live)).items():
        hour = key[0]
        if hour in fresh:
            fresh[hour].append([key[1], key[2], key[3], n])
        elif hour not in stored:  # a stored hour's rows come from its row (one query, not two)
            out[key] += n
    if fresh:
        # Two processes filling the same hour count the same rows: the first insert wins.
        JobHourStats.objects.bulk_create(
            [JobHourStats(hour=h, counts=c) for h, c in fresh.items()], ignore_conflicts=True
        )
    for hour, counts in (*stored.items(), *fresh.items()):
        for q, k, s, n in counts:
            out[(hour, q, k, s)] += n
    return out


def _count(qs) -> Counter[Key]:
    rows = (
        qs.order_by()
        .annotate(hour=TruncHour("settled_at", tzinfo=UTC))
        .values_list("hour", "queue", "kind", "state")
        .annotate(n=Count("*"))
    )
    return Counter({(hour.astimezone(UTC), q, k, s): n for hour, q, k, s, n in rows})


def prune_stored_hours(*, now: datetime) -> int:
    """Delete stored hours older than :data:`KEEP` (no chart range reaches them)."""
    deleted, _ = JobHourStats.objects.filter(hour__lt=now - KEEP).delete()
    return deleted
