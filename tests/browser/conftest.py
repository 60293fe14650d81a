"""Real headless Chromium (the system's, via Playwright's sync API) against pytest-django's
live server, with real RQ worker subprocesses on the suite's Redis.

No skipping: without /usr/bin/chromium these tests fail (CI installs it; see .ci/run).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.jobs.kinds  # noqa: F401 - the test job kinds (flaky, slow, noop) in this process too
from tests.support import wait_until  # noqa: F401 - used by the browser tests

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
PASSWORD = "browser-test-password"


@pytest.fixture
def start_worker(start_worker):
    """A worker on all job queues that also knows the test job kinds (flaky, slow, noop)."""
    return lambda: start_worker("--import", "tests.jobs.kinds", "--logging-level", "WARNING")


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
