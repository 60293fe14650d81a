"""Retry now: a job waiting out a long backoff runs at once, in a real worker."""

from __future__ import annotations

import time

import pytest
from django.contrib.admin.models import LogEntry

from jobs.enqueue import enqueue
from jobs.errors import JobStateError
from jobs.models import Job, JobState
from jobs.services import job_retry_now
from tests.jobs.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def test_retry_now_runs_a_job_waiting_a_5_minute_backoff_within_2_seconds(
    worker_process, redis_conn, token
):
    # Given a job that failed once and now waits 300 s for its retry
    worker_process()
    job = enqueue("test_long_backoff", payload={"token": token}, trigger="command")
    wait_until(lambda: Job.objects.get(pk=job.pk).state == JobState.RETRYING, timeout=30)
    job.refresh_from_db()
    assert job.next_attempt_at.timestamp() - time.time() > 250
    # When
    asked = time.monotonic()
    job_retry_now(job_id=job.pk)
    # Then the second attempt completes within 2 s
    wait_until(lambda: Job.objects.get(pk=job.pk).state == JobState.COMPLETED, timeout=2)
    assert time.monotonic() - asked < 2
    job.refresh_from_db()
    assert job.attempts == 2
    assert int(redis_conn.get(f"test:runs:{token}")) == 2  # the failure, then the retry


def test_retry_now_refuses_a_job_that_is_not_retrying(redis_conn, token):
    job = enqueue("test_noop", payload={"token": token}, trigger="command")
    Job.objects.filter(pk=job.pk).update(state=JobState.FAILED)
    with pytest.raises(JobStateError, match="Only a retrying job"):
        job_retry_now(job_id=job.pk)
    assert Job.objects.get(pk=job.pk).state == JobState.FAILED
    assert LogEntry.objects.count() == 0
