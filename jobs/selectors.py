"""Read-side queries over the job ledger and RQ, for the admin and GraphQL.

Plain functions with keyword-only arguments and typed returns. They never write. Everything
that asks Redis survives Redis being down (it reports "unknown" rather than raising), so the
admin still shows the ledger during an outage.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import (
    Avg,
    Count,
    Exists,
    F,
    FloatField,
    Func,
    Min,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.functions import Coalesce, TruncMinute
from django.utils import timezone
from redis import Redis
from rq.worker import Worker

from jobs import conf
from jobs.errors import JobNotFound
from jobs.liveness import AWAITING_PREFIX, WorkerSeen, is_awaiting_children, worker_death
from jobs.liveness import workers_seen as _workers_seen
from jobs.models import SETTLED_STATES, Job, JobId, JobState, JobTarget
from jobs.pause import pauses
from jobs.redis_client import redis_for
from jobs.rollup import settled_counts
from jobs.scheduler_status import scheduler_status
from jobs.targets import matching_target_ids

logger = logging.getLogger(__name__)

WAITING_STATES = (JobState.PENDING, JobState.RETRYING)


# --- overview -----------------------------------------------------------------------------------


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


def queue_names() -> list[str]:
    """The job queues, in the order the settings declare them."""
    return conf.job_queues()


def queue_counts(
    *, now: datetime | None = None, settled: Counter | None = None
) -> dict[str, dict[str, int]]:
    """Per queue: waiting, running, failed, completed_24h.

    One grouped query answered from the (state, queue, created_at) index alone for the live
    states and failed (COUNT(*) so PostgreSQL can scan the index alone); the last 24 h from the
    hourly rollup (``jobs.rollup``: stored closed hours + the open ones counted live), or from
    ``settled`` (:func:`settled_last_24h`) when the caller has it already.
    """
    now = now or timezone.now()
    empty = {"waiting": 0, "running": 0, "failed": 0, "completed_24h": 0}
    out: dict[str, dict[str, int]] = {q: dict(empty) for q in queue_names()}
    live = (
        Job.objects.filter(state__in=(*WAITING_STATES, JobState.RUNNING, JobState.FAILED))
        .order_by()
        .values("queue", "state")
        .annotate(n=Count("*"))
    )
    for row in live:
        counts = out.setdefault(row["queue"], dict(empty))
        if row["state"] in WAITING_STATES:
            counts["waiting"] += row["n"]
        elif row["state"] == JobState.RUNNING:
            counts["running"] += row["n"]
        else:
            counts["failed"] += row["n"]
    if settled is None:
        settled = settled_last_24h(now=now)
    for (_hour, queue, _kind, state), n in settled.items():
        if state == JobState.COMPLETED:
            out.setdefault(queue, dict(empty))["completed_24h"] += n
    return out


def settled_last_24h(*, now: datetime | None = None) -> Counter:
    """Jobs settled in the last 24 hours by (hour, queue, kind, state), from the rollup."""
    now = now or timezone.now()
    return settled_counts(since=now - timedelta(hours=24), now=now)


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


def scheduler_alive() -> bool | None:
    """True if the active scheduler's heartbeat is fresh (None: Redis could not be asked)."""
    return scheduler_status().alive


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


def pause_author(pause: object) -> str:
    """Who paused a queue, for display: a user name, or "" (the system, a deleted user)."""
    user = getattr(pause, "paused_by", None)
    return user.get_username() if user is not None else ""


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


# --- workers ------------------------------------------------------------------------------------

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
                current_since=started.get(rq_id) if rq_id else None,
                last_heartbeat=beat,
                birth=_aware(w.birth_date),
                successful=w.successful_job_count or 0,
                failed=w.failed_job_count or 0,
                dead=dead,
            )
        )
    return sorted(out, key=lambda i: (i.dead, i.name))


# --- latency and throughput ---------------------------------------------------------------------

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

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))::float8",
            arg_joiner=" - ", **extra,
        )  # fmt: skip

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
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


