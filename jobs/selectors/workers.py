"""RQ's workers as Redis has them: per queue, one by one for the workers page, and the liveness
snapshot the stale badges read (cached). Each survives Redis being down (None: unknown)."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from redis import Redis
from rq.worker import Worker

from jobs.liveness import WorkerSeen
from jobs.liveness import workers_seen as _workers_seen
from jobs.models import Job
from jobs.redis_client import redis_for
from jobs.selectors.queues import queue_names

logger = logging.getLogger(__name__)


def _redis() -> Redis:
    return redis_for(queue_names()[0])


def workers_by_queue() -> dict[str, int] | None:
    """Live RQ workers listening to each queue (from ``Worker.all``); None if Redis is down."""
    try:
        workers = Worker.all(connection=_redis())
    except Exception:
        logger.warning("Could not list RQ workers", exc_info=True)
        return None
    out: dict[str, int] = defaultdict(int)
    for worker in workers:
        for name in worker.queue_names():
            out[name] += 1
    out["*"] = len(workers)
    return dict(out)


# An RQ worker heartbeats at least every (worker_ttl - 15) s while idle and every job-monitoring
# interval while busy (jobs/worker.py: 20 s and 10 s); past this it is shown dead.
WORKER_DEAD_AFTER_SECONDS = 25


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    hostname: str
    pid: int | None
    queues: list[str]
    state: str  # RQ's: idle, busy, suspended...; "dead" when it stopped heartbeating
    current_rq_job_id: str | None
    current_job_id: str | None  # the ledger job it runs
    current_since: datetime | None
    last_heartbeat: datetime | None
    birth: datetime | None
    successful: int
    failed: int
    dead: bool


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value, timezone.get_fixed_timezone(0))
    return value


def workers(*, now: datetime | None = None) -> list[WorkerInfo] | None:
    """Every RQ worker registered in Redis (dead ones until their key expires), by name.

    One pipeline-free pass over RQ's worker hashes: a few Redis calls per worker, no SQL but one
    query for the ledger ids of the jobs they run. None when Redis cannot be asked.
    """
    now = now or timezone.now()
    try:
        found = Worker.all(connection=_redis())
    except Exception:
        logger.warning("Could not list RQ workers", exc_info=True)
        return None
    rows = []
    for w in found:
        beat = _aware(w.last_heartbeat)
        dead = beat is None or (now - beat).total_seconds() > WORKER_DEAD_AFTER_SECONDS
        rq_id = w.get_current_job_id()
        rows.append((w, beat, dead, rq_id))
    rq_ids = [r[3] for r in rows if r[3]]
    ledger = dict(
        Job.objects.filter(rq_job_id__in=rq_ids).values_list("rq_job_id", "pk") if rq_ids else []
    )
    started = dict(
        Job.objects.filter(rq_job_id__in=rq_ids).values_list("rq_job_id", "started_at")
        if rq_ids
        else []
    )
    out = []
    for w, beat, dead, rq_id in rows:
        out.append(
            WorkerInfo(
                name=w.name,
                hostname=w.hostname or "",
                pid=w.pid,
                queues=w.queue_names(),
                state="dead" if dead else str(w.get_state()),
                current_rq_job_id=rq_id,
                current_job_id=str(ledger[rq_id]) if rq_id in ledger else None,
                current_since=started.get(rq_id) if rq_id is not None else None,
                last_heartbeat=beat,
                birth=_aware(w.birth_date),
                successful=w.successful_job_count or 0,
                failed=w.failed_job_count or 0,
                dead=dead,
            )
        )
    return sorted(out, key=lambda i: (i.dead, i.name))


# RQ's worker registry, read at most once per this many seconds for the list's stale badges.
_WORKERS_SEEN_TTL = 2.0
_workers_seen_cache: tuple[float, WorkerSeen | None] = (0.0, None)


def workers_seen_recently() -> WorkerSeen | None:
    """RQ's live workers and their heartbeats (cached 2 s: one Redis round trip per page); None
    when Redis cannot be asked."""
    global _workers_seen_cache
    at, seen = _workers_seen_cache
    if time.monotonic() - at > _WORKERS_SEEN_TTL:
        try:
            seen = _workers_seen(_redis())
        except Exception:
            logger.warning("Could not ask Redis about workers", exc_info=True)
            seen = None
        _workers_seen_cache = (time.monotonic(), seen)
    return seen
