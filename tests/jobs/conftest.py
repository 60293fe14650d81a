"""Fixtures for the jobs tests: test kinds, burst workers, worker subprocesses."""

from __future__ import annotations

import uuid
from pathlib import Path

import django_rq
import pytest
from django.conf import settings

import tests.jobs.kinds  # noqa: F401 - registers the test job kinds
from jobs.worker import JobsSimpleWorker
from tests import support
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


class WorkerProcess(support.WorkerProcess):
    """A real ``manage.py run_worker`` subprocess that also knows the test job kinds."""

    def __init__(self, *extra: str) -> None:
        super().__init__("--import", "tests.jobs.kinds", *extra)


@pytest.fixture
def worker_process(redis_conn):
    """Start worker subprocesses; all are killed at the end of the test."""
    started: list[WorkerProcess] = []

    def start(*extra: str) -> WorkerProcess:
        proc = WorkerProcess(*extra)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
