"""Fixtures for the jobs tests: test kinds, burst workers, worker subprocesses."""

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
import pytest
from django.conf import settings

import tests.jobs.kinds  # noqa: F401 - registers the test job kinds
from jobs.worker import JobsSimpleWorker

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], object], timeout: float = 20.0, interval: float = 0.1):
    """Poll ``condition`` until it returns something truthy; fail with a clear message."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


def child_pids(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent:
            found.append(int(entry.name))
    return found


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


def worker_database_url() -> str:
    """DATABASE_URL of the test database this run set up (SQLite file or PostgreSQL)."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{db['NAME']}"


class WorkerProcess:
    """A real `manage.py run_worker` subprocess on the test database and Redis."""

    def __init__(self, *extra: str) -> None:
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "config.settings"
        # The worker must open the test database, not the development one.
        env["DATABASE_URL"] = worker_database_url()
        env.setdefault("SECRET_KEY", "test-suite-key-not-a-secret")
        self.log = open(ROOT / "var" / f"test-worker-{uuid.uuid4().hex[:8]}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "run_worker",
                "--import",
                "tests.jobs.kinds",
                *extra,
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def children(self) -> list[int]:
        """Pids of the worker's child processes (its work horse, RQ's scheduler)."""
        return child_pids(self.proc.pid)

    def stop(self) -> None:
        # The horse sits in a process group of its own: kill the children by pid too.
        for pid in self.children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


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
