"""Helpers for the bundle job tests: real RQ workers on the suite's Redis, ledger queries."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import django_rq
from django.conf import settings
from django.db import connections

from jobs.models import Job
from jobs.worker import JobsSimpleWorker

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.05):
    """Poll ``condition`` until it returns something truthy; fail with a clear message."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition.__name__}")
        time.sleep(interval)


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


class WorkerProcess:
    """A real ``manage.py run_worker`` subprocess on the test database and Redis."""

    def __init__(self, *extra: str) -> None:
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "config.settings"
        env["DATABASE_URL"] = f"sqlite:///{settings.DATABASES['default']['NAME']}"
        env.setdefault("SECRET_KEY", "test-suite-key-not-a-secret")
        env["LOG_LEVEL"] = "WARNING"
        self.log_path = ROOT / "var" / f"test-bundle-worker-{uuid.uuid4().hex[:8]}.log"
        self.log = open(self.log_path, "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_worker", *extra],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()
