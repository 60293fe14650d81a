"""The rq-scheduler ``Scheduler`` we run, and where it lives (its queue, its interval)."""

from __future__ import annotations

from datetime import UTC

import django_rq
from rq.job import Job as RQJob
from rq_scheduler import Scheduler

from jobs.scheduling.cron import next_run
from jobs.scheduling.scheduler_heartbeat import write_heartbeat

# rq-scheduler's own home queue; each entry is queued on its kind's queue (see sync).
SCHEDULE_QUEUE = "default"
# How often the scheduler process looks for due entries (rq-scheduler's default is 60 s).
SCHEDULER_INTERVAL = 10


class HeartbeatScheduler(Scheduler):
    """rq-scheduler's Scheduler, whose loop also writes our heartbeat every cycle, stamps each
    schedule's RQ job with the cron time it fires for, and reads cron lines in the schedule's
    time zone (rq-scheduler knows only UTC or the machine's local time)."""

    def heartbeat(self) -> None:
        super().heartbeat()
        write_heartbeat(self.connection)

    def enqueue_jobs(self) -> list[RQJob]:
        jobs = self.get_jobs_to_queue(with_times=True)
        for job, at in jobs:
            if job.meta.get("schedule_id"):
                # ``at`` is the entry's score as naive UTC: the fire time, however late we are.
                job.meta["fire_at"] = at.replace(tzinfo=UTC).isoformat()
            self.enqueue_job(job)
        return [job for job, _ in jobs]

    def enqueue_job(self, job: RQJob) -> None:
        super().enqueue_job(job)
        cron_string, tz = job.meta.get("cron_string"), job.meta.get("timezone")
        if job.meta.get("schedule_id") and cron_string and tz:
            due = next_run(cron_string, tz=tz)
            self.connection.zadd(self.scheduled_jobs_key, {job.id: due.timestamp()})


def get_scheduler(interval: int = SCHEDULER_INTERVAL) -> HeartbeatScheduler:
    return HeartbeatScheduler(
        queue_name=SCHEDULE_QUEUE,
        connection=django_rq.get_connection(SCHEDULE_QUEUE),
        interval=interval,
    )
