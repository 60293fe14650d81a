"""What RQ says about the ledger's deliveries, read for relay and reconcile: RQ jobs by id on
each queue's own Redis, their status and failure reason, and the live workers everywhere."""

from __future__ import annotations

import contextlib
from datetime import datetime

import django_rq
from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus

from jobs import conf
from jobs.liveness import WorkerSeen, workers_seen
from jobs.models import Job
from jobs.redis_client import by_server, redis_for

# RQ states in which the runner is certainly no longer executing the delivery.
RQ_DEAD = {
    s.value for s in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED)
}


def rq_status(rq_job: RQJob) -> str:
    """RQ's status of ``rq_job`` as last fetched (no round trip)."""
    status = rq_job.get_status(refresh=False)
    return getattr(status, "value", status) or ""


def maintenance_redis() -> Redis:
    """The Redis of the first job queue (where the maintenance lock and turn keys live)."""
    return django_rq.get_connection(conf.job_queues()[0])


def fetch_rq_jobs(rows: list[Job]) -> dict[str, RQJob | None]:
    """The RQ job of each row's ``rq_job_id``, asked on its queue's own Redis (RQ_QUEUES may
    give a queue a server of its own: asked elsewhere, its jobs would look lost)."""
    found: dict[str, RQJob | None] = {}
    for names in by_server({row.queue for row in rows}).values():
        conn = redis_for(names[0])
        ids = [row.rq_job_id for row in rows if row.queue in names]
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            try:
                rq_jobs = RQJob.fetch_many(chunk, connection=conn)
            except NoSuchJobError:
                # A hash RQ cannot read ("Unexpected job format": Redis lost the job, then a
                # late write put a few fields back, such as RQ's own bookkeeping when a horse
                # finishes) must not stop the whole pass: one by one, and it counts as gone.
                rq_jobs = [_fetch_or_none(rq_id, conn) for rq_id in chunk]
            found.update(zip(chunk, rq_jobs, strict=True))
    return found


def _fetch_or_none(rq_id: str, conn) -> RQJob | None:
    try:
        return RQJob.fetch(rq_id, connection=conn)
    except NoSuchJobError:
        return None


def workers_seen_everywhere() -> WorkerSeen:
    """RQ's live workers on every job queue's Redis (a queue may have a server of its own)."""
    heartbeats: dict = {}
    for names in by_server(conf.job_queues()).values():
        heartbeats.update(workers_seen(redis_for(names[0])).heartbeats)
    return WorkerSeen(heartbeats)


def rq_failure(rq_job: RQJob) -> str:
    """The last line of RQ's failure text for ``rq_job`` (its reason), or ""."""
    with contextlib.suppress(Exception):
        latest = rq_job.latest_result()
        lines = (getattr(latest, "exc_string", "") or "").strip().splitlines()
        return lines[-1].strip() if lines else ""
    return ""


def started_by_dead_worker(rq_job: RQJob, seen: WorkerSeen, *, now: datetime) -> bool:
    """Did a worker that is gone (or silent) take this delivery?"""
    name = rq_job.worker_name
    if not name:
        return False
    silent = seen.silent_for(name, now=now)
    return silent is None or silent > conf.worker_silent_after()
