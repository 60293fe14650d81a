"""The overview strip: every queue's counts, latency, workers and pause, the scheduler and the
stale jobs, in a handful of queries and Redis calls."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from jobs.pause import pauses
from jobs.scheduling.status import scheduler_status
from jobs.selectors.latency import queue_latency
from jobs.selectors.queues import pause_author, queue_counts
from jobs.selectors.staleness import stale_jobs
from jobs.selectors.workers import workers_by_queue


@dataclass(frozen=True)
class QueueOverview:
    name: str
    waiting: int  # pending + retrying
    running: int
    failed: int  # failed for good, any age (each one is something to look at)
    completed_24h: int
    workers: int | None  # None: Redis could not be asked
    paused: bool = False
    paused_by: str = ""  # who paused it ("" for the system or a deleted user)
    paused_at: datetime | None = None
    oldest_waiting_seconds: float | None = None  # age of the oldest pending job (None: none)
    completed_per_minute: float = 0.0  # over the last 15 minutes
    failed_per_minute: float = 0.0


@dataclass(frozen=True)
class SystemHealth:
    queues: list[QueueOverview]
    workers_total: int | None
    scheduler_alive: bool | None
    stale_jobs: int  # at most STALE_COUNT_CAP + 1 (then: "more than STALE_COUNT_CAP")
    redis_ok: bool
    since: datetime = field(default_factory=timezone.now)
    scheduler_seen: datetime | None = None  # the active scheduler's last heartbeat

    @property
    def stale_jobs_capped(self) -> bool:
        return self.stale_jobs > STALE_COUNT_CAP


# The strip counts stale jobs up to this many and then says "more than" (a bounded scan).
STALE_COUNT_CAP = 1000


def system_health(*, now: datetime | None = None, settled: Counter | None = None) -> SystemHealth:
    """Everything the overview strip shows, in a handful of queries and Redis calls."""
    now = now or timezone.now()
    counts = queue_counts(now=now, settled=settled)
    workers = workers_by_queue()
    status = scheduler_status()
    paused = pauses()
    latency = queue_latency(now=now)
    queues = [
        QueueOverview(
            name=name,
            workers=None if workers is None else workers.get(name, 0),
            paused=name in paused,
            paused_by=pause_author(paused.get(name)),
            paused_at=paused[name].paused_at if name in paused else None,
            **latency.get(name, {}),
            **c,
        )
        for name, c in counts.items()
    ]
    return SystemHealth(
        queues=queues,
        workers_total=None if workers is None else workers.get("*", 0),
        scheduler_alive=status.alive,
        scheduler_seen=status.last_seen,
        stale_jobs=stale_jobs(now=now).order_by()[: STALE_COUNT_CAP + 1].count(),
        redis_ok=workers is not None,
        since=now - timedelta(hours=24),
    )
