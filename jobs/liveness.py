"""Is the worker behind a running row still alive? One rule for reconcile and the stale badge.

RQ's worker key outlives its worker by a minute or more (it expires ``worker_ttl + 60`` s after
the last heartbeat), so its mere presence says little. Its ``last_heartbeat`` field says more: a
worker busy with a job heartbeats every ``job_monitoring_interval`` (10 s for
``jobs.worker.JobsWorker``). A row is judged orphaned when its worker is gone *or* silent for
``JOBS_WORKER_SILENT_AFTER`` seconds, *and* the row's own heartbeat (written from inside the work
horse) is that old too: both the worker process and its horse have stopped reporting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from rq.worker import Worker

from jobs import conf
from jobs.models import Job, JobState

# ``rq_job_id`` prefix of a run in this process (``run_inline``), not through RQ.
INLINE_PREFIX = "inline-"
# ``rq_job_id`` prefix of a parent that waits for its children holding no worker (batches).
AWAITING_PREFIX = "children-"


@dataclass(frozen=True)
class WorkerSeen:
    """RQ's registry of live workers at one moment: name -> last heartbeat (aware, UTC)."""

    heartbeats: dict[str, datetime | None]

    def silent_for(self, name: str, *, now: datetime) -> float | None:
        """Seconds since worker ``name`` last reported; None when RQ no longer lists it."""
        if name not in self.heartbeats:
            return None
        beat = self.heartbeats[name]
        return (now - beat).total_seconds() if beat else 0.0


def workers_seen(connection: Redis) -> WorkerSeen:
    """One pass over RQ's worker registry (one SMEMBERS and one pipelined HGETALL per worker)."""
    return WorkerSeen({w.name: w.last_heartbeat for w in Worker.all(connection=connection)})


def is_inline(row: Job) -> bool:
    return (row.rq_job_id or "").startswith(INLINE_PREFIX)


def is_awaiting_children(row: Job) -> bool:
    """A parent whose handler returned to wait for its children: no worker, no heartbeat."""
    return row.state == JobState.RUNNING and (row.rq_job_id or "").startswith(AWAITING_PREFIX)


def last_sign(row: Job) -> datetime:
    return row.heartbeat_at or row.started_at or row.created_at


def worker_death(row: Job, seen: WorkerSeen, *, now: datetime) -> str | None:
    """Why ``row``'s RQ worker is dead, or None if it may be alive (or the rule does not apply)."""
    if row.state != JobState.RUNNING or not row.worker_name or not row.rq_job_id:
        return None
    if is_inline(row) or is_awaiting_children(row):
        return None
    limit = conf.worker_silent_after()
    row_silent = (now - last_sign(row)).total_seconds()
    if row_silent <= limit:
        return None
    worker_silent = seen.silent_for(row.worker_name, now=now)
    if worker_silent is None:
        return (
            f"Worker died: worker {row.worker_name} is gone from RQ's registry and the job has "
            f"not reported for {int(row_silent)}s"
        )
    if worker_silent > limit:
        return (
            f"Worker died: worker {row.worker_name} has not sent RQ a heartbeat for "
            f"{int(worker_silent)}s and the job has not reported for {int(row_silent)}s"
        )
    return None
