"""Fixtures for the jobs tests: test kinds, burst workers, worker subprocesses."""

from __future__ import annotations

import uuid
from pathlib import Path

import django_rq
import pytest
from django.conf import settings

import tests.jobs.kinds  # noqa: F401 - registers the test job kinds
from jobs.worker import JobsSimpleWorker
from tests.support import child_pids, wait_until  # noqa: F401 - used by the tests

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def token() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def run_burst(redis_conn):
    """Run an in-process burst worker over the job queues until they are empty."""

    def run(queues=None) -> None:
        names = queues or [*settings.JOB_QUEUES, "default"]
        rq_queues = [django_rq.get_queue(q) for q in names]
        JobsSimpleWorker(rq_queues, connection=redis_conn).work(burst=True, logging_level="WARNING")

    return run


@pytest.fixture
def worker_process(start_worker):
    """Start worker subprocesses that also know the test job kinds."""
    return lambda *extra: start_worker("--import", "tests.jobs.kinds", *extra)
