"""The "N jobs queued" answer links to exactly those jobs, with a URL a server accepts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from jobs.admin.links import MAX_IDS_IN_LINK, jobs_queued_message
from jobs.models import Job

pytestmark = pytest.mark.django_db


def make_job(**fields) -> Job:
    fields = {"queue": "bundle-bulk-operation", "kind": "bulk_batch", "trigger": "admin", **fields}
    return Job.objects.create(**fields)


def test_a_few_jobs_link_to_the_list_filtered_by_what_caused_them():
    # Issue 12: a short filter by cause (the jobs and what they queue), not an id__in list.
    jobs = [make_job() for _ in range(3)]
    message = jobs_queued_message(jobs, what="Recompute")
    assert "3 jobs queued (3 bulk_batch)" in message
    assert "id__in=" not in message and "caused_by=" in message
    for job in jobs:
        assert str(job.pk) in message


def test_the_link_lists_the_jobs_and_the_children_they_queue_later(admin_client):
    # Given a save that queued a fan-out, which (once run) queued two batches
    fanout = make_job(kind="fanout", target_label="SKU-1")
    message = jobs_queued_message([fanout], what="Saved")
    assert "1 job queued (fanout: SKU-1)" in message
    batches = [make_job(kind="recompute_batch", parent=fanout) for _ in range(2)]
    make_job(kind="recompute_batch")  # someone else's
    # When the operator follows the link
    href = message.split('href="')[1].split('"')[0].replace("&amp;", "&")
    assert len(href) < 100
    page = admin_client.get(href)
    # Then the list holds the fan-out and its batches, and says what it filters by
    listed = {str(j.pk) for j in page.context["cl"].result_list}
    assert listed == {str(fanout.pk), *(str(b.pk) for b in batches)}
    assert f"{str(fanout.pk)[:8]} and the jobs it queued" in page.content.decode()


def test_a_junk_caused_by_filter_is_refused_like_any_junk_filter(admin_client):
    response = admin_client.get(reverse("admin:jobs_job_changelist") + "?caused_by=zzz")
    assert response.status_code == 302 and response.url.endswith("?e=1")


def test_a_large_bulk_job_links_to_its_parent_page_not_a_huge_url():
    # Given a bulk parent with more batch jobs than a URL should list
    parent = make_job(kind="bulk_operation")
    children = [make_job(parent=parent) for _ in range(MAX_IDS_IN_LINK + 10)]
    # When the admin answers
    message = jobs_queued_message([parent, *children], what="Recompute")
    # Then it counts them all and links to the parent's page, which lists the batches
    assert f"{len(children) + 1} jobs queued" in message
    assert reverse("admin:jobs_job_change", args=[parent.pk]) in message
    assert "id__in=" not in message
    assert len(message) < 1000


def test_many_unrelated_jobs_link_to_a_short_filter_not_every_id():
    # Issue 12: 100 ids made a 3.9 KB URL. The filter (created-at window + trigger) lists
    # exactly them: tests/admin/test_signal_door_user.py opens it.
    jobs = [make_job() for _ in range(MAX_IDS_IN_LINK + 1)]
    message = jobs_queued_message(jobs, what="Reindex")
    assert f"{len(jobs)} jobs queued" in message
    assert "id__in=" not in message
    assert "created_at__gte=" in message and "trigger__exact=admin" in message
    assert len(message) < 600
