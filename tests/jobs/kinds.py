"""Job kinds for the jobs tests only, so they don't depend on the bundle handlers.

Imported by tests/jobs/conftest.py in the test process and with ``run_worker --import`` in
worker subprocesses. Each handler leaves its trace in Redis (the suite's real server) so a test
can tell how often and how far it ran, whichever process ran it.
"""

from __future__ import annotations

import os
import time

import django_rq

from jobs.parents import await_children
from jobs.registry import job_kind
from jobs.request_functions import register_request

QUEUE = "bundle-recompute"


def _redis():
    return django_rq.get_connection(QUEUE)


def runs_key(token: str) -> str:
    return f"test:runs:{token}"


@job_kind("test_noop", queue=QUEUE, max_attempts=1, backoff=(0,), timeout=30)
def noop(ctx, *, token: str = "", **extra) -> dict:
    """Does nothing but count its runs."""
    if token:
        _redis().incr(runs_key(token))
    return {"ok": True, "payload": {"token": token, **extra}}


@job_kind("test_flaky", queue=QUEUE, max_attempts=3, backoff=(0,), timeout=30)
def flaky(ctx, *, token: str, fail_times: int) -> dict:
    """Fails the first ``fail_times`` runs, then succeeds."""
    run = _redis().incr(runs_key(token))
    if run <= fail_times:
        raise RuntimeError(f"flaky failure number {run}")
    return {"succeeded_on_run": run}


@job_kind("test_flaky_backoff", queue=QUEUE, max_attempts=2, backoff=(2,), timeout=30)
def flaky_backoff(ctx, *, token: str) -> dict:
    """Fails once; the retry waits 2 s (RQ's scheduler must deliver it)."""
    run = _redis().incr(runs_key(token))
    _redis().rpush(f"test:times:{token}", time.time())
    if run == 1:
        raise RuntimeError("first run fails")
    return {"run": run}


@job_kind("test_always_fails", queue=QUEUE, max_attempts=3, backoff=(0,), timeout=30)
def always_fails(ctx, *, token: str) -> None:
    """Never succeeds."""
    run = _redis().incr(runs_key(token))
    raise ValueError(f"broken on run {run}")


@job_kind("test_slow", queue=QUEUE, max_attempts=2, backoff=(1,), timeout=120)
def slow(ctx, *, token: str, steps: int = 20, step_seconds: float = 0.25) -> dict:
    """Works in steps, reporting progress (and so noticing a cancel) at each one."""
    conn = _redis()
    run = conn.incr(runs_key(token))
    conn.set(f"test:started:{token}", run)
    conn.set(f"test:pid:{token}", os.getpid())
    for step in range(1, steps + 1):
        time.sleep(step_seconds)
        ctx.set_progress(int(step * 100 / steps), f"step {step}/{steps}")
    conn.set(f"test:finished:{token}", run)
    return {"steps": steps, "run": run}


@job_kind("test_sleepy", queue=QUEUE, max_attempts=1, backoff=(0,), timeout=30)
def sleepy(ctx, *, seconds: float = 1.0) -> dict:
    """Sleeps without reporting progress; returns the heartbeat the ledger had meanwhile."""
    from jobs.models import Job

    time.sleep(seconds)
    row = Job.objects.get(pk=ctx.job.pk)
    return {"heartbeat_at": row.heartbeat_at.isoformat(), "started_at": row.started_at.isoformat()}


@job_kind("test_reconcile_inside", queue=QUEUE, max_attempts=2, backoff=(0,), timeout=30)
def reconcile_inside(ctx, *, token: str) -> dict:
    """Backdates its own start by 10 s, then runs reconcile() while it is still running: the
    situation of a long ``--sync`` job when a worker's maintenance pass comes by."""
    from datetime import timedelta

    from django.utils import timezone

    from jobs.maintenance.reconcile import reconcile
    from jobs.models import Job

    _redis().incr(runs_key(token))
    Job.objects.filter(pk=ctx.job.pk).update(started_at=timezone.now() - timedelta(seconds=10))
    changed = reconcile()
    state = Job.objects.values_list("state", flat=True).get(pk=ctx.job.pk)
    return {"reconciled": [str(j.pk) for j in changed], "state_during_run": state}


@job_kind("test_long_backoff", queue=QUEUE, max_attempts=2, backoff=(300,), timeout=30)
def long_backoff(ctx, *, token: str) -> dict:
    """Fails once, then waits 5 minutes for its retry (unless someone says "retry now")."""
    run = _redis().incr(runs_key(token))
    if run == 1:
        raise RuntimeError("first run fails")
    return {"run": run}


@job_kind("test_reads_its_row", queue=QUEUE, max_attempts=1, backoff=(0,), timeout=30)
def reads_its_row(ctx, **payload) -> dict:
    """Reads its own ledger row through the ORM, and says whether the process handed it an
    open database connection (a work horse must never use its worker's)."""
    from django.db import connection

    from jobs.models import Job

    inherited = connection.connection is not None
    row = Job.objects.get(pk=ctx.job.pk)
    return {
        "inherited_connection": inherited,
        "state": row.state,
        "attempts": row.attempts,
        "pid": os.getpid(),
    }


def _parent_summary(parent) -> dict:
    # Streams one column of the children, as a real summarize must (never their payloads).
    states = list(parent.children.values_list("state", flat=True))
    return {"children": len(states), "completed": states.count("completed")}


@job_kind(
    "test_parent",
    queue=QUEUE,
    max_attempts=1,
    backoff=(),
    timeout=30,
    summarize=_parent_summary,
)
def parent(ctx, **options):
    """A parent whose children were recorded with it: it waits for them, holding no worker."""
    return await_children()


def noop_request(
    *, token: str = "", dedup_key: str | None = None, trigger: str, requested_by=None, reason=""
):
    """A test_noop job (what the tests' schedules ask for)."""
    from jobs.enqueue import enqueue

    return enqueue(
        "test_noop",
        payload={"token": token},
        trigger=trigger,
        reason=reason,
        requested_by=requested_by,
        dedup_key=dedup_key,
    )


register_request(
    "tests.noop", noop_request, permission="jobs.view_job", queue=QUEUE, kind="test_noop"
)


@job_kind(
    "test_parent_dies",
    queue=QUEUE,
    max_attempts=1,
    backoff=(),
    timeout=30,
    summarize=_parent_summary,
)
def parent_dies(ctx, **options):
    """A parent whose work horse is SIGKILLed just as its handler would return
    await_children(): before the runner parked it (its children were recorded with it)."""
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