# --- chart --------------------------------------------------------------------------------------


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
    if width >= timedelta(hours=1):
        if settled is None or range_name != "24h":
            settled = settled_counts(since=start, now=now)
        rows: Iterable[tuple[datetime, str, int]] = [
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


# --- lists and search ---------------------------------------------------------------------------


# How many linked jobs a search term may match before the search uses EXISTS instead of ids.
SEARCH_TARGET_JOBS_MAX = 5000


def job_search_q(*, term: str) -> Q:
    """The filter for a search box: job id (full or its first 8 characters), a target (its
    label, or whatever its registered type's search matches, e.g. a bundle's name or SKU),
    dedup key, error text or stage message."""
    term = term.strip()
    q = (
        Q(target_label__icontains=term)
        | Q(dedup_key__icontains=term)
        | Q(errors__icontains=term)
        | Q(progress_message__icontains=term)
    )
    with contextlib.suppress(ValueError):
        q |= Q(pk=uuid.UUID(term))
    hex_part = term.replace("-", "").lower()
    if 4 <= len(hex_part) <= 12 and all(c in "0123456789abcdef" for c in hex_part):
        # The list shows the first 8 characters of the id: let people paste those. A range on
        # the primary key (not LIKE on its text) so PostgreSQL answers it from the index.
        low, high = _id_prefix_range(hex_part)
        q |= Q(pk__gte=low, pk__lte=high)
    for target_type, ids in matching_target_ids(term).items():
        links = JobTarget.objects.filter(target_type=target_type, target_id__in=ids)
        # A short id list ORs with the indexed LIKEs above (PostgreSQL bitmap-ORs them); an
        # EXISTS in an OR makes it read every row. Past the cap, EXISTS: slower, still right.
        job_ids = list(links.values_list("job_id", flat=True)[: SEARCH_TARGET_JOBS_MAX + 1])
        if len(job_ids) <= SEARCH_TARGET_JOBS_MAX:
            q |= Q(pk__in=job_ids)
        else:
            q |= Q(Exists(links.filter(job=OuterRef("pk"))))
    return q


# A search matching at most this many jobs is listed by their ids (see job_search_filter).
SEARCH_IDS_MAX = 2000


def job_search_filter(qs: QuerySet[Job], *, term: str) -> QuerySet[Job]:
    """``qs`` narrowed by the search box, fast at any ledger size on PostgreSQL.

    A term that matches few jobs spread over the whole ledger (one bundle's jobs) is the
    planner's trap: it walks the created_at index newest first, expecting a match soon, and
    reads 100,000s of rows. So the matching ids (at most :data:`SEARCH_IDS_MAX`) are fetched
    first, from the trigram and link-table indexes, and those rows are sorted by an expression
    equal to ``created_at`` that its index cannot produce (``ORDER BY created_at + 0``, the
    classic way to keep PostgreSQL off that walk). A term that matches more is dense enough
    for the newest-first walk to find a page quickly. ``qs``' ordering is kept.
    """
    q = job_search_q(term=term)
    ids = list(qs.filter(q).order_by().values_list("pk", flat=True)[: SEARCH_IDS_MAX + 1])
    if len(ids) > SEARCH_IDS_MAX:
        return qs.filter(q)
    unindexed = {
        "created_at": Coalesce("created_at", "created_at").asc(),
        "-created_at": Coalesce("created_at", "created_at").desc(),
    }
    ordering = [unindexed.get(o, o) if isinstance(o, str) else o for o in qs.query.order_by]
    return qs.filter(pk__in=ids).order_by(*ordering)


def _linked_to(*, target_type: str | None, target_id: str | int | None) -> Exists:
    """Jobs with a link row to the target (or to any target of the type): an index range on
    (target_type, target_id, job) per job, never a scan of the link table."""
    links = JobTarget.objects.filter(job=OuterRef("pk"))
    if target_type:
        links = links.filter(target_type=target_type)
    if target_id is not None and target_id != "":
        links = links.filter(target_id=str(target_id))
    return Exists(links)


def job_list(
    *,
    queue: str | None = None,
    state: str | list[str] | None = None,
    kind: str | None = None,
    trigger: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    search: str | None = None,
    ids: list[JobId] | None = None,
    parent_id: uuid.UUID | None = None,
) -> QuerySet[Job]:
    """Ledger rows matching every given filter, newest first."""
    qs = Job.objects.select_related("requested_by").order_by("-created_at", "-pk")
    if queue:
        qs = qs.filter(queue=queue)
    if state:
        qs = qs.filter(state__in=[state] if isinstance(state, str) else list(state))
    if kind:
        qs = qs.filter(kind=kind)
    if trigger:
        qs = qs.filter(trigger=trigger)
    qs = filter_by_target(qs, target_type=target_type, target_id=target_id)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    if parent_id is not None:
        qs = qs.filter(parent_id=parent_id)
    if search:
        qs = qs.filter(job_search_q(term=search))
    return qs


def filter_by_target(
    qs: QuerySet[Job], *, target_type: str | None, target_id: str | None
) -> QuerySet[Job]:
    """Jobs linked to one target (type and id), or whose main target is of a type."""
    if target_id is not None and target_id != "":
        return qs.filter(_linked_to(target_type=target_type, target_id=target_id))
    if target_type:
        return qs.filter(target_type=target_type)
    return qs


def jobs_for_target(*, target_type: str, target_id: str | int, limit: int = 10) -> list[Job]:
    """The most recent jobs linked to one object (a bundle's page lists these)."""
    return list(
        Job.objects.filter(_linked_to(target_type=target_type, target_id=target_id)).order_by(
            "-created_at"
        )[:limit]
    )


# --- live refresh -------------------------------------------------------------------------------


def last_error_line(job: Job) -> str:
    """First line of the last attempt's error message ("" if it never failed)."""
    if not job.errors:
        return ""
    message = (job.errors[-1] or {}).get("message", "") or ""
    return message.strip().splitlines()[0] if message.strip() else ""


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


def duration_seconds(job: Job, *, now: datetime | None = None) -> float | None:
    """Seconds from start to settle (or to now while it runs); None if it never started."""
    if not job.started_at:
        return None
    end = job.settled_at or now or timezone.now()
    return max(0.0, (end - job.started_at).total_seconds())


# --- one job ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildrenSummary:
    total: int
    by_state: dict[str, int]
    progress: int  # average progress of the children, 0-100
    settled: int


def job_children_summary(*, job_id: uuid.UUID) -> ChildrenSummary:
    """Aggregate progress of a bulk job's children (one grouped query)."""
    rows = (
        Job.objects.filter(parent_id=job_id)
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


# --- single jobs ----------------------------------------------------------------------------------


def parse_job_id(job_id: object) -> uuid.UUID:
    """A job id as UUID, or :class:`JobNotFound` naming the malformed value."""
    if isinstance(job_id, uuid.UUID):
        return job_id
    try:
        return uuid.UUID(str(job_id).strip())
    except (ValueError, AttributeError, TypeError):
        raise JobNotFound(f"{job_id!r} is not a job id (expected a UUID)") from None


HEX = frozenset("0123456789abcdef")


def _id_prefix_range(hex_prefix: str) -> tuple[uuid.UUID, uuid.UUID]:
    return (
        uuid.UUID(hex_prefix.ljust(32, "0")),
        uuid.UUID(hex_prefix.ljust(32, "f")),
    )


def resolve_job_id(value: object) -> uuid.UUID:
    """A full job id, or the first 8+ characters of one as the admin shows them.

    Raises :class:`JobNotFound` for a malformed value, no match, or a prefix several jobs share
    (saying how many).
    """
    text = str(value).strip().lower()
    with contextlib.suppress(ValueError):
        return uuid.UUID(text)
    hex_part = text.replace("-", "")
    if not (8 <= len(hex_part) < 32 and set(hex_part) <= HEX):
        raise JobNotFound(
            f"{value!r} is not a job id (expected a UUID or its first 8 or more characters)"
        )
    low, high = _id_prefix_range(hex_part)
    found = list(Job.objects.filter(pk__gte=low, pk__lte=high).values_list("pk", flat=True)[:2])
    if not found:
        raise JobNotFound(f"No job whose id starts with {text}")
    if len(found) > 1:
        n = Job.objects.filter(pk__gte=low, pk__lte=high).count()
        raise JobNotFound(f"{n} jobs have ids starting with {text}; give more characters")
    return found[0]


def job_get(*, job_id: JobId) -> Job:
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
