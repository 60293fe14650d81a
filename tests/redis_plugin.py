"""pytest plugin: give the suite a real Redis before Django reads its settings.

Loaded with ``-p tests.redis_plugin`` (see pyproject) so it runs before pytest-django sets Django
up: django-rq reads ``RQ_QUEUES`` at import time, so ``REDIS_URL`` must be known by then. With
``REDIS_URL`` already set (CI with its own server, say) that server is used as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_server = None


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    global _server
    # A fixed key for tests only; production refuses to start without SECRET_KEY.
    os.environ.setdefault("SECRET_KEY", "test-suite-key-not-a-secret")
    # Worker subprocesses inherit this, so they open the same SQLite test database.
    var_dir = Path(__file__).resolve().parent.parent / "var"
    var_dir.mkdir(exist_ok=True)
    os.environ.setdefault("TEST_SQLITE_NAME", str(var_dir / f"test-db-{os.getpid()}.sqlite3"))
    if not os.environ.get("REDIS_URL"):
        from config.embedded_redis import start_embedded_redis

        _server = start_embedded_redis()
        os.environ["REDIS_URL"] = _server.url
        os.environ["TEST_EMBEDDED_REDIS_PORT"] = str(_server.port)
    return (yield)


def pytest_unconfigure(config):
    if _server is not None:
        _server.stop()


def embedded_server():
    """The EmbeddedRedis started for this run, or None when REDIS_URL was given."""
    return _server
