"""Fixtures shared by the whole suite."""

from __future__ import annotations

import ast
import contextlib
import inspect
import os
import re
import textwrap
from functools import cache
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


# --- Markers given at collection: `./bin/test -m "not slow"` is the fast subset -----------------
#
# Nobody has to remember a marker: a test is `slow` when it lives in a directory of slow tests,
# uses a fixture that starts a real process (a worker, Chromium, a live server), or its code —
# its own body, its fixtures' bodies, or a helper of its module they call — starts a process;
# plus the few measured CPU-heavy tests named in SLOW_BY_NAME.

TESTS_DIR = Path(__file__).resolve().parent
# Directories whose every test is slow, with the marker that also says why.
SLOW_DIRECTORIES = {"browser": "browser", "e2e": "e2e"}
# Fixtures that start something real, however they are reached (by name, in the fixture closure).
PROCESS_FIXTURES = {"start_worker", "worker_process", "chromium", "live_server"}
# Tests that start no process but take many seconds of CPU (catalog-sized data through in-process
# workers; a query count over a large page), by name so that they stay marked when their file
# moves. Measured with `./bin/test --durations=60` on 2 shared cores: each over 5 s.
# tests/test_developing.py checks that every name still exists.
SLOW_BY_NAME = {
    "test_a_feed_bigger_than_one_fanout_reaches_every_bundle_through_workers",  # ~50 s
    "test_a_feed_bigger_than_one_fanout_runs_every_fanout_with_sync",  # ~50 s
    "test_list_queries_do_not_grow_with_rows_shown",  # ~27 s
    "test_retrying_a_failed_bulk_parent_runs_its_failed_and_cancelled_batches_again",  # ~11 s
    "test_bulk_without_continue_on_error_stops_at_the_failed_batch",  # ~7 s
}
# Code that starts a process: a subprocess, a fork, Playwright, the suite's worker helper.
PROCESS_CODE = re.compile(
    r"\bsubprocess\.|\bPopen\(|\bos\.fork\(|\bmultiprocessing\b|\bsync_playwright\b"
    r"|\bWorkerProcess\("
)


def _source(obj: object) -> str:
    try:
        return textwrap.dedent(inspect.getsource(obj))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return ""


@cache
def _process_helpers(module_path: str) -> frozenset[str]:
    """Names of the module's top-level functions and classes that start a process, directly or
    through another such helper of the same module (to a fixed point)."""
    try:
        tree = ast.parse(Path(module_path).read_text())
    except (OSError, SyntaxError):
        return frozenset()
    lines = Path(module_path).read_text().splitlines()
    bodies = {
        node.name: "\n".join(lines[node.lineno - 1 : node.end_lineno])
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    found = {name for name, body in bodies.items() if PROCESS_CODE.search(body)}
    while True:
        more = {
            name
            for name, body in bodies.items()
            if name not in found and any(re.search(rf"\b{re.escape(f)}\b", body) for f in found)
        }
        if not more:
            return frozenset(found)
        found |= more


def _starts_a_process(code: str, module_path: str) -> bool:
    if PROCESS_CODE.search(code):
        return True
    return any(re.search(rf"\b{re.escape(name)}\(", code) for name in _process_helpers(module_path))


def _is_slow(item: pytest.Item) -> bool:
    if getattr(item, "originalname", item.name) in SLOW_BY_NAME:
        return True
    if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    function = getattr(item, "function", None)
    if function is None:
        return False
    codes = [(_source(function), str(item.path))]
    fixture_info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        for fixturedef in fixture_info.name2fixturedefs.get(name, ()) if fixture_info else ():
            func = getattr(fixturedef, "func", None)
            module = inspect.getsourcefile(func) if func is not None else None
            # Only this suite's fixtures: plugins' fixtures (pytest-django's db) start nothing.
            if module and Path(module).is_relative_to(TESTS_DIR):
                codes.append((_source(func), module))
    return any(_starts_a_process(code, module) for code, module in codes)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        inside = item.path.is_relative_to(TESTS_DIR)
        parts = item.path.relative_to(TESTS_DIR).parts if inside else ()
        directory_marker = SLOW_DIRECTORIES.get(parts[0]) if len(parts) > 1 else None
        if directory_marker:
            item.add_marker(directory_marker)
        if directory_marker or _is_slow(item):
            item.add_marker("slow")


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
