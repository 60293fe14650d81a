"""relay() and reconcile(): nothing lost when Redis or a worker goes away."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from io import StringIO

import django_rq
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from jobs.dispatch import dispatch
from jobs.enqueue import enqueue
from jobs.maintenance.reconcile import reconcile
from jobs.maintenance.relay import relay
from jobs.models import Job, JobState
from jobs.runner import run_inline
from jobs.runner.claim import claim
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


def _live_rq_worker(redis_conn, name: str):
    """An RQ worker registered under ``name`` with a fresh heartbeat (nothing runs in it)."""
    from rq.worker import Worker

    worker = Worker([django_rq.get_queue("bundle-recompute")], name=name, connection=redis_conn)
    worker.register_birth()
    return worker


def test_reconcile_leaves_a_job_alone_whose_rq_job_redis_lost_while_its_row_heartbeats(
    redis_conn,
):
    # Given a row running for 30 s whose RQ job Redis no longer has (restarted empty), and
    # whose worker is gone from RQ's registry too, but whose own heartbeat is fresh
    job = _running_row(attempts=1, max_attempts=3, silent_for=30)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    # When
    changed = reconcile()
    # Then it is not declared dead: the horse running it is still reporting
    assert changed == []
    job.refresh_from_db()
    assert (job.state, job.attempts, job.errors) == (JobState.RUNNING, 1, [])


def test_reconcile_leaves_a_job_alone_whose_rq_job_redis_lost_while_its_worker_heartbeats(
    redis_conn,
):
    # Given a row silent for 30 s whose RQ job Redis lost, on a worker heartbeating RQ
    job = _running_row(attempts=1, max_attempts=3, silent_for=30)
    _live_rq_worker(redis_conn, "gone-worker")
    # When
    changed = reconcile()
    # Then the worker is alive: the job is not declared dead
    assert changed == []
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.RUNNING, 1)


def test_reconcile_settles_a_job_whose_rq_job_and_worker_are_gone_and_row_silent(redis_conn):
    # Given a row whose RQ job Redis lost, whose worker is gone and whose row is silent 30 s
    job = _running_row(attempts=1, max_attempts=3, silent_for=30)
    # When
    changed = reconcile()
    # Then it is dead, and says why: the worker, not Redis's lost record
    assert [j.pk for j in changed] == [job.pk]
    job.refresh_from_db()
    assert job.state == JobState.RETRYING
    assert job.errors[0]["message"].startswith(
        "Worker died: worker gone-worker is gone from RQ's registry"
    )


def test_a_job_hash_rq_cannot_read_does_not_stop_the_reconcile_pass(redis_conn):
    # Given a row whose RQ job Redis lost, then got a late write back (only a "meta" field),
    # and, in the same pass, a row whose worker is dead
    unreadable = _running_row(attempts=1, max_attempts=3, silent_for=0)
    redis_conn.hset(f"rq:job:{unreadable.rq_job_id}", "meta", b"late progress")
    dead = _running_row(attempts=1, max_attempts=3, silent_for=120)
    Job.objects.filter(pk=dead.pk).update(rq_job_id="job-gone-dead")
    # When
    changed = reconcile()
    # Then the dead one is settled, and the one whose horse still reports is left alone
    assert [j.pk for j in changed] == [dead.pk]
    assert Job.objects.get(pk=unreadable.pk).state == JobState.RUNNING


def test_a_progress_write_does_not_put_back_an_rq_job_redis_lost(redis_conn, token):
    from rq.job import Job as RQJob

    from jobs.context import JobContext

    # Given a running job whose RQ job Redis lost (restarted empty)
    job = enqueue("test_noop", payload={"token": token}, trigger="command")
    rq_job = RQJob.fetch(Job.objects.get(pk=job.pk).rq_job_id, connection=redis_conn)
    claimed, _ = claim(job.pk, worker_name="w@host:1", rq_job_id=rq_job.id)
    redis_conn.flushall()
    # When the handler reports progress
    JobContext(claimed, rq_job).set_progress(50, "half")
    # Then the ledger has it and Redis has no unreadable half of a job
    assert Job.objects.get(pk=job.pk).progress == 50
    assert not redis_conn.exists(rq_job.key)


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


def test_a_sync_job_running_in_process_is_not_declared_dead_by_reconcile(redis_conn, token):
    # Given a --sync job (never handed to RQ) that has been running for 10 s, heartbeat fresh
    job = enqueue(
        "test_reconcile_inside",
        payload={"token": token},
        trigger="command",
        dispatch_on_commit=False,
    )
    # When reconcile() runs while it is still running (the handler calls it)
    job = run_inline(job)
    # Then reconcile left it alone: it ran once, completed on its first attempt
    assert job.result == {"reconciled": [], "state_during_run": JobState.RUNNING}
    assert job.state == JobState.COMPLETED
    assert job.attempts == 1
    assert job.errors == []
    assert redis_conn.get(runs_key(token)) == b"1"
    # and no worker was sent a copy of it
    assert recompute_queue_length() == 0
    assert job.rq_job_id.startswith("inline-")


def test_reconcile_judges_an_inline_run_only_by_its_heartbeat(redis_conn):
    # Given an inline run whose process went silent for longer than the stale limit
    job = _running_row(attempts=1, max_attempts=3, silent_for=120)
    Job.objects.filter(pk=job.pk).update(
        rq_job_id=f"inline-{job.pk}-1", worker_name="inline@gone:1"
    )
    # and one that is silent for 40 s (longer than two heartbeats, within the limit)
    quiet = _running_row(attempts=1, max_attempts=3, silent_for=40)
    Job.objects.filter(pk=quiet.pk).update(
        rq_job_id=f"inline-{quiet.pk}-1", worker_name="inline@here:1"
    )
    # When
    changed = reconcile(stale_after=90)
    # Then only the stale one is settled as dead
    assert [j.pk for j in changed] == [job.pk]
    assert "no heartbeat for" in Job.objects.get(pk=job.pk).errors[0]["message"]
    assert Job.objects.get(pk=quiet.pk).state == JobState.RUNNING


def test_dispatching_a_job_again_while_its_delivery_waits_sends_nothing(redis_conn, token):
    # Given a committed job that was handed to RQ
    job = enqueue("test_noop", payload={"token": token}, trigger="signal")
    first_id = Job.objects.get(pk=job.pk).rq_job_id
    # When something dispatches it again (relay racing the on-commit dispatch, say)
    again = dispatch(job.pk)
    # Then nothing more is sent
    assert again is False
    assert recompute_queue_length() == 1
    assert Job.objects.get(pk=job.pk).rq_job_id == first_id


def test_every_delivery_of_a_row_gets_its_own_rq_id(redis_conn, run_burst, token):
    # Given a job that fails once and is retried (two deliveries of one row)
    job = enqueue("test_flaky", payload={"token": token, "fail_times": 1}, trigger="signal")
    first_id = Job.objects.get(pk=job.pk).rq_job_id
    # When
    run_burst()
    # Then the retry went out under a different RQ id, and the job completed on attempt 2
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job.attempts == 2
    assert job.rq_job_id != first_id
    assert job.rq_job_id.startswith(f"job-{job.pk}-2-")


def test_concurrent_relays_send_each_waiting_job_once(redis_conn, run_burst, token):
    # Given ten jobs whose dispatch failed a minute ago (Redis was down at commit)
    jobs = [
        enqueue(
            "test_noop",
            payload={"token": f"{token}-{n}"},
            trigger="signal",
            dispatch_on_commit=False,
        )
        for n in range(10)
    ]
    Job.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    # When four relays run at the same moment (workers' passes, cron, an operator)
    barrier = threading.Barrier(4)
    sent, errors = [], []

    def one_relay():
        try:
            barrier.wait()
            sent.append(relay())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one_relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then each job was sent exactly once, and each ran once
    assert errors == []
    assert sum(sent) == 10
    assert recompute_queue_length() == 10
    run_burst()
    for n, job in enumerate(jobs):
        job.refresh_from_db()
        assert job.state == JobState.COMPLETED
        assert job.attempts == 1
        assert redis_conn.get(runs_key(f"{token}-{n}")) == b"1"


def test_a_skipped_duplicate_copy_does_not_make_reconcile_kill_the_live_run(
    redis_conn, run_burst, token
):
    # Given a job being run by a worker for 10 s under its RQ id, heartbeat fresh
    job = enqueue("test_noop", payload={"token": token}, trigger="signal")
    rq_id = Job.objects.get(pk=job.pk).rq_job_id
    running, _ = claim(job.pk, worker_name="busy-worker", rq_job_id=rq_id)
    assert running is not None
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=10))
    # and a second copy under the same RQ id reaches another worker, which skips it (RQ then
    # marks that id finished)
    django_rq.get_queue("bundle-recompute").enqueue(
        "jobs.runner.perform", str(job.pk), job_id=rq_id
    )
    run_burst()
    assert redis_conn.get(runs_key(token)) is None
    # When reconcile runs
    changed = reconcile()
    # Then the live run is left alone
    assert changed == []
    job.refresh_from_db()
    assert job.state == JobState.RUNNING
    assert job.errors == []


def test_reconcile_still_trusts_rq_when_the_rows_own_delivery_failed(redis_conn, run_burst):
    # Given a running row whose own delivery RQ marked failed (the horse died, no callback)
    job = _running_row(attempts=1, max_attempts=3, silent_for=20)
    queue = django_rq.get_queue("bundle-recompute")
    rq_job = queue.enqueue("tests.jobs.kinds.noop", job_id=f"job-{job.pk}-1-abcdef12")
    rq_job.set_status("failed")
    Job.objects.filter(pk=job.pk).update(rq_job_id=rq_job.id)
    # When
    changed = reconcile()
    # Then it is settled as dead at once (no need to wait for the stale limit)
    assert [j.pk for j in changed] == [job.pk]
    assert "RQ marked job" in Job.objects.get(pk=job.pk).errors[0]["message"]


def _hold_reconcile_lock(redis_conn):
    from jobs.maintenance.ledger_pass import RECONCILE_LOCK_KEY

    lock = redis_conn.lock(RECONCILE_LOCK_KEY, timeout=60, thread_local=False)
    assert lock.acquire(blocking=False)
    return lock


def _waiting_row(token: str) -> Job:
    job = enqueue("test_noop", payload={"token": token}, trigger="signal", dispatch_on_commit=False)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    return job


def _dispatched(job: Job) -> bool:
    return Job.objects.get(pk=job.pk).dispatched_at is not None


@override_settings(
    JOBS_SCHEDULES=[{"id": "relay-and-reconcile", "cron": "* * * * *", "kind": "relay"}]
)
def test_cron_relay_command_and_worker_pass_share_one_lock(redis_conn, token):
    from jobs.scheduling.fire import fire
    from jobs.worker import JobsSimpleWorker

    # Given a job waiting for the relay, and another pass holding the ledger lock
    job = _waiting_row(token)
    lock = _hold_reconcile_lock(redis_conn)
    worker = JobsSimpleWorker([django_rq.get_queue("bundle-recompute")], connection=redis_conn)
    # When the cron entry, the command and a worker's maintenance pass come by
    outcome = fire("relay-and-reconcile")
    with pytest.raises(CommandError, match="another relay/reconcile pass"):
        call_command("jobs", "relay", "--lock-timeout", "0", stdout=StringIO())
    worker.run_maintenance_tasks()
    # Then none of them touched the ledger
    assert outcome["relayed"] == 0 and outcome["skipped"]
    assert not _dispatched(job)
    assert recompute_queue_length() == 0
    # and once the lock is free, each of them does the pass
    lock.release()
    assert fire("relay-and-reconcile")["relayed"] == 1
    assert _dispatched(job)
    for run in (
        lambda: call_command("jobs", "relay", stdout=StringIO()),
        lambda: JobsSimpleWorker(
            [django_rq.get_queue("bundle-recompute")], connection=redis_conn
        ).run_maintenance_tasks(),
    ):
        other = _waiting_row(f"{token}-{id(run)}")
        redis_conn.delete("jobs:reconcile-due")  # the workers' once-a-minute turn
        run()
        assert _dispatched(other)
    assert not redis_conn.exists("jobs:reconcile-lock")
