"""Real worker subprocesses: delayed retries, cancel while running, SIGKILLed horse and worker."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from jobs.enqueue import enqueue
from jobs.models import Job, JobState
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


def test_sigkilled_whole_worker_is_noticed_within_three_minutes(worker_process, redis_conn, token):
    # Given a job running in worker A
    worker_a = worker_process("--name", f"doomed-{token[:8]}")
    job = enqueue(
        "test_slow", payload={"token": token, "steps": 16, "step_seconds": 0.25}, trigger="admin"
    )
    horse = int(wait_until(lambda: redis_conn.get(f"test:pid:{token}"), timeout=30))
    # When the whole machine goes: worker, its horse and its scheduler, all SIGKILLed
    children = worker_a.children()
    worker_a.kill()
    for pid in {horse, *children}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert state_of(job) == JobState.RUNNING
    # and another worker (default settings) carries on
    worker_process()
    # Then within three minutes the job is not left running: it is retried and completes
    wait_until(lambda: state_of(job) != JobState.RUNNING, timeout=180, interval=1)
    noticed_after = time.monotonic() - killed_at
    wait_until(lambda: settled(job), timeout=60)
    assert noticed_after < 180
    assert job.state == JobState.COMPLETED
    assert job.attempts == 2
    assert job.errors[0]["message"].startswith("Worker died")
    print(f"whole-worker death noticed after {noticed_after:.0f}s: {job.errors[0]['message']}")
