"""Helpers shared by the whole suite: waiting, worker subprocesses, the test database URL."""

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
from urllib.parse import quote

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def wait_until(condition: Callable[[], object], timeout: float = 60.0, interval: float = 0.05):
    """Poll ``condition`` until it returns something truthy; fail with a clear message.

    The generous default only costs time when something is broken; a loaded 2-core CI machine
    can take tens of seconds to start a worker subprocess.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


def child_pids(parent: int) -> list[int]:
    """Pids of the direct children of ``parent`` (a worker's work horse, say)."""
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


def test_database_url() -> str:
    """A DATABASE_URL for the database this test run uses (SQLite file or PostgreSQL)."""
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    if connection.vendor == "postgresql":
        auth = quote(params["USER"] or "", safe="")
        if params.get("PASSWORD"):
            auth += ":" + quote(params["PASSWORD"], safe="")
        host = params.get("HOST") or "localhost"
        port = f":{params['PORT']}" if params.get("PORT") else ""
        return f"postgres://{auth}@{host}{port}/{params['NAME']}"
    raise NotImplementedError(f"no worker subprocess support for {connection.vendor}")


test_database_url.__test__ = False  # not a test, despite its name


class WorkerProcess:
    """A real ``manage.py run_worker`` subprocess on the test database and the suite's Redis."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "config.settings"
        # The worker must open the test database, not the development one.
        env["DATABASE_URL"] = test_database_url()
        env.setdefault("SECRET_KEY", "test-suite-key-not-a-secret")
        env.setdefault("LOG_LEVEL", "WARNING")
        # Set by the browser tests for Playwright's event loop; a worker has no business with it.
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        (ROOT / "var").mkdir(exist_ok=True)
        self.log_path = ROOT / "var" / f"test-worker-{uuid.uuid4().hex[:8]}.log"
        self.log = open(self.log_path, "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, str(ROOT / "manage.py"), "run_worker", *args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        """Pids of the worker's child processes (its work horse, RQ's scheduler)."""
        return child_pids(self.proc.pid)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

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
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()


def link_main_targets() -> int:
    """Give ledger rows a test wrote by hand (``Job.objects.create`` / ``bulk_create``, not
    ``enqueue``) the link row ``enqueue`` writes for a main target, as the migration does for
    old rows. Returns how many links were added."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO jobs_jobtarget (job_id, target_type, target_id, label) "
            "SELECT j.id, j.target_type, j.target_id, j.target_label FROM jobs_job j "
            "WHERE j.target_type <> '' AND j.target_id <> '' AND NOT EXISTS ("
            "SELECT 1 FROM jobs_jobtarget t WHERE t.job_id = j.id "
            "AND t.target_type = j.target_type AND t.target_id = j.target_id)"
        )
        return cursor.rowcount


def grant(user, *permissions: str):
    """Give ``user`` these ``app.codename`` permissions (the job services check them)."""
    from django.contrib.auth.models import Permission

    for perm in permissions:
        app_label, codename = perm.split(".", 1)
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    # Django caches permissions on the instance: a fresh copy sees the new ones.
    return type(user).objects.get(pk=user.pk)


@contextlib.contextmanager
def schedules_from(items: list[dict]):
    """Make the Schedule table hold exactly ``items`` (JOBS_SCHEDULES-style dicts), as an
    operator editing System → Schedules would: rows missing from ``items`` are deleted."""
    from jobs.models import Schedule
    from jobs.scheduling.defaults import default_fields

    names = [item["id"] for item in items]
    Schedule.objects.exclude(name__in=names).delete()
    for item in items:
        fields = default_fields(item)
        Schedule.objects.update_or_create(name=fields.pop("name"), defaults=fields)
    yield
