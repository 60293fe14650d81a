"""Real headless Chromium (the system's, via Playwright's sync API) against pytest-django's
live server, with real RQ worker subprocesses on the suite's Redis.

No skipping: without /usr/bin/chromium these tests fail (CI installs it; see .ci/run).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

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


# Every violation the page sees, whatever the console says about it.
COLLECT_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@pytest.fixture
def guarded(page, live_server):
    """The logged-in tab, with outside requests refused and CSP reports collected."""
    server = urlsplit(live_server.url)
    outside, problems = [], []

    def route(route):
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", route)
    page.context.add_init_script(COLLECT_VIOLATIONS)
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if "Content Security Policy" in m.text or "Refused to" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # 127.0.0.1 itself, never a name that might resolve elsewhere: log in there (the page
    # fixture's session cookie belongs to the live server's host name).
    base = f"http://127.0.0.1:{server.port}"
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert_no_violation(page)
    yield page, base
    assert outside == [], f"requests left 127.0.0.1: {outside}"
    assert problems == [], problems


def assert_no_violation(tab) -> None:
    assert tab.evaluate("window.__csp") == []
