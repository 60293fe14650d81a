"""The forking worker's share of the runner: it claims the row before the fork and records what
the horse reports after it (``jobs.runner.claim_for_horse`` / ``settle_after_horse``)."""

from __future__ import annotations

import os
import stat
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone
from rq.job import Job as RQJob
from rq.results import Result

from jobs.enqueue import enqueue
from jobs.maintenance.reconcile import reconcile
from jobs.models import Job, JobState
from jobs.runner import SETTLED_BY_WORKER, claim_for_horse, settle_after_horse
from jobs.runner.handover import perform_handed_over
from tests.jobs.conftest import wait_until
from tests.jobs.kinds import runs_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def _delivery(job: Job, redis_conn) -> RQJob:
    rq_id = Job.objects.values_list("rq_job_id", flat=True).get(pk=job.pk)
    return RQJob.fetch(rq_id, connection=redis_conn)


def test_the_worker_claims_and_the_horse_reports_and_the_worker_records(redis_conn, token):
    # Given a dispatched job
    job = enqueue("test_noop", payload={"token": token}, trigger="admin")
    rq_job = _delivery(job, redis_conn)
    # When the worker claims it before forking
    handover = claim_for_horse(rq_job, worker_name="w@host:1")
    # Then the row is running, attempt 1, under this delivery and worker
    row = Job.objects.get(pk=job.pk)
    assert handover is not None and handover.job is not None
    assert (row.state, row.attempts, row.worker_name) == (JobState.RUNNING, 1, "w@host:1")
    assert row.rq_job_id == rq_job.id
    # and the horse will report into a file only this user can read or write
    assert stat.S_IMODE(os.stat(handover.report_path).st_mode) == 0o600
    # When the horse runs the handler (here, in this process), it reports and records nothing
    summary = perform_handed_over(handover, rq_job)
    assert summary[SETTLED_BY_WORKER] is True and summary["outcome"] == "ok"
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING
    assert redis_conn.get(runs_key(token)) == b"1"
    # and the worker, once the horse is gone, records the reported result
    settled = settle_after_horse(handover, how_it_ended="ended")
    row = Job.objects.get(pk=job.pk)
    assert settled.state == row.state == JobState.COMPLETED
    assert row.result == {"ok": True, "payload": {"token": token}}
    assert row.progress == 100 and row.errors == []
    assert not os.path.exists(handover.report_path)


def test_a_horse_that_reported_nothing_is_a_failed_attempt_saying_how_it_ended(redis_conn, token):
    # Given a job (3 attempts) claimed by the worker, whose horse died before reporting
    job = enqueue("test_always_fails", payload={"token": token}, trigger="admin")
    handover = claim_for_horse(_delivery(job, redis_conn), worker_name="w@host:1")
    assert handover is not None
    # When the worker settles it
    settle_after_horse(handover, how_it_ended="killed (signal 9)")
    # Then the attempt failed with the reason, and a retry is on its way
    row = Job.objects.get(pk=job.pk)
    assert row.state == JobState.RETRYING and row.attempts == 1
    assert row.errors[0]["message"] == (
        "Worker died: work horse killed (signal 9) while running attempt 1"
    )
    assert row.errors[0]["attempt"] == 1


def test_a_report_cut_short_counts_as_no_report(redis_conn, token):
    # Given a worker-claimed job whose horse died halfway through writing its report
    job = enqueue("test_always_fails", payload={"token": token}, trigger="admin")
    handover = claim_for_horse(_delivery(job, redis_conn), worker_name="w@host:1")
    with open(handover.report_path, "w", encoding="utf-8") as report:
        report.write('{"status": "ok", "res')
    # When the worker settles it
    settle_after_horse(handover, how_it_ended="killed (signal 9)")
    # Then it is a failed attempt, not a completion, and the file is gone
    row = Job.objects.get(pk=job.pk)
    assert row.state == JobState.RETRYING and row.errors[0]["message"].startswith("Worker died")
    assert not os.path.exists(handover.report_path)


def test_an_attempt_reconcile_settled_first_is_left_alone(redis_conn, token):
    # Given a worker-claimed row that someone else settled meanwhile (reconcile, a cancel)
    job = enqueue("test_noop", payload={"token": token}, trigger="admin")
    handover = claim_for_horse(_delivery(job, redis_conn), worker_name="w@host:1")
    Job.objects.filter(pk=job.pk).update(state=JobState.FAILED, settled_at=timezone.now())
    perform_handed_over(handover, _delivery(job, redis_conn))
    # When the worker records the horse's report
    settle_after_horse(handover, how_it_ended="ended")
    # Then the row keeps what the other side wrote
    row = Job.objects.get(pk=job.pk)
    assert row.state == JobState.FAILED and row.result is None


