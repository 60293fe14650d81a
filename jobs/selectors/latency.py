"""How fast the queues move: the oldest waiting job, throughput per minute, and p50 / p95 run
times per kind over a bounded sample."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Count, F, FloatField, Func, Min
from django.utils import timezone

from jobs.models import Job, JobState

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

THROUGHPUT_WINDOW_MINUTES = 15


def queue_latency(*, now: datetime | None = None) -> dict[str, dict]:
    """Per queue: the oldest pending job's age and completed / failed per minute (last 15 min).

    One grouped query per figure, each an index range: (state, queue, created_at) for the
    oldest pending, settled_at for the window.
    """
    now = now or timezone.now()
    out: dict[str, dict] = defaultdict(dict)
    oldest = (
        Job.objects.filter(state=JobState.PENDING)
        .order_by()
        .values("queue")
        .annotate(oldest=Min("created_at"))
    )
    for row in oldest:
        out[row["queue"]]["oldest_waiting_seconds"] = (now - row["oldest"]).total_seconds()
    since = now - timedelta(minutes=THROUGHPUT_WINDOW_MINUTES)
    settled = (
        Job.objects.filter(settled_at__gte=since, state__in=(JobState.COMPLETED, JobState.FAILED))
        .order_by()
        .values("queue", "state")
        .annotate(n=Count("*"))
    )
    for row in settled:
        out[row["queue"]][f"{row['state']}_per_minute"] = row["n"] / THROUGHPUT_WINDOW_MINUTES
    return dict(out)


@dataclass(frozen=True)
class KindTiming:
    kind: str
    runs: int
    p50_seconds: float
    p95_seconds: float


def _percentile(sorted_values: list[float], fraction: float) -> float:
    # Nearest rank: the smallest value with at least ``fraction`` of the runs at or below it.
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class RunSeconds(Func):
    """started_at → settled_at in seconds, as a float computed by the database (one number per
    row to load instead of two time stamps)."""

    output_field = FloatField()

    def __init__(self, **extra: Any) -> None:
        super().__init__(F("settled_at"), F("started_at"), **extra)

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list[Any] | tuple[Any, ...]]:
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))::float8",
            arg_joiner=" - ", **extra,
        )  # fmt: skip

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list[Any] | tuple[Any, ...]]:
        return self.as_sql(
            compiler, connection, template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(", **extra,
        )  # fmt: skip


def completed_run_seconds(*, since: datetime, limit: int) -> list[tuple[str, float]]:
    """(kind, run seconds) of the newest ``limit`` jobs completed since ``since``: a backward
    walk of the settled_at index that stops after ``limit`` rows."""
    return list(
        Job.objects.filter(
            settled_at__gte=since, state=JobState.COMPLETED, started_at__isnull=False
        )
        .order_by("-settled_at")
        .annotate(run=RunSeconds())
        .values_list("kind", "run")[:limit]
    )


def kind_timings(
    *, hours: int = 24, sample: int = 5000, now: datetime | None = None
) -> list[KindTiming]:
    """p50 / p95 run time (started → settled) per kind, over the newest ``sample`` jobs that
    completed in the last ``hours``.

    One query, bounded work at any ledger size, and exact while fewer jobs completed in the
    window (a bounded window, not the rollup: percentiles need the values themselves). On
    PostgreSQL the database ranks them (``percentile_disc``, the same nearest rank), so a page
    loads one row per kind instead of ``sample`` rows.
    """
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    if connection.vendor == "postgresql":
        return _kind_timings_in_sql(since=since, sample=sample)
    return _kind_timings_in_python(since=since, sample=sample)


def _kind_timings_in_python(*, since: datetime, sample: int) -> list[KindTiming]:
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, run in completed_run_seconds(since=since, limit=sample):
        by_kind[kind].append(max(0.0, run or 0.0))
    out = []
    for kind in sorted(by_kind):
        values = sorted(by_kind[kind])
        out.append(
            KindTiming(
                kind=kind,
                runs=len(values),
                p50_seconds=_percentile(values, 0.50),
                p95_seconds=_percentile(values, 0.95),
            )
        )
    return out


def _kind_timings_in_sql(*, since: datetime, sample: int) -> list[KindTiming]:
    newest = (
        Job.objects.filter(
            settled_at__gte=since, state=JobState.COMPLETED, started_at__isnull=False
        )
        .order_by("-settled_at")
        .annotate(run=RunSeconds())
        .values("kind", "run")[:sample]
    )
    sql, params = newest.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, COUNT(*), "
            "percentile_disc(0.5) WITHIN GROUP (ORDER BY GREATEST(run, 0)), "
            "percentile_disc(0.95) WITHIN GROUP (ORDER BY GREATEST(run, 0)) "
            f"FROM ({sql}) AS newest GROUP BY kind ORDER BY kind",
            params,
        )
        return [
            KindTiming(kind=kind, runs=runs, p50_seconds=p50, p95_seconds=p95)
            for kind, runs, p50, p95 in cursor.fetchall()
        ]
