"""The hourly rollup behind the strip, the chart and /metrics (``jobs.rollup``): the same
numbers as counting the ledger, a job that settles counts at once, closed hours are counted
from the ledger once and then read from the table."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import rollup, selectors
from jobs.maintenance.prune import prune_settled_jobs
from jobs.models import Job, JobHourStats, JobState

pytestmark = [pytest.mark.django_db]

QUEUES = ["bundle-recompute", "bundle-reindex"]
STATES = [JobState.COMPLETED, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED]


def settled_jobs(now, *, count: int, span: timedelta) -> None:
    """``count`` settled jobs, evenly spread over ``span`` before ``now``."""
    Job.objects.bulk_create(
        Job(
            id=uuid.uuid4(),
            queue=QUEUES[i % 2],
            kind="recompute" if i % 3 else "reindex",
            trigger="signal",
            state=STATES[i % 4],
            started_at=now - span * i / count - timedelta(seconds=2),
            settled_at=now - span * i / count,
        )
        for i in range(count)
    )


def ledger_counts(since) -> Counter:
    """What the rollup must say, counted the slow way."""
    return Counter(
        (rollup.floor_hour(j.settled_at), j.queue, j.kind, j.state)
        for j in Job.objects.filter(settled_at__gte=since)
    )


def settle(job: Job, state: str, at) -> None:
    Job.objects.filter(pk=job.pk).update(state=state, started_at=at, settled_at=at)


def test_rollup_gives_the_ledgers_counts_and_stays_a_cache():
    # Given 2,000 jobs settled over 8 days
    now = timezone.now()
    settled_jobs(now, count=2000, span=timedelta(days=8))
    since = now - timedelta(days=7)
    # When the rollup is asked twice (the first fills the stored hours, the second reads them)
    first = rollup.settled_counts(since=since, now=now)
    second = rollup.settled_counts(since=since, now=now)
    # Then both give exactly what counting the ledger gives
    expected = ledger_counts(since)
    assert first == second == expected
    assert sum(expected.values()) > 1500
    # and every closed hour is stored (7 days = 168 hours, less the ones still open)
    assert 165 <= JobHourStats.objects.count() <= 168
    # And it is a cache, not a source of truth: dropping every stored hour changes nothing
    JobHourStats.objects.all().delete()
    assert rollup.settled_counts(since=since, now=now) == expected


def test_closed_hours_are_counted_once_then_read_from_the_table(django_assert_max_num_queries):
    now = timezone.now()
    settled_jobs(now, count=500, span=timedelta(days=2))
    # The first read counts the closed hours with the open ones and stores them (3 queries)...
    with django_assert_max_num_queries(3):
        selectors.settled_last_24h(now=now)
    # ... later reads only load the stored hours and count the open ones live (2 queries)
    with django_assert_max_num_queries(2):
        again = selectors.settled_last_24h(now=now)
    assert again == ledger_counts(now - timedelta(hours=24))


def test_a_job_settling_shows_up_at_once_in_the_strip_chart_and_metrics(client, admin_user):
    # Given a ledger whose closed hours are already stored
    now = timezone.now()
    settled_jobs(now - timedelta(minutes=1), count=300, span=timedelta(days=2))
    before = selectors.system_health()
    chart_before = selectors.jobs_chart(range_name="24h")
    week_before = selectors.jobs_chart(range_name="7d")
    assert JobHourStats.objects.exists()
    queue = next(q for q in before.queues if q.name == "bundle-reindex")
    # When one more job completes now
    job = Job.objects.create(queue="bundle-reindex", kind="reindex", trigger="signal")
    settle(job, JobState.COMPLETED, timezone.now())
    # Then the strip, both charts and /metrics count it on the next read (no waiting)
    after = selectors.system_health()
    assert next(q for q in after.queues if q.name == "bundle-reindex").completed_24h == (
        queue.completed_24h + 1
    )
    assert selectors.jobs_chart(range_name="24h")[-1].completed == chart_before[-1].completed + 1
    assert selectors.jobs_chart(range_name="7d")[-1].completed == week_before[-1].completed + 1
    client.force_login(admin_user)
    text = client.get("/metrics").content.decode()
    day_ago = timezone.now() - timedelta(hours=24)
    total = Job.objects.filter(
        kind="reindex", state=JobState.COMPLETED, settled_at__gte=day_ago
    ).count()
    assert f'jobs_settled_last_24h{{kind="reindex",state="completed"}} {total}.0' in text


def test_the_hour_just_ended_stays_live_until_it_is_closed():
    # Given "now" two minutes past an hour (within rollup.CLOSE_AFTER of its start)
    now = rollup.floor_hour(timezone.now()) + timedelta(minutes=2)
    previous_hour = rollup.floor_hour(now) - timedelta(hours=1)
    job = Job.objects.create(queue="bundle-reindex", kind="reindex", trigger="signal")
    settle(job, JobState.COMPLETED, now - timedelta(minutes=3))
    first = rollup.settled_counts(since=now - timedelta(hours=24), now=now)
    assert first[(previous_hour, "bundle-reindex", "reindex", JobState.COMPLETED)] == 1
    # Then the hour that ended two minutes ago is not stored yet
    assert not JobHourStats.objects.filter(hour=previous_hour).exists()
    assert JobHourStats.objects.filter(hour=previous_hour - timedelta(hours=1)).exists()
    # and a job settling late into it (a slow commit) is still counted
    late = Job.objects.create(queue="bundle-reindex", kind="reindex", trigger="signal")
    settle(late, JobState.FAILED, now - timedelta(minutes=4))
    again = rollup.settled_counts(since=now - timedelta(hours=24), now=now)
    assert again[(previous_hour, "bundle-reindex", "reindex", JobState.FAILED)] == 1


def test_the_weekly_prune_drops_stored_hours_older_than_eight_days():
    now = timezone.now()
    old, recent = now - timedelta(days=9), now - timedelta(days=2)
    JobHourStats.objects.create(hour=rollup.floor_hour(old), counts=[])
    JobHourStats.objects.create(hour=rollup.floor_hour(recent), counts=[])
    prune_settled_jobs()
    assert list(JobHourStats.objects.values_list("hour", flat=True)) == [rollup.floor_hour(recent)]


def test_the_strip_says_more_than_when_stale_jobs_pass_the_cap(monkeypatch):
    monkeypatch.setattr(selectors.overview, "STALE_COUNT_CAP", 3)
    long_ago = timezone.now() - timedelta(hours=1)
    Job.objects.bulk_create(
        Job(
            queue="bundle-reindex",
            kind="reindex",
            trigger="signal",
            state=JobState.RUNNING,
            started_at=long_ago,
            heartbeat_at=long_ago,
        )
        for _ in range(5)
    )
    health = selectors.system_health()
    assert health.stale_jobs == 4 and health.stale_jobs_capped
