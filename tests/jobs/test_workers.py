"""Real worker subprocesses: delayed retries, cancel while running, SIGKILLed horse and worker."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
from django.db import transaction

from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from jobs.selectors import job_is_stale
from jobs.services import job_cancel
from tests.jobs.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def state_of(job: Job) -> str:
    return Job.objects.values_list("state", flat=True).get(pk=job.pk)


def settled(job: Job):
    job.refresh_from_db()
    return job.is_settled and job


def test_retry_with_backoff_is_delivered_by_the_workers_scheduler(
    worker_process, redis_conn, token
):
    # Given a worker with RQ's scheduler, and a kind that fails once with a 2 s backoff
    worker_process()
    job = enqueue("test_flaky_backoff", payload={"token": token}, trigger="command")
    # When / Then: it waits in `retrying`, then completes on attempt 2
    wait_until(lambda: state_of(job) == JobState.RETRYING, timeout=30)
    job.refresh_from_db()
    assert job.next_attempt_at is not None
    wait_until(lambda: settled(job), timeout=30)
    assert job.state == JobState.COMPLETED
    assert job.attempts == 2
    times = [float(t) for t in redis_conn.lrange(f"test:times:{token}", 0, -1)]
    assert times[1] - times[0] >= 2.0  # the backoff was honoured, never shortened


def test_cancel_of_a_running_job_stops_it_and_settles_cancelled(worker_process, redis_conn, token):
    # Given a long job running in a worker
    worker_process()
    job = enqueue(
        "test_slow", payload={"token": token, "steps": 80, "step_seconds": 0.25}, trigger="admin"
    )
    wait_until(lambda: redis_conn.get(f"test:started:{token}"), timeout=30)
    assert state_of(job) == JobState.RUNNING
    # When
    job_cancel(job_id=job.pk)
    # Then it stops at its next progress report, well before its 20 s of work
    wait_until(lambda: settled(job), timeout=10)
    assert job.state == JobState.CANCELLED
    assert job.attempts == 1
    assert job.progress < 100
    assert redis_conn.get(f"test:finished:{token}") is None


def test_sigkilled_work_horse_is_retried_and_completes(worker_process, redis_conn, token):
    # Given a job running in a worker's horse
    worker_process()
    job = enqueue(
        "test_slow", payload={"token": token, "steps": 12, "step_seconds": 0.25}, trigger="admin"
    )
    horse = int(wait_until(lambda: redis_conn.get(f"test:pid:{token}"), timeout=30))
    # When the horse is killed mid-job (as the OOM killer would)
    os.kill(horse, signal.SIGKILL)
    # Then the ledger records the death and the retry completes the job
    wait_until(lambda: settled(job), timeout=60)
    assert job.state == JobState.COMPLETED
    assert job.attempts == 2
    assert len(job.errors) == 1
    assert "work horse killed (signal 9)" in job.errors[0]["message"]
    assert job.errors[0]["attempt"] == 1


def test_sigkilled_whole_worker_is_shown_stale_and_retried_within_30_seconds(
    worker_process, redis_conn, token
):
    # Given a job running in worker A, and another worker (default settings) alive
    worker_a = worker_process("--name", f"doomed-{token[:8]}")
    job = enqueue(
        "test_slow", payload={"token": token, "steps": 400, "step_seconds": 0.25}, trigger="admin"
    )
    horse = int(wait_until(lambda: redis_conn.get(f"test:pid:{token}"), timeout=30))
    job.refresh_from_db()
    assert job.worker_name == f"doomed-{token[:8]}"
    worker_process()
    wait_until(lambda: redis_conn.scard("rq:workers") >= 2, timeout=60)
    # When the whole machine goes: worker, its horse and its scheduler, all SIGKILLed
    children = worker_a.children()
    worker_a.kill()
    for pid in {horse, *children}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert state_of(job) == JobState.RUNNING
    assert not job_is_stale(Job.objects.get(pk=job.pk))  # it reported a moment ago

    # Then within 30 s the list shows it stale, or reconcile has already moved it on
    def stale_or_moved_on():
        row = Job.objects.get(pk=job.pk)
        return job_is_stale(row) or row.state != JobState.RUNNING

    wait_until(stale_or_moved_on, timeout=30, interval=0.25)
    stale_after = time.monotonic() - killed_at
    wait_until(lambda: state_of(job) != JobState.RUNNING, timeout=30, interval=0.25)
    noticed_after = time.monotonic() - killed_at
    assert noticed_after < 30
    # and the retry, on the surviving worker, completes it (400 short steps: cut it short)
    row = Job.objects.get(pk=job.pk)
    assert row.errors[0]["message"].startswith("Worker died")
    assert row.errors[0]["attempt"] == 1
    wait_until(lambda: Job.objects.get(pk=job.pk).attempts == 2, timeout=60)
    job_cancel(job_id=job.pk)
    wait_until(lambda: settled(job), timeout=30)
    assert job.attempts == 2 and job.state == JobState.CANCELLED
    print(
        f"whole-worker death: stale after {stale_after:.1f}s, retried after "
        f"{noticed_after:.1f}s: {row.errors[0]['message']}"
    )


def _horse_of(worker) -> int | None:
    """The worker's work horse: RQ puts it in a process group of its own (``os.setpgrp``)."""
    for pid in worker.children():
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == pid:
                return pid
    return None


def test_a_horse_killed_before_claiming_is_a_failed_attempt_with_rqs_reason_within_15s(
    worker_process, redis_conn, token
):
    # Given a job whose ledger row is locked, so the work horse cannot claim it yet (locked
    # before any worker runs: a worker claims at once on its own connection, so a lock taken
    # after the job reached one could come too late)
    with transaction.atomic():
        job = enqueue(
            "test_slow", payload={"token": token, "steps": 4, "step_seconds": 0.1}, trigger="admin"
        )
    with transaction.atomic():
        Job.objects.select_for_update().filter(pk=job.pk).update(reason="locked by the test")
        worker = worker_process()
        horse = wait_until(lambda: _horse_of(worker), timeout=60)
        # When the horse is killed before the runner claimed the row
        os.kill(horse, signal.SIGKILL)
        killed_at = time.monotonic()
    # Then within 15 s the delivery is a failed attempt, with RQ's reason
    wait_until(lambda: Job.objects.get(pk=job.pk).errors, timeout=15, interval=0.1)
    recorded_after = time.monotonic() - killed_at
    row = Job.objects.get(pk=job.pk)
    assert row.attempts >= 1
    assert row.errors[0]["attempt"] == 1
    assert "Work-horse terminated unexpectedly" in row.errors[0]["message"]
    assert "(signal 9)" in row.errors[0]["message"]
    assert redis_conn.get(f"test:started:{token}") is None or row.attempts == 2
    # and its retry (max 2 attempts) runs and completes
    wait_until(lambda: settled(job), timeout=60)
    assert job.state == JobState.COMPLETED and job.attempts == 2
    print(f"undelivered attempt recorded after {recorded_after:.1f}s: {row.errors[0]['message']}")
