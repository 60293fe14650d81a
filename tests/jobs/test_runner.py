"""The runner, through real RQ: attempts, errors with tracebacks, retries, results, cancel."""

from __future__ import annotations

import django_rq
import pytest
from django.contrib.auth import get_user_model
from rq.job import Job as RQJob

from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from jobs.runner import run_inline
from jobs.services import job_cancel, job_retry
from tests.jobs.kinds import runs_key
from tests.support import grant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def test_noop_job_completes_with_result_progress_and_times(run_burst, redis_conn, token):
    # Given
    job = enqueue("test_noop", payload={"token": token}, trigger="admin")
    # When
    run_burst()
    # Then
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.attempts == 1
    assert job.progress == 100
    assert job.result == {"ok": True, "payload": {"token": token}}
    assert job.errors == []
    assert job.created_at <= job.dispatched_at <= job.started_at <= job.settled_at
    assert job.worker_name
    assert redis_conn.get(runs_key(token)) == b"1"


def test_handler_failing_twice_then_succeeding_completes_on_attempt_three(run_burst, token):
    # Given
    job = enqueue("test_flaky", payload={"token": token, "fail_times": 2}, trigger="command")
    # When (backoff 0: each retry is queued at once and the burst worker picks it up)
    run_burst()
    # Then
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.attempts == 3
    assert job.result == {"succeeded_on_run": 3}
    assert [e["attempt"] for e in job.errors] == [1, 2]
    for number, error in enumerate(job.errors, start=1):
        assert error["message"] == f"RuntimeError: flaky failure number {number}"
        assert "Traceback (most recent call last)" in error["traceback"]
        assert "raise RuntimeError" in error["traceback"]
        assert error["at"]


def test_always_failing_handler_fails_after_max_attempts_keeping_every_error(
    run_burst, token, settings, mailoutbox
):
    # Given
    settings.ADMINS = [("Ops", "ops@example.com")]
    job = enqueue("test_always_fails", payload={"token": token}, trigger="command")
    # When
    run_burst()
    # Then
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.attempts == job.max_attempts == 3
    assert [e["message"] for e in job.errors] == [
        "ValueError: broken on run 1",
        "ValueError: broken on run 2",
        "ValueError: broken on run 3",
    ]
    assert job.settled_at is not None
    # and the admins hear of it once, with the last error
    assert len(mailoutbox) == 1
    assert "Job failed: test_always_fails" in mailoutbox[0].subject
    assert "ValueError: broken on run 3" in mailoutbox[0].body


def test_retry_of_a_failed_job_runs_it_again_as_the_next_attempt(run_burst, redis_conn, token):
    # Given a job that failed for good, and an operator allowed to retry jobs
    user = get_user_model().objects.create_user("operator", password="x", is_staff=True)
    user = grant(user, "jobs.retry_job")
    job = enqueue("test_always_fails", payload={"token": token}, trigger="command")
    run_burst()
    # When an operator retries it
    retried = job_retry(job_id=job.pk, user=user)
    assert retried.state == JobState.PENDING
    run_burst()
    # Then it ran once more on the same row, with all four errors kept
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.attempts == 4
    assert [e["attempt"] for e in job.errors] == [1, 2, 3, 4]
    assert job.last_action == "retry"
    assert job.last_action_by == user
    assert redis_conn.get(runs_key(token)) == b"4"
    assert Job.objects.count() == 1


def test_retry_refuses_a_job_that_is_not_failed_or_cancelled(token):
    from jobs.services import JobStateError

    job = enqueue("test_noop", payload={"token": token}, trigger="command")
    with pytest.raises(JobStateError):
        job_retry(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == JobState.PENDING


def test_cancelled_pending_job_never_runs(run_burst, redis_conn, token):
    # Given a job already handed to RQ
    job = enqueue("test_noop", payload={"token": token}, trigger="admin")
    job.refresh_from_db()
    assert job.dispatched_at is not None
    # When
    job_cancel(job_id=job.pk)
    run_burst()
    # Then
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert job.attempts == 0
    assert redis_conn.get(runs_key(token)) is None


def test_delivery_reaching_a_cancel_requested_row_settles_it_without_running(run_burst, token):
    # Given a row cancelled between its dispatch and the worker picking it up (RQ kept it)
    job = enqueue("test_noop", payload={"token": token}, trigger="admin")
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    # When
    run_burst()
    # Then
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert job.attempts == 0


def test_duplicate_delivery_of_a_settled_job_does_not_run_it_again(run_burst, redis_conn, token):
    # Given a completed job
    job = enqueue("test_noop", payload={"token": token}, trigger="admin")
    run_burst()
    job.refresh_from_db()
    # When RQ delivers it again (relay race, manual requeue...)
    django_rq.get_queue("bundle-recompute").enqueue(
        "jobs.runner.perform", str(job.pk), job_id=job.rq_job_id
    )
    run_burst()
    # Then
    assert redis_conn.get(runs_key(token)) == b"1"
    job.refresh_from_db()
    assert job.attempts == 1


def test_progress_is_written_to_the_ledger_and_rq_meta(run_burst, redis_conn, token):
    # Given a handler that reports 4 steps quickly
    job = enqueue(
        "test_slow", payload={"token": token, "steps": 4, "step_seconds": 0.01}, trigger="admin"
    )
    rq_id = Job.objects.get(pk=job.pk).rq_job_id
    # When
    run_burst()
    # Then the last step (100 %, never throttled) reached both
    job.refresh_from_db()
    assert job.progress == 100
    assert job.progress_message == "step 4/4"
    meta = RQJob.fetch(rq_id, connection=redis_conn).get_meta()
    assert meta["progress"] == 100
    assert meta["progress_message"] == "step 4/4"


def test_progress_writes_are_throttled(token, monkeypatch):
    # Given a handler reporting 200 steps in well under a second
    from jobs import runner

    writes = []
    real = runner.JobContext._write_progress

    def counting(self, pct, message):
        writes.append(pct)
        return real(self, pct, message)

    monkeypatch.setattr(runner.JobContext, "_write_progress", counting)
    job = enqueue(
        "test_slow",
        payload={"token": token, "steps": 200, "step_seconds": 0},
        trigger="command",
        dispatch_on_commit=False,
    )
    # When
    job = run_inline(job)
    # Then a handful of writes, the last one 100
    assert job.state == JobState.COMPLETED
    assert len(writes) <= 5
    assert writes[-1] == 100


def test_run_inline_runs_without_redis_and_retries_until_settled(token, redis_conn):
    job = enqueue(
        "test_flaky",
        payload={"token": token, "fail_times": 1},
        trigger="command",
        dispatch_on_commit=False,
    )
    job = run_inline(job)
    assert job.state == JobState.COMPLETED
    assert job.attempts == 2
    assert len(job.errors) == 1
    assert job.worker_name.startswith("inline@")


def test_heartbeat_is_refreshed_while_a_silent_handler_runs(settings):
    # Given a heartbeat every 0.2 s and a handler that reports nothing for a second
    from datetime import datetime

    settings.JOBS_HEARTBEAT_INTERVAL = 0.2
    job = enqueue(
        "test_sleepy", payload={"seconds": 1.0}, trigger="command", dispatch_on_commit=False
    )
    # When
    job = run_inline(job)
    # Then the ledger saw the job alive mid-way
    beat = datetime.fromisoformat(job.result["heartbeat_at"])
    started = datetime.fromisoformat(job.result["started_at"])
    assert (beat - started).total_seconds() >= 0.6
