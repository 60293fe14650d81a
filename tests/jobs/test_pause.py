"""Pausing a queue holds its jobs (pending, visible) on every worker; resuming sends them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.utils import timezone

from jobs.enqueue import enqueue
from jobs.errors import JobNotFound, JobPermissionDenied
from jobs.maintenance.ledger_pass import relay_and_reconcile
from jobs.models import Job, JobState, QueuePause
from jobs.pause import PAUSED_QUEUES_KEY, paused_queues, queue_paused
from jobs.services import queue_pause, queue_resume
from tests.jobs.conftest import wait_until
from tests.support import grant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

QUEUE = "bundle-recompute"


def state_of(job: Job) -> str:
    return Job.objects.values_list("state", flat=True).get(pk=job.pk)


def test_a_paused_queue_keeps_a_new_job_pending_and_resume_runs_it(
    worker_process, redis_conn, token
):
    # Given a worker that runs the queue's jobs (one ran), then the queue paused
    worker_process()
    before = enqueue("test_noop", payload={"token": token + "-before"}, trigger="command")
    wait_until(lambda: state_of(before) == JobState.COMPLETED, timeout=30)
    queue_pause(queue=QUEUE)
    # When a job is enqueued (and committed)
    job = enqueue("test_noop", payload={"token": token}, trigger="command")
    # Then it was never handed to RQ, so no worker can take it: pending and visible
    job.refresh_from_db()
    assert job.state == JobState.PENDING
    assert job.dispatched_at is None
    assert redis_conn.llen(f"rq:queue:{QUEUE}") == 0
    assert redis_conn.get(f"test:runs:{token}") is None
    # When the queue is resumed, the job runs
    sent = queue_resume(queue=QUEUE)
    assert sent == 1
    wait_until(lambda: state_of(job) == JobState.COMPLETED, timeout=30)


def test_a_job_already_in_rq_when_the_queue_pauses_is_handed_back_not_run(
    run_burst, redis_conn, token
):
    # Given a job sent to RQ before the pause
    job = enqueue("test_noop", payload={"token": token}, trigger="command")
    job.refresh_from_db()
    assert job.dispatched_at is not None
    queue_pause(queue=QUEUE)
    # When a worker takes it from RQ
    run_burst()
    # Then it did not run: the row is pending again, undispatched
    job.refresh_from_db()
    assert job.state == JobState.PENDING
    assert job.attempts == 0
    assert job.dispatched_at is None
    assert redis_conn.get(f"test:runs:{token}") is None
    # And resuming sends it again, and it runs
    assert queue_resume(queue=QUEUE) == 1
    run_burst()
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED


def test_pause_needs_the_permission_and_is_audited(redis_conn):
    clerk = grant(User.objects.create_user("clerk", is_staff=True), "jobs.view_job")
    with pytest.raises(JobPermissionDenied):
        queue_pause(queue=QUEUE, user=clerk)
    assert not queue_paused(QUEUE)
    assert LogEntry.objects.count() == 0

    clerk = grant(clerk, "jobs.pause_queue")
    queue_pause(queue=QUEUE, user=clerk)
    assert paused_queues() == {QUEUE}
    queue_resume(queue=QUEUE, user=clerk)
    assert paused_queues() == set()
    messages = list(LogEntry.objects.order_by("pk").values_list("change_message", flat=True))
    assert messages == [f"Paused queue {QUEUE}", f"Resumed queue {QUEUE}"]


def test_an_unknown_queue_is_refused_and_nothing_is_paused(redis_conn):
    with pytest.raises(JobNotFound, match="No queue 'nope'"):
        queue_pause(queue="nope")
    assert paused_queues() == set()


def test_a_pause_is_kept_in_the_database_with_who_and_when(redis_conn):
    operator = grant(User.objects.create_user("op", is_staff=True), "jobs.pause_queue")
    queue_pause(queue=QUEUE, user=operator)
    pause = QueuePause.objects.get(queue=QUEUE)
    assert pause.paused_by == operator
    assert timezone.now() - pause.paused_at < timedelta(minutes=1)
    queue_resume(queue=QUEUE, user=operator)
    assert not QueuePause.objects.exists()


def test_a_paused_queue_stays_paused_when_redis_comes_back_empty(run_burst, redis_conn, token):
    # Given a paused queue
    queue_pause(queue=QUEUE)
    # When Redis loses everything (restarted without persistence)
    redis_conn.flushall()
    # Then a new job of the queue is held, not sent
    job = enqueue("test_noop", payload={"token": token}, trigger="command")
    job.refresh_from_db()
    assert (job.state, job.dispatched_at) == (JobState.PENDING, None)
    assert redis_conn.llen(f"rq:queue:{QUEUE}") == 0
    # And the workers' flag is back in Redis, written from the table
    assert redis_conn.sismember(PAUSED_QUEUES_KEY, QUEUE)
    assert queue_paused(QUEUE)


def test_a_job_in_rq_when_redis_forgot_the_pause_is_handed_back_not_run(
    run_burst, redis_conn, token
):
    # Given a job already sent to RQ, then its queue paused and the flag lost from Redis
    job = enqueue("test_noop", payload={"token": token}, trigger="command")
    queue_pause(queue=QUEUE)
    redis_conn.delete(PAUSED_QUEUES_KEY)
    # When a worker takes it
    run_burst()
    # Then it did not run: the worker asked the table through the re-synced flag
    job.refresh_from_db()
    assert (job.state, job.attempts, job.dispatched_at) == (JobState.PENDING, 0, None)
    assert redis_conn.get(f"test:runs:{token}") is None


def test_a_stale_flag_in_redis_is_corrected_by_the_ledger_pass(redis_conn):
    # Given Redis holding a flag the table does not (a Redis restored from an old snapshot)
    queue_pause(queue=QUEUE)
    QueuePause.objects.all().delete()
    assert redis_conn.sismember(PAUSED_QUEUES_KEY, QUEUE)
    # When the relay + reconcile pass runs
    relay_and_reconcile()
    # Then Redis says what the table says
    assert not redis_conn.sismember(PAUSED_QUEUES_KEY, QUEUE)
