"""Real headless Chromium (the system's, via Playwright's sync API) against pytest-django's
live server, with real RQ worker subprocesses on the suite's Redis.

No skipping: without /usr/bin/chromium these tests fail (CI installs it; see .ci/run).
"""

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

import pytest
from django.conf import settings

import tests.jobs.kinds  # noqa: F401 - the test job kinds (flaky, slow, noop) in this process too

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "browser-test-password"


def wait_until(condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db.get("USER") or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{db['NAME']}"


class Worker:
    """``manage.py run_worker`` (all job queues, RQ's scheduler) as a subprocess on the test DB."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DATABASE_URL=_database_url(),
            LOG_LEVEL="WARNING",
        )
        env.setdefault("SECRET_KEY", "test-suite-key-not-a-secret")
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.log_path = ROOT / "var" / f"test-browser-worker-{uuid.uuid4().hex[:8]}.log"
        self.log = open(self.log_path, "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "run_worker",
                "--import",
                "tests.jobs.kinds",
                "--logging-level",
                "WARNING",
            ],
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


@pytest.fixture
def start_worker(redis_conn):
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install it (apt-get install -y chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are plain synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def admin_user(transactional_db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("operator", "operator@example.com", PASSWORD)


@pytest.fixture
def page(chromium, live_server, admin_user):
    """A logged-in admin tab (light colour scheme)."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, color_scheme="light")
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.goto(f"{live_server.url}/admin/login/")
    tab.fill("#id_username", "operator")
    tab.fill("#id_password", PASSWORD)
    tab.click("input[type=submit]")
    tab.wait_for_selector("#site-name")
    yield tab
    context.close()


@pytest.fixture
def dark_page(chromium, live_server, page):
    """A second tab with the same session, in dark mode."""
    context = chromium.new_context(
        viewport={"width": 1400, "height": 900},
        color_scheme="dark",
        storage_state=page.context.storage_state(),
    )
    tab = context.new_page()
    yield tab
    context.close()


def screenshot(tab, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    tab.screenshot(path=str(path), full_page=True)
    return path
