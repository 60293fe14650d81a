"""Ledger services that the doors share: deleting settled jobs."""

from __future__ import annotations

import uuid

import pytest

from jobs.errors import JobNotFound
from jobs.models import Job, JobState
from jobs.services import jobs_delete_settled

pytestmark = [pytest.mark.django_db(transaction=True)]


def row(state: str, parent: Job | None = None) -> Job:
    return Job.objects.create(
        queue="bundle-bulk-operation", kind="test_noop", trigger="admin", state=state, parent=parent
    )


def test_delete_settled_keeps_a_parent_whose_child_is_still_running():
    # Given a completed bulk parent with one child still running, and a settled stand-alone job
    parent = row(JobState.FAILED)
    running_child = row(JobState.RUNNING, parent=parent)
    done = row(JobState.COMPLETED)
    # When both settled rows are chosen for deletion
    deleted = jobs_delete_settled(job_ids=[parent.pk, done.pk])
    # Then the parent (and with it the running child) is kept
    assert deleted == 1
    assert Job.objects.filter(pk__in=[parent.pk, running_child.pk]).count() == 2
    assert not Job.objects.filter(pk=done.pk).exists()


def test_delete_settled_removes_a_settled_parent_with_its_settled_children_but_never_active_jobs():
    # Given
    parent = row(JobState.COMPLETED)
    children = [row(JobState.COMPLETED, parent=parent), row(JobState.CANCELLED, parent=parent)]
    waiting = row(JobState.PENDING)
    # When
    deleted = jobs_delete_settled(job_ids=[str(parent.pk), str(waiting.pk)])
    # Then the parent and its children are gone (3 rows), the pending job stays
    assert deleted == 3
    assert not Job.objects.filter(pk__in=[parent.pk, *(c.pk for c in children)]).exists()
    assert Job.objects.filter(pk=waiting.pk).exists()


def test_delete_settled_refuses_a_malformed_id_and_deletes_nothing():
    done = row(JobState.COMPLETED)
    with pytest.raises(JobNotFound, match="not a job id"):
        jobs_delete_settled(job_ids=[done.pk, "nope"])
    assert Job.objects.filter(pk=done.pk).exists()
    assert jobs_delete_settled(job_ids=[uuid.uuid4()]) == 0


def test_purge_keeps_an_old_settled_parent_whose_children_are_still_active():
    # Given two old settled parents: one with a running child, one with settled children
    from datetime import timedelta

    from django.utils import timezone

    from jobs.maintenance.prune import jobs_purge

    busy, done = row(JobState.COMPLETED), row(JobState.COMPLETED)
    running = row(JobState.RUNNING, parent=busy)
    finished = row(JobState.COMPLETED, parent=done)
    old = timezone.now() - timedelta(days=40)
    Job.objects.filter(pk__in=[busy.pk, done.pk, finished.pk]).update(settled_at=old)
    # When old jobs are purged
    deleted = jobs_purge(older_than_days=30)
    # Then the busy parent and its running child stay; the other parent goes with its child
    assert set(Job.objects.values_list("pk", flat=True)) == {busy.pk, running.pk}
    assert deleted == 2


def test_delete_settled_refuses_a_user_without_delete_job_and_deletes_nothing():
    from django.contrib.auth.models import User

    from jobs.errors import JobPermissionDenied
    from tests.support import grant

    viewer = grant(User.objects.create_user("viewer", is_staff=True), "jobs.view_job")
    done = row(JobState.COMPLETED)
    with pytest.raises(JobPermissionDenied, match="jobs.delete_job"):
        jobs_delete_settled(job_ids=[done.pk], user=viewer)
    assert Job.objects.filter(pk=done.pk).exists()


def test_delete_settled_writes_a_deletion_log_entry_per_deleted_job():
    from django.contrib.admin.models import DELETION, LogEntry
    from django.contrib.auth.models import User

    from tests.support import grant

    operator = grant(User.objects.create_user("op", is_staff=True), "jobs.delete_job")
    parent = row(JobState.COMPLETED)
    child = row(JobState.COMPLETED, parent=parent)
    kept = row(JobState.PENDING)
    jobs_delete_settled(job_ids=[parent.pk, kept.pk], user=operator)
    logged = LogEntry.objects.filter(user=operator, action_flag=DELETION)
    assert sorted(logged.values_list("object_id", flat=True)) == sorted(
        [str(parent.pk), str(child.pk)]
    )


@pytest.mark.redis
def test_retry_racing_an_enqueue_with_the_same_dedup_key_never_raises_integrity_error(
    monkeypatch,
):
    # Given a failed job with a dedup key, and no pending job with that key
    from django.db import transaction

    import jobs.services
    from jobs.services import job_retry

    failed = Job.objects.create(
        queue="bundle-recompute",
        kind="test_noop",
        trigger="admin",
        state=JobState.FAILED,
        dedup_key="race:key",
        attempts=1,
        max_attempts=1,
    )
    # When an enqueue with that key lands between the retry's look and its write (the race
    # made deterministic: the competing row is inserted just after the retry checked)
    real_now = jobs.services.timezone.now
    raced = []

    def now_after_a_racing_enqueue():
        if not raced:
            raced.append(None)  # before the insert: its own timestamps call now() too
            raced[0] = Job.objects.create(
                queue="bundle-recompute",
                kind="test_noop",
                trigger="admin",
                state=JobState.PENDING,
                dedup_key="race:key",
            )
        return real_now()

    monkeypatch.setattr(jobs.services.timezone, "now", now_after_a_racing_enqueue)
    with transaction.atomic():
        job = job_retry(job_id=failed.pk)
    monkeypatch.undo()
    # Then the retry went through on its own (no dedup key); the enqueue's row keeps the key
    assert raced, "the race was not staged"
    job.refresh_from_db()
    assert job.state == JobState.PENDING and job.dedup_key is None
    assert Job.objects.get(pk=raced[0].pk).dedup_key == "race:key"
