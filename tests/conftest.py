"""Fixtures shared by the whole suite."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import django_rq
import pytest

from jobs.pause import PAUSED_QUEUES_KEY

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True)
def _no_paused_queue_outlives_its_test():
    """A queue paused by a test (a Redis flag) must not hold the next test's jobs."""
    yield
    with contextlib.suppress(Exception):
        django_rq.get_connection("bundle-recompute").delete(PAUSED_QUEUES_KEY)


@pytest.fixture
def redis_conn():
    """The suite's real Redis, emptied before and after the test."""
    conn = django_rq.get_connection("bundle-recompute")
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def start_worker(redis_conn):
    """Start real ``manage.py run_worker`` subprocesses; all are stopped after the test."""
    from tests.support import WorkerProcess

    started: list[WorkerProcess] = []

    def start(*args: str) -> WorkerProcess:
        proc = WorkerProcess(*args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def chromium():
    """The system's headless Chromium through Playwright's sync API, one per test session.

    No skipping: without /usr/bin/chromium the browser tests fail (CI installs it).
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install it (apt-get install -y chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps are plain synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _default_schedules(request):
    """The settings' schedules as rows, as the data migration leaves them: a transactional
    test's flush empties every table, migration data included, so put them back per test."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None and not {"db", "transactional_db"} & set(request.fixturenames):
        return
    request.getfixturevalue("db")
    from jobs.scheduling.store import schedules_load_defaults

    schedules_load_defaults()
