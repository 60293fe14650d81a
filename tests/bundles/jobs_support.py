"""Helpers for the bundle job tests: real RQ workers on the suite's Redis, ledger queries."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import django_rq
from django.conf import settings
from django.db import connections
from rq.scheduler import RQScheduler

from jobs.models import Job
from jobs.worker import JobsSimpleWorker
from tests.support import wait_until  # noqa: F401 - re-exported for the tests

ROOT = Path(__file__).resolve().parents[2]


def run_burst_worker(*, retries_within: float = 30.0) -> None:
    """An in-process RQ worker (the project's worker class) that runs until the queues are empty,
    and delivers the retries that fall due within ``retries_within`` seconds (RQ's scheduler,
    which a burst worker does not run, would), until none are left."""
    queues = [django_rq.get_queue(q) for q in settings.JOB_QUEUES]
    connection = queues[0].connection
    deadline = time.monotonic() + retries_within
    while True:
        JobsSimpleWorker(queues, connection=connection).work(burst=True, logging_level="WARNING")
        due = [
            q.scheduled_job_registry.get_scheduled_time(job_id)
            for q in queues
            for job_id in q.scheduled_job_registry.get_job_ids()
        ]
        if not due or time.monotonic() > deadline:
            return
        # Wait for the earliest retry's time (its backoff is what the test runs into), then let
        # RQ's own scheduler code move the due ones to their queues.
        earliest = min(due)
        wait_until(lambda e=earliest: datetime.now(UTC) >= e, timeout=retries_within)
        scheduler = RQScheduler([q.name for q in queues], connection=connection)
        scheduler.prepare_registries([q.name for q in queues])
        scheduler.enqueue_scheduled_jobs()


def rq_queued(queue: str | None = None) -> int:
    """Jobs waiting in RQ (one queue or all four)."""
    names = [queue] if queue else list(settings.JOB_QUEUES)
    return sum(django_rq.get_queue(name).count for name in names)


def jobs(kind: str, **filters):
    return Job.objects.filter(kind=kind, **filters).order_by("created_at")


def close_thread_connections() -> None:
    """Background threads open their own DB connections: close them before the thread ends."""
    connections.close_all()
