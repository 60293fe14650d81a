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
    from jobs.errors import JobStateError

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
    from jobs.context import JobContext

    writes = []
    real = JobContext._write_progress

    def counting(self, pct, message):
        writes.append(pct)
        return real(self, pct, message)

    monkeypatch.setattr(JobContext, "_write_progress", counting)
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


# -- one copy of an attempt: an old attempt's writes never keep a new one alive --------------


def _superseded_attempt(token: str):
    """Attempt 1 claimed (its context kept), judged dead, and attempt 2 claimed elsewhere.

    Returns (attempt 1's context, attempt 2's heartbeat, set a minute back)."""
    from datetime import timedelta

    from django.utils import timezone

    from jobs.context import JobContext
    from jobs.registry import get_kind
    from jobs.runner import record_failure
    from jobs.runner.claim import claim

    job = enqueue(
        "test_flaky",
        payload={"token": token, "fail_times": 0},
        trigger="command",
        dispatch_on_commit=False,
    )
    first, _ = claim(job.pk, worker_name="old@host:1", rq_job_id="")
    old_ctx = JobContext(first)
    record_failure(
        first,
        message="Worker died (test)",
        expect_attempt=1,
        dispatch_retry=False,
        kind=get_kind(job.kind),
    )
    second, _ = claim(job.pk, worker_name="new@host:2", rq_job_id="")
    assert second is not None and second.attempts == 2
    long_ago = timezone.now() - timedelta(seconds=60)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=long_ago)
    return old_ctx, long_ago


def test_an_old_attempts_progress_write_raises_and_leaves_the_new_attempt_alone(token):
    from jobs.context import AttemptSuperseded

    # Given attempt 1 superseded by attempt 2, whose row has been silent for a minute
    old_ctx, long_ago = _superseded_attempt(token)
    # When attempt 1's handler reports progress
    with pytest.raises(AttemptSuperseded):
        old_ctx.set_progress(100, "still going")
    # Then the new attempt's row is untouched: its silence is its own
    row = Job.objects.get(pk=old_ctx.job.pk)
    assert (row.attempts, row.heartbeat_at, row.progress) == (2, long_ago, 0)
    assert row.progress_message != "still going"


def test_an_old_attempts_heartbeat_neither_keeps_the_new_attempt_alive_nor_goes_on(token, settings):
    from jobs.context import AttemptSuperseded
    from jobs.runner import JobHeartbeats
    from tests.support import wait_until

    # Given attempt 1 superseded by attempt 2, and a heartbeat every 0.1 s
    settings.JOBS_HEARTBEAT_INTERVAL = 0.1
    old_ctx, long_ago = _superseded_attempt(token)
    beats = JobHeartbeats.get()
    # When attempt 1's heartbeat thread comes round
    beats.watch(old_ctx)
    try:
        # Then it stops beating for attempt 1 (in a work horse, it would end the horse)
        wait_until(lambda: old_ctx not in beats.due, timeout=10)
    finally:
        beats.unwatch(old_ctx)
    # and never touched the new attempt's row
    assert Job.objects.get(pk=old_ctx.job.pk).heartbeat_at == long_ago
    # and the handler stops at its next check
    with pytest.raises(AttemptSuperseded):
        old_ctx.check_cancelled()


def test_a_superseded_handler_stops_and_records_nothing_for_its_attempt(token):
    from jobs.context import AttemptSuperseded
    from jobs.runner import AttemptOutcome
    from jobs.runner.attempt import record_outcome

    # Given attempt 1 superseded while its handler ran
    old_ctx, _ = _superseded_attempt(token)
    with pytest.raises(AttemptSuperseded):
        old_ctx.set_progress(50)
    # When the runner records how it ended
    row = record_outcome(old_ctx.job, AttemptOutcome("superseded"), dispatch_retry=False)
    # Then attempt 2 is still running, with no error added by attempt 1
    assert (row.state, row.attempts, len(row.errors)) == (JobState.RUNNING, 2, 1)


def test_a_parent_waiting_for_a_childs_retry_never_sleeps_a_negative_time(token, monkeypatch):
    """``_run_children_inline`` checks that a child's retry is due later, then sleeps until it:
    the clock moves on between the two reads."""
    from datetime import timedelta

    from django.utils import timezone

    from jobs.runner import inline

    # Given a parent whose child waits for its retry
    parent = enqueue(
        "test_noop", payload={"token": f"{token}-p"}, trigger="command", dispatch_on_commit=False
    )
    Job.objects.filter(pk=parent.pk).update(state=JobState.RUNNING, attempts=1)
    child = enqueue(
        "test_noop", payload={"token": token}, trigger="command", dispatch_on_commit=False
    )
    start = timezone.now()
    Job.objects.filter(pk=child.pk).update(
        parent=parent, state=JobState.RETRYING, next_attempt_at=start + timedelta(seconds=1.5)
    )

    # and a clock that moves a second between every two reads (a busy machine): due in 0.5 s
    # at the check, overdue by 0.5 s when the wait is computed
    class Clock:
        at = start

        @classmethod
        def now(cls):
            cls.at += timedelta(seconds=1)
            return cls.at

    monkeypatch.setattr(inline, "timezone", Clock)
    # When the parent runs its children inline, it neither raises nor waits
    inline._run_children_inline(Job.objects.get(pk=parent.pk))
    # Then the child ran
    assert Job.objects.get(pk=child.pk).state == JobState.COMPLETED
