"""A job kind for the superseded-attempt tests (imported by them and, with ``run_worker
--import``, by worker subprocesses)."""

from __future__ import annotations

import os
import time

import django_rq
from django.conf import settings

from jobs.registry import job_kind

QUEUE = "bundle-recompute"


@job_kind("test_silent", queue=QUEUE, max_attempts=2, backoff=(0,), timeout=120)
def silent(ctx, *, token: str, seconds: float = 40.0) -> dict:
    """Works without ever reporting progress; its heartbeat comes every 0.2 s."""
    from jobs.runner import JobHeartbeats

    settings.JOBS_HEARTBEAT_INTERVAL = 0.2  # this process only (a work horse)
    JobHeartbeats.get().watch(ctx)  # due again at the new interval
    conn = django_rq.get_connection(QUEUE)
    conn.set(f"test:pid:{token}", os.getpid())
    time.sleep(seconds)
    conn.set(f"test:finished:{token}", 1)
    return {"slept": seconds}
