"""Fixtures shared by the whole suite."""

from __future__ import annotations

import django_rq
import pytest


@pytest.fixture
def redis_conn():
    """The suite's real Redis, emptied before and after the test."""
    conn = django_rq.get_connection("bundle-recompute")
    conn.flushdb()
    yield conn
    conn.flushdb()