def test_a_row_that_cannot_be_claimed_at_once_is_left_to_the_horse(redis_conn, token):
    # Given a dispatched job whose row another transaction holds (locked / SQLite's write lock)
    job = enqueue("test_noop", payload={"token": token}, trigger="admin")
    rq_job = _delivery(job, redis_conn)
    locked, release, outcome = threading.Event(), threading.Event(), {}

    def hold_the_row():
        try:
            with transaction.atomic():
                Job.objects.select_for_update().filter(pk=job.pk).update(reason="held")
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(10)
        # When the worker tries to claim it
        started = time.monotonic()
        outcome["handover"] = claim_for_horse(rq_job, worker_name="w@host:1")
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    # Then it did not wait for the lock, and left the row untouched for the horse's own claim
    assert outcome["handover"] is None
    assert waited < 5
    row = Job.objects.get(pk=job.pk)
    assert row.state == JobState.PENDING and row.attempts == 0


def test_reconcile_leaves_a_run_whose_worker_is_recording_its_outcome(redis_conn, token):
    # Given a job whose horse finished (RQ marks the delivery finished, with a result saying
    # the worker records the outcome), started 10 s ago, its live worker about to record it
    job = enqueue("test_noop", payload={"token": token}, trigger="admin")
    rq_job = _delivery(job, redis_conn)
    handover = claim_for_horse(rq_job, worker_name="w@host:1")
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=10))
    summary = perform_handed_over(handover, rq_job)
    rq_job.set_status("finished")
    Result.create(rq_job, Result.Type.SUCCESSFUL, ttl=60, return_value=summary)
    # When reconcile runs in that moment
    changed = reconcile()
    # Then the run is not taken for dead
    assert changed == []
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING
    # and the worker's record stands
    settle_after_horse(handover, how_it_ended="ended")
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED


def test_a_handler_in_a_forked_horse_gets_a_connection_of_its_own(worker_process, redis_conn):
    # Given a real forking worker
    worker = worker_process()
    # When a job whose handler reads the ledger runs there
    job = enqueue("test_reads_its_row", payload={}, trigger="admin")
    wait_until(lambda: Job.objects.get(pk=job.pk).is_settled, timeout=60)
    # Then it completed on attempt 1, in a horse that was handed no open connection, and it
    # saw its row running (claimed by the worker before the fork)
    row = Job.objects.get(pk=job.pk)
    assert row.state == JobState.COMPLETED and row.attempts == 1, row.errors
    assert row.result["inherited_connection"] is False
    assert row.result["state"] == JobState.RUNNING and row.result["attempts"] == 1
    assert row.result["pid"] != worker.pid


def test_the_forking_worker_keeps_its_connection_across_jobs_and_horses_open_their_own(
    redis_conn,
):
    # Given ledger jobs, some of whose handlers query the database in their horse, and a
    # forking worker run in this very process (so its connections can be watched)
    import django_rq
    from django.db import connection
    from django.db.backends.signals import connection_created

    from jobs.worker import JobsWorker
    from tests.jobs.kinds import QUEUE

    jobs = [
        enqueue("test_reads_its_row" if n % 2 else "test_noop", payload={}, trigger="admin")
        for n in range(6)
    ]
    opened = []

    def count(sender, connection, **kwargs):
        opened.append(os.getpid())

    connection_created.connect(count)
    try:
        # When it drains the queue
        worker = JobsWorker([django_rq.get_queue(QUEUE)], connection=redis_conn)
        worker.work(burst=True, logging_level="WARNING")
    finally:
        connection_created.disconnect(count)
    # Then every job completed, claimed and recorded by the worker on one connection (opened
    # after the start-up maintenance pass closed the one it had; never closed for a fork) ...
    rows = {r.pk: r for r in Job.objects.filter(pk__in=[j.pk for j in jobs])}
    assert len(rows) == len(jobs)
    assert all(r.state == JobState.COMPLETED and r.attempts == 1 for r in rows.values()), [
        (r.kind, r.state, r.errors) for r in rows.values()
    ]
    assert opened.count(os.getpid()) <= 1, f"the worker opened {opened.count(os.getpid())}"
    # ... while each horse that queried opened a connection of its own and saw its row running
    readers = [rows[j.pk].result for j in jobs if j.kind == "test_reads_its_row"]
    assert readers and all(
        r["inherited_connection"] is False and r["state"] == JobState.RUNNING for r in readers
    )
    assert {r["pid"] for r in readers}.isdisjoint({os.getpid()})
    # and the database is intact
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA integrity_check")
            assert cursor.fetchone() == ("ok",)
