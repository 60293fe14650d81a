"""Helpers for the bundle job tests: real RQ workers on the suite's Redis, ledger queries."""

from __future__ import annotations

from pathlib import Path

import django_rq
from django.conf import settings
from django.db import connections

from jobs.models import Job
from jobs.worker import JobsSimpleWorker
from tests.support import wait_until  # noqa: F401 - re-exported for the tests

ROOT = Path(__file__).resolve().parents[2]


def run_burst_worker() -> None:
    """An in-process RQ worker (the project's worker class) that runs until the queues are empty."""
    queues = [django_rq.get_queue(q) for q in settings.JOB_QUEUES]
    JobsSimpleWorker(queues, connection=queues[0].connection).work(
        burst=True, logging_level="WARNING"
    )


def rq_queued(queue: str | None = None) -> int:
    """Jobs waiting in RQ (one queue or all four)."""
    names = [queue] if queue else list(settings.JOB_QUEUES)
    return sum(django_rq.get_queue(name).count for name in names)


def jobs(kind: str, **filters):
    return Job.objects.filter(kind=kind, **filters).order_by("created_at")


def close_thread_connections() -> None:
    """Background threads open their own DB connections: close them before the thread ends."""
    connections.close_all()
