"""Cancel all matching, discard failed matching, pause / resume and Retry now from the admin:
the whole filtered set (not the page), a confirmation stating the count, permissions, CSRF."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from jobs.enqueue import enqueue
from jobs.models import Job, JobState
from jobs.pause import paused_queues
from tests.support import grant

pytestmark = [pytest.mark.django_db]


def _jobs(queue_kind: str, n: int, state: str) -> list[Job]:
    made = [enqueue(queue_kind, payload={"bundle_ids": [i], "s": state}, trigger="admin")
            for i in range(n)]  # fmt: skip
    Job.objects.filter(pk__in=[j.pk for j in made]).update(state=state)
    return made


@pytest.fixture
def operator(client):
    user = grant(
        User.objects.create_user("op", is_staff=True),
        "jobs.view_job", "jobs.cancel_job", "jobs.delete_job", "jobs.pause_queue",
    )  # fmt: skip
    client.force_login(user)
    return user


def test_cancel_all_matching_covers_the_whole_filtered_set_after_stating_the_count(
    client, operator
):
    # Given 60 pending reindex jobs (more than a page), 2 completed ones, a pending recompute
    pending = _jobs("reindex", 60, JobState.PENDING)
    _jobs("reindex", 2, JobState.COMPLETED)
    other = _jobs("recompute", 1, JobState.PENDING)
    url = reverse("admin:jobs_job_matching", args=["cancel"]) + "?queue=bundle-reindex"
    # When the operator asks, the page states the count and changes nothing yet
    page = client.get(url)
    assert "60 pending, retrying or running jobs match" in page.content.decode()
    assert Job.objects.filter(state=JobState.CANCELLED).count() == 0
    # When they confirm
    client.post(url, {"post": "yes"})
    # Then exactly those 60 are cancelled
    cancelled = set(Job.objects.filter(state=JobState.CANCELLED).values_list("pk", flat=True))
    assert cancelled == {j.pk for j in pending}
    assert Job.objects.get(pk=other[0].pk).state == JobState.PENDING


def test_discard_failed_matching_deletes_only_failed_jobs_of_the_filter(client, operator):
    failed = _jobs("reindex", 3, JobState.FAILED)
    kept = _jobs("reindex", 2, JobState.PENDING) + _jobs("recompute", 1, JobState.FAILED)
    url = reverse("admin:jobs_job_matching", args=["discard"]) + "?queue=bundle-reindex"
    assert "3 failed jobs match" in client.get(url).content.decode()
    client.post(url, {"post": "yes"})
    assert not Job.objects.filter(pk__in=[j.pk for j in failed]).exists()
    assert Job.objects.filter(pk__in=[j.pk for j in kept]).count() == 3


def test_matching_actions_need_their_permission(client):
    client.force_login(grant(User.objects.create_user("viewer", is_staff=True), "jobs.view_job"))
    job = _jobs("reindex", 1, JobState.PENDING)[0]
    for how in ("cancel", "discard"):
        url = reverse("admin:jobs_job_matching", args=[how])
        assert client.get(url).status_code == 403
        assert client.post(url, {"post": "yes"}).status_code == 403
    assert Job.objects.get(pk=job.pk).state == JobState.PENDING


@pytest.mark.redis
def test_pause_and_resume_buttons_need_the_permission_and_post(client, operator):
    url = reverse("admin:jobs_job_queue_pause", args=["bundle-reindex", "pause"])
    assert client.get(url).status_code == 405  # a link can never pause a queue
    assert client.post(url).status_code == 302
    assert paused_queues() == {"bundle-reindex"}
    strip = client.get(reverse("admin:jobs_job_overview")).content.decode()
    assert 'data-queue="bundle-reindex" data-paused="yes"' in strip
    client.force_login(grant(User.objects.create_user("viewer", is_staff=True), "jobs.view_job"))
    resume = reverse("admin:jobs_job_queue_pause", args=["bundle-reindex", "resume"])
    assert client.post(resume).status_code == 403
    assert paused_queues() == {"bundle-reindex"}


def test_the_pause_form_is_csrf_protected(operator):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    url = reverse("admin:jobs_job_queue_pause", args=["bundle-reindex", "pause"])
    assert strict.post(url).status_code == 403


def test_an_active_job_has_no_delete_only_cancel(client, operator):
    job = _jobs("reindex", 1, JobState.RETRYING)[0]
    grant(operator, "jobs.delete_job")
    page = client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert reverse("admin:jobs_job_delete", args=[job.pk]) not in page
    assert (
        client.post(reverse("admin:jobs_job_delete", args=[job.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert Job.objects.filter(pk=job.pk).exists()
