"""Error groups through real RQ: failures grouped by fingerprint; "retry all in this group"
and "discard all in this group" in System → Jobs → Errors, through the job services."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.urls import reverse

import tests.jobs.error_group_kinds  # noqa: F401 - registers test_fails_two_ways
from jobs.enqueue import enqueue
from jobs.error_groups.selectors import error_groups
from jobs.error_groups.services import error_group_retry
from jobs.errors import JobPermissionDenied
from jobs.models import Job, JobState
from tests.support import grant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

KIND = "test_fails_two_ways"


def fail_jobs(run_burst, *, timeouts: int, lookups: int) -> None:
    for n in range(timeouts):
        enqueue(KIND, payload={"n": n, "how": "timeout"}, trigger="command")
    for n in range(lookups):
        enqueue(KIND, payload={"n": n, "how": "lookup"}, trigger="command")
    run_burst(["bundle-recompute"])


def group_of(how: str):
    [group] = [g for g in error_groups() if how in g.sample_traceback]
    return group


@pytest.fixture
def operator(client):
    User = get_user_model()
    user = grant(
        User.objects.create_user("op", is_staff=True),
        "jobs.view_job",
        "jobs.retry_job",
        "jobs.delete_job",
    )
    client.force_login(user)
    return user


def test_200_failures_of_two_exceptions_make_two_groups_and_retry_all_retries_exactly_one(
    run_burst, client, operator
):
    # Given 200 failed jobs: 120 supplier timeouts, 80 missing variants (messages all differ)
    fail_jobs(run_burst, timeouts=120, lookups=80)
    assert Job.objects.filter(kind=KIND, state=JobState.FAILED).count() == 200
    # Then the Errors page shows two groups with their counts, kinds and a sample traceback
    groups = error_groups()
    assert sorted(g.count for g in groups) == [80, 120]
    timeouts, lookups = group_of("_call_supplier"), group_of("_lookup_variant")
    assert timeouts.exception == "SupplierTimeout" and lookups.exception == "KeyError"
    assert timeouts.kinds == [(KIND, 120)]
    assert timeouts.first_seen <= timeouts.last_seen
    page = client.get(reverse("admin:jobs_job_errors"))
    assert page.status_code == 200
    body = page.content.decode()
    assert timeouts.fingerprint in body and lookups.fingerprint in body
    assert "Retry all in this group" in body and "Sample traceback" in body
    # And the jobs list links to it
    assert (
        reverse("admin:jobs_job_errors")
        in client.get(reverse("admin:jobs_job_changelist")).content.decode()
    )

    # When the operator asks to retry the timeouts group: a confirmation with the count first
    url = reverse("admin:jobs_job_error_group_action", args=[timeouts.fingerprint, "retry"])
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "Yes, retry 120 jobs" in confirm.content.decode()
    assert Job.objects.filter(state=JobState.PENDING, kind=KIND).count() == 0  # GET changed nothing
    # ... and their handler now succeeds, then a worker runs them
    timeout_ids = set(
        Job.objects.filter(error_fingerprint=timeouts.fingerprint).values_list("pk", flat=True)
    )
    Job.objects.filter(pk__in=timeout_ids).update(
        payload={"n": 0, "how": "timeout", "succeed": True}
    )
    done = client.post(url, {"post": "yes"})
    assert done.status_code == 302
    retried = set(
        Job.objects.filter(kind=KIND, state=JobState.PENDING).values_list("pk", flat=True)
    )
    run_burst(["bundle-recompute"])

    # Then exactly that group's jobs ran again (attempt 2) and completed; the other group stays
    assert retried == timeout_ids
    assert (
        set(
            Job.objects.filter(kind=KIND, state=JobState.COMPLETED, attempts=2).values_list(
                "pk", flat=True
            )
        )
        == timeout_ids
    )
    assert Job.objects.filter(kind=KIND, state=JobState.FAILED).count() == 80
    assert [(g.fingerprint, g.count) for g in error_groups()] == [(lookups.fingerprint, 80)]
    # And each retried job has the service's audit entry, by the operator
    assert LogEntry.objects.filter(user=operator, change_message="Retried").count() == 120


def test_discard_all_in_a_group_deletes_only_that_group_through_the_service(
    run_burst, client, operator
):
    # Given
    fail_jobs(run_burst, timeouts=5, lookups=3)
    lookups = group_of("_lookup_variant")
    url = reverse("admin:jobs_job_error_group_action", args=[lookups.fingerprint, "discard"])
    assert "Yes, discard (delete) 3 jobs" in client.get(url).content.decode()
    # When
    client.post(url, {"post": "yes"})
    # Then the 3 are gone with a deletion entry each; the 5 timeouts stay
    assert Job.objects.filter(kind=KIND).count() == 5
    assert not Job.objects.filter(error_fingerprint=lookups.fingerprint).exists()
    assert LogEntry.objects.filter(user=operator, change_message__startswith="Deleted").count() == 3


def test_group_actions_need_the_permission_and_a_refusal_changes_nothing(run_burst, client):
    # Given a viewer without retry or delete permissions
    fail_jobs(run_burst, timeouts=2, lookups=0)
    group = group_of("_call_supplier")
    viewer = grant(get_user_model().objects.create_user("v", is_staff=True), "jobs.view_job")
    client.force_login(viewer)
    # When / then: the page shows, the actions are refused
    assert (
        "Retry all in this group"
        not in client.get(reverse("admin:jobs_job_errors")).content.decode()
    )
    for how in ("retry", "discard"):
        url = reverse("admin:jobs_job_error_group_action", args=[group.fingerprint, how])
        assert client.post(url, {"post": "yes"}).status_code == 403
    with pytest.raises(JobPermissionDenied):
        error_group_retry(fingerprint=group.fingerprint, user=viewer)
    assert Job.objects.filter(kind=KIND, state=JobState.FAILED).count() == 2


def test_the_action_is_post_only_with_csrf(run_burst, operator):
    from django.test import Client

    fail_jobs(run_burst, timeouts=1, lookups=0)
    group = group_of("_call_supplier")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    url = reverse("admin:jobs_job_error_group_action", args=[group.fingerprint, "retry"])
    assert strict.post(url, {"post": "yes"}).status_code == 403
    assert Job.objects.filter(kind=KIND, state=JobState.FAILED).count() == 1
