"""Seconds everywhere: every job time an admin page shows is one format — relative ("3 s ago",
"retry in 27 s") with the exact time, seconds included, on hover — or, in the job's timeline
and audit log, that exact time itself. No page falls back to Django's "Dec. 1, 2026, 9:04 p.m."."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job, JobState, Schedule
from tests.admin.conftest import failed_job, make_job
from tests.factories import make_bundle

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

EXACT = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
SPAN = r"(?:\d+ s|\d+ min \d\d s|\d+ h \d\d min|\d+ d \d\d h)"
RELATIVE = rf"{SPAN} ago|(?:in|retry in) {SPAN}"
TIME = re.compile(r"<time([^>]*)>([^<]*)</time>")
# Django's own DATETIME_FORMAT / TIME_FORMAT: what a plain datetime field would show.
DJANGO_DEFAULT = re.compile(r"\b[ap]\.m\.|\b(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\. \d")


def times_on(html: str) -> list[tuple[str, str]]:
    """(attributes, text) of every <time> element."""
    return TIME.findall(html)


def assert_one_format(html: str, url: str) -> int:
    found = times_on(html)
    for attrs, text in found:
        title = re.search(r'title="([^"]*)"', attrs)
        if "job-rel" in attrs:
            assert re.fullmatch(RELATIVE, text), (url, attrs, text)
            assert title and re.fullmatch(EXACT, title.group(1)), (url, attrs)
        else:
            assert re.fullmatch(EXACT, text), (url, attrs, text)
    assert not DJANGO_DEFAULT.search(html), (url, DJANGO_DEFAULT.search(html))
    return len(found)


def test_the_job_page_shows_every_time_with_seconds_and_relative(admin_client):
    # Given a job waiting 27 s for its third attempt, after two failed ones
    job = failed_job()
    Job.objects.filter(pk=job.pk).update(
        state=JobState.RETRYING,
        settled_at=None,
        dispatched_at=timezone.now() - timedelta(seconds=100),
        heartbeat_at=timezone.now() - timedelta(seconds=61),
        next_attempt_at=timezone.now() + timedelta(seconds=27),
        max_attempts=3,
    )
    url = reverse("admin:jobs_job_change", args=[job.pk])
    # When the operator opens it
    html = admin_client.get(url).content.decode()
    # Then header, times, errors per attempt and timeline all carry seconds, in one format
    assert assert_one_format(html, url) >= 10
    header = html.split('class="module jobs-header"')[1].split("</section>")[0]
    assert re.search(r">3 min 0\d s ago</time>", header)  # created
    assert re.search(r">retry in 2\d s</time>", header)  # next attempt
    errors = html.split('class="module aligned jobs-attempts"')[1].split("</fieldset>")[0]
    assert len(re.findall(rf'<time class="job-rel"[^>]*>{SPAN} ago</time>', errors)) == 2
    heartbeat = html.split("field-heartbeat_time")[1].split("</time>")[0]
    assert re.search(r'title="' + EXACT + r'"[^>]*>(?:6\d|1\d\d) s ago$', heartbeat), heartbeat
    timeline = html.split('class="module aligned jobs-timeline"')[1].split("</fieldset>")[0]
    assert len(re.findall(EXACT, timeline)) >= 4


def test_lists_and_pages_that_show_job_times_use_the_same_format(admin_client):
    # Given a bundle recomputed, a job on its page, a schedule that ran it
    bundle = make_bundle(name="Times kit")
    job = make_job(target_id=str(bundle.pk))
    Schedule.objects.filter(name="nightly-consistency-check").update(
        last_job=job, last_run_at=timezone.now(), next_run_at=timezone.now() + timedelta(hours=2)
    )
    nightly = Schedule.objects.get(name="nightly-consistency-check")
    pages = {
        reverse("admin:jobs_job_changelist"): 1,
        reverse("admin:bundles_bundle_changelist"): 1,
        reverse("admin:bundles_bundle_change", args=[bundle.pk]): 1,
        reverse("admin:jobs_schedule_changelist"): 2,
        reverse("admin:jobs_schedule_change", args=[nightly.pk]): 2,
        reverse("admin:jobs_job_workers"): 0,
    }
    for url, at_least in pages.items():
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert assert_one_format(response.content.decode(), url) >= at_least, url
