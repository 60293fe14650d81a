"""relay() and reconcile(): nothing lost when Redis or a worker goes away."""

from __future__ import annotations

import time
from datetime import timedelta

import django_rq
import pytest
from django.db import transaction
from django.utils import timezone

from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from jobs.relay import reconcile, relay
from tests.jobs.kinds import runs_key
from tests.redis_plugin import embedded_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def recompute_queue_length() -> int:
    return django_rq.get_queue("bundle-recompute").count


def test_jobs_committed_while_redis_is_down_are_relayed_once_it_is_back(
    run_burst, redis_conn, token
):
    server = embedded_server()
    if server is None:
        pytest.skip("REDIS_URL points at an external server; cannot stop it")
    # Given Redis is down
    server.stop()
    try:
        # When 20 jobs are committed
        started = time.monotonic()
        for n in range(20):
            with transaction.atomic():
                enqueue("test_noop", payload={"token": f"{token}-{n}"}, trigger="signal")
        commit_seconds = time.monotonic() - started
        # Then every row is kept, undispatched, and no caller saw an error
        assert Job.objects.filter(state=JobState.PENDING, dispatched_at__isnull=True).count() == 20
    finally:
        server.start()
    print(f"20 commits with Redis down took {commit_seconds:.2f}s")
    # When Redis is back and the relay runs
    assert relay(grace_seconds=0) == 20
    run_burst()
    # Then every job ran exactly once
    assert Job.objects.filter(state=JobState.COMPLETED).count() == 20
    for n in range(20):
        assert redis_conn.get(runs_key(f"{token}-{n}")) == b"1"
    # and the relay has nothing left to send
    assert relay(grace_seconds=0) == 0


def test_relay_resends_jobs_that_redis_lost(run_burst, redis_conn, token):
    # Given a dispatched job, and Redis restarted empty (no persistence)
    job = enqueue("test_noop", payload={"token": token}, trigger="signal")
    assert recompute_queue_length() == 1
    redis_conn.flushdb()
    # When
    sent = relay(grace_seconds=0)
    run_burst()
    # Then
    assert sent == 1
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert redis_conn.get(runs_key(token)) == b"1"


def test_relay_leaves_jobs_alone_that_rq_still_has_or_that_are_fresh(redis_conn, token):
    # Given one dispatched job, and one undispatched but only a moment old
    enqueue("test_noop", payload={"token": token}, trigger="signal")
    fresh = Job.objects.create(queue="bundle-recompute", kind="test_noop", trigger="signal")
    # When
    sent_now = relay()  # default grace: a dispatch may still be in flight elsewhere
    sent_later = relay(grace_seconds=0)
    # Then nothing is sent twice
    assert sent_now == 0
    assert sent_later == 1
    assert recompute_queue_length() == 2
    fresh.refresh_from_db()
    assert fresh.dispatched_at is not None


def _running_row(*, attempts: int, max_attempts: int, silent_for: int) -> Job:
    long_ago = timezone.now() - timedelta(seconds=silent_for)
    job = Job.objects.create(
        queue="bundle-recompute",
        kind="test_flaky",
        payload={"token": "x", "fail_times": 0},
        trigger="signal",
        state=JobState.RUNNING,
        attempts=attempts,
        max_attempts=max_attempts,
        worker_name="gone-worker",
        rq_job_id=f"job-gone-{attempts}",
    )
    Job.objects.filter(pk=job.pk).update(started_at=long_ago, heartbeat_at=long_ago)
    return job


def test_reconcile_retries_a_running_job_whose_worker_vanished(redis_conn):
    # Given a row running on a worker RQ has never heard of, silent for 2 minutes
    job = _running_row(attempts=1, max_attempts=3, silent_for=120)
    # When
    changed = reconcile()
    # Then it becomes a failed attempt, with its retry scheduled
    assert [j.pk for j in changed] == [job.pk]
    job.refresh_from_db()
    assert job.state == JobState.RETRYING
    assert job.errors[0]["message"].startswith("Worker died")
    assert job.errors[0]["attempt"] == 1


def test_reconcile_fails_a_dead_job_on_its_last_attempt(redis_conn):
    job = _running_row(attempts=3, max_attempts=3, silent_for=120)
    reconcile()
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "Worker died" in job.progress_message
    assert job.settled_at is not None


def test_reconcile_leaves_a_running_job_with_a_fresh_heartbeat_alone(redis_conn):
    job = _running_row(attempts=1, max_attempts=3, silent_for=0)
    Job.objects.filter(pk=job.pk).update(rq_job_id="", worker_name="inline@here:1")
    assert reconcile() == []
    job.refresh_from_db()
    assert job.state == JobState.RUNNING
