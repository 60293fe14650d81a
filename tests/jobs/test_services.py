"""Ledger services that the doors share: deleting settled jobs."""

from __future__ import annotations

import uuid

import pytest

from jobs.models import Job, JobState
from jobs.services import JobNotFound, jobs_delete_settled

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

    from jobs.services import jobs_purge

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
