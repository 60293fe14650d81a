"""Every door asks the same way and leaves the same trace: a schedule and the admin's button
make one job; retry from the admin, GraphQL and ``manage.py jobs`` writes one audit entry."""

from __future__ import annotations

import io

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.urls import reverse

from jobs.enqueue import enqueue
from jobs.models import Job, JobState, JobTarget
from jobs.scheduling.fire import fire
from tests.admin.conftest import client_for, make_user
from tests.api.conftest import post_graphql

RETRY = "mutation($id: ID!) { retryJob(id: $id) { jobId state } }"


@pytest.fixture
def superuser(db):
    user = make_user(superuser=True)
    user.username = "admin"
    user.save()
    return user


def _failed_job() -> Job:
    job = enqueue("reindex", payload={"bundle_ids": []}, trigger="signal", dispatch_on_commit=False)
    Job.objects.filter(pk=job.pk).update(state=JobState.FAILED, attempts=1)
    return Job.objects.get(pk=job.pk)


def _audit(job: Job) -> list[tuple]:
    return [
        (e.user.username, e.action_flag, e.change_message, e.object_repr)
        for e in LogEntry.objects.filter(object_id=str(job.pk)).select_related("user")
    ]


@pytest.mark.django_db(transaction=True)
def test_nightly_schedule_fired_while_the_admins_check_active_is_pending_makes_one_job(
    superuser, redis_conn
):
    # Given the admin's "Run consistency check (active)" button pressed: a pending job
    admin = client_for(superuser)
    admin.post(reverse("admin:jobs_job_quick", args=["check-active"]))
    [pressed] = Job.objects.filter(kind="consistency_check")
    assert pressed.state == JobState.PENDING
    # When the nightly schedule fires before a worker started it
    fire("nightly-consistency-check")
    # Then there is still one pending check, with the same dedup key and target, merged once
    [job] = Job.objects.filter(kind="consistency_check")
    assert job.pk == pressed.pk and job.state == JobState.PENDING
    assert job.merged_count == 1
    assert job.schedule_id == "nightly-consistency-check"
    assert (job.target_type, job.target_id) == ("scope", "active")
    assert list(JobTarget.objects.filter(job=job).values_list("target_type", "target_id")) == [
        ("scope", "active")
    ]
    assert job.payload == {"scope": "active", "fix": False, "notify_admins": True}


@pytest.mark.django_db(transaction=True)
def test_the_nightly_schedule_first_then_the_button_also_makes_one_job(superuser, redis_conn):
    fire("nightly-consistency-check")
    client_for(superuser).post(reverse("admin:jobs_job_quick", args=["check-active"]))
    [job] = Job.objects.filter(kind="consistency_check")
    assert job.merged_count == 1 and job.requested_by is None  # the first asker stays
    assert (job.target_type, job.target_id) == ("scope", "active")


@pytest.mark.django_db
def test_retry_from_the_command_with_user_writes_the_admin_buttons_audit_entry(superuser):
    # Given two failed jobs, one retried with the admin's button, one from the shell
    by_button, by_command = _failed_job(), _failed_job()
    client_for(superuser).post(reverse("admin:jobs_job_retry", args=[by_button.pk]))
    call_command("jobs", "retry", str(by_command.pk), "--user", "admin", stdout=io.StringIO())
    # Then both rows and both audit entries say the same
    assert _audit(by_button) == _audit(by_command) == [("admin", 2, "Retried", "reindex (pending)")]
    by_button.refresh_from_db()
    by_command.refresh_from_db()
    assert by_button.state == by_command.state == JobState.PENDING
    assert by_button.last_action_by == by_command.last_action_by == superuser


@pytest.mark.django_db
def test_retry_over_graphql_writes_the_admin_buttons_audit_entry(superuser, client):
    by_button, by_graphql = _failed_job(), _failed_job()
    client_for(superuser).post(reverse("admin:jobs_job_retry", args=[by_button.pk]))
    client.force_login(superuser)
    response = post_graphql(client, RETRY, {"id": str(by_graphql.pk)})
    assert not response.errors, response.errors
    assert _audit(by_button) == _audit(by_graphql) == [("admin", 2, "Retried", "reindex (pending)")]


@pytest.mark.django_db
def test_cancel_from_every_door_writes_the_same_entry(superuser, client):
    by_button, by_graphql, by_command = (
        enqueue("reindex", payload={"bundle_ids": []}, trigger="signal", dispatch_on_commit=False)
        for _ in range(3)
    )
    client_for(superuser).post(reverse("admin:jobs_job_cancel", args=[by_button.pk]))
    client.force_login(superuser)
    post_graphql(client, "mutation($id: ID!) { cancelJob(id: $id) { jobId } }",
                 {"id": str(by_graphql.pk)})  # fmt: skip
    call_command("jobs", "cancel", str(by_command.pk), "--user", "admin", stdout=io.StringIO())
    entries = [
        [(u, flag, msg) for u, flag, msg, _ in _audit(j)]
        for j in (by_button, by_graphql, by_command)
    ]
    assert entries == [[("admin", 2, "Cancelled")]] * 3


@pytest.mark.django_db
def test_retry_from_the_command_without_user_records_the_os_user_and_checks_nothing():
    job = _failed_job()
    out = io.StringIO()
    call_command("jobs", "retry", str(job.pk), stdout=out)
    job.refresh_from_db()
    assert job.state == JobState.PENDING
    assert (
        job.progress_message.startswith("Retry requested by ") and "(shell)" in job.progress_message
    )
    assert not LogEntry.objects.exists()  # no Django user to name


@pytest.mark.django_db
def test_the_command_refuses_a_user_without_the_permission_and_changes_nothing():
    from django.core.management.base import CommandError

    job = _failed_job()
    clerk = make_user(staff=True)
    with pytest.raises(CommandError, match="jobs.retry_job"):
        call_command("jobs", "retry", str(job.pk), "--user", clerk.username, stdout=io.StringIO())
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert not LogEntry.objects.exists()
