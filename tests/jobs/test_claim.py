"""The runner's claim: one UPDATE … RETURNING, read back as a SELECT would; a locked row waits."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from jobs.runner.claim import claim
from jobs.target_types import Target
from tests.support import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def test_a_claim_returns_the_row_exactly_as_a_fresh_select_reads_it(redis_conn):
    # Given a pending row with JSON, a user, a target, a dedup key and times
    user = get_user_model().objects.create_user(username="claimer", password="x")
    job = enqueue(
        "test_noop",
        payload={"ids": [1, 2], "text": "é", "nested": {"n": None, "f": 1.5}},
        trigger="admin",
        requested_by=user,
        target=Target("bundle", "7", "Kit 7"),
        dedup_key="claim-test",
        dispatch_on_commit=False,
    )
    # When it is claimed
    claimed, why = claim(job.pk, worker_name="w@host:1", rq_job_id="")
    # Then it is running, attempt 1, and every field equals what a SELECT reads
    assert why == ""
    fresh = Job.objects.get(pk=job.pk)
    assert claimed.state == JobState.RUNNING and claimed.attempts == 1
    for field in Job._meta.concrete_fields:
        assert getattr(claimed, field.attname) == getattr(fresh, field.attname), field.name
    assert claimed.rq_job_id.startswith("inline-") and claimed.rq_job_id.endswith("-1")
    assert claimed.requested_by == user
    # and a second claim of the same row finds it taken
    again, why = claim(job.pk, worker_name="w@host:2", rq_job_id="")
    assert again is None and why == "state is running"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL only")
def test_a_claim_of_a_row_locked_by_another_transaction_waits_for_it_then_claims(redis_conn):
    # Given a pending row that another transaction holds locked (a merge into it, a cancel)
    job = enqueue("test_noop", payload={}, trigger="admin", dispatch_on_commit=False)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                Job.objects.select_for_update().get(pk=job.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    outcome: list = []

    def run_claim() -> None:
        try:
            outcome.append(claim(job.pk, worker_name="w@host:1", rq_job_id=""))
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(timeout=30)
    claimer = threading.Thread(target=run_claim)
    claimer.start()
    try:
        # When the claim runs into the lock: the no-wait statement skipped the row, so the
        # claim waits on the lock inside a transaction (which a killed horse never commits)
        wait_until(_waiting_on_a_lock)
        assert not outcome
        assert Job.objects.get(pk=job.pk).state == JobState.PENDING
    finally:
        release.set()
        holder.join(timeout=30)
        claimer.join(timeout=30)
    # Then once the lock is gone the claim goes through
    claimed, why = outcome[0]
    assert why == "" and claimed.state == JobState.RUNNING
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING


def _waiting_on_a_lock() -> bool:
    """A claim UPDATE waits on a row lock, and it is not the no-wait one (that one skips)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'UPDATE%%jobs_job%%' AND query NOT LIKE '%%SKIP LOCKED%%'"
        )
        return cursor.fetchone()[0] > 0
