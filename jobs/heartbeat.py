"""The scheduler's heartbeat: the loop writes the time each cycle, ``/health/`` reads its age.

Kept in Redis under one key with a TTL, so a scheduler that stopped beating disappears on its
own; an emptied Redis gets the key back within one cycle.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC

from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from jobs.cron import next_run

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "jobs:scheduler:heartbeat"
# Long enough to tell "old" from "gone"; /health/ judges the age against its own threshold.
HEARTBEAT_TTL = 3600


def write_heartbeat(connection) -> None:
    """Record that a scheduler loop is alive now. Never raises for Redis trouble."""
    try:
        connection.set(HEARTBEAT_KEY, f"{time.time():.3f}", ex=HEARTBEAT_TTL)
    except RedisError:
        logger.debug("Could not write the scheduler heartbeat", exc_info=True)


def heartbeat_age(connection) -> float | None:
    """Seconds since a scheduler loop last beat; None if none ever did (or it expired)."""
    value = connection.get(HEARTBEAT_KEY)
    if value is None:
        return None
    return max(0.0, time.time() - float(value))


class HeartbeatScheduler(Scheduler):
    """rq-scheduler's Scheduler, whose loop also writes our heartbeat every cycle, stamps each
    schedule's RQ job with the cron time it fires for, and reads cron lines in the schedule's
    time zone (rq-scheduler knows only UTC or the machine's local time)."""

    def heartbeat(self) -> None:
        super().heartbeat()
        write_heartbeat(self.connection)

    def enqueue_jobs(self):
        jobs = self.get_jobs_to_queue(with_times=True)
        for job, at in jobs:
            if job.meta.get("schedule_id"):
                # ``at`` is the entry's score as naive UTC: the fire time, however late we are.
                job.meta["fire_at"] = at.replace(tzinfo=UTC).isoformat()
            self.enqueue_job(job)
        return [job for job, _ in jobs]

    def enqueue_job(self, job) -> None:
        super().enqueue_job(job)
        cron_string, tz = job.meta.get("cron_string"), job.meta.get("timezone")
        if job.meta.get("schedule_id") and cron_string and tz:
            due = next_run(cron_string, tz=tz)
            self.connection.zadd(self.scheduled_jobs_key, {job.id: due.timestamp()})
