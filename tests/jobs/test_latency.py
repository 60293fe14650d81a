"""Latency and throughput selectors: oldest waiting, per-minute rates, p50 / p95, chart ranges."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import selectors
from jobs.enqueue import enqueue
from jobs.models import Job, JobState

pytestmark = [pytest.mark.django_db]


def _settle(job: Job, *, state: str, ran: float, ago: timedelta) -> None:
    end = timezone.now() - ago
    Job.objects.filter(pk=job.pk).update(
        state=state, started_at=end - timedelta(seconds=ran), settled_at=end
    )


def test_oldest_waiting_age_and_rates_per_queue(django_assert_max_num_queries):
    now = timezone.now()
    old = enqueue("reindex", payload={"bundle_ids": [1]}, trigger="command")
    Job.objects.filter(pk=old.pk).update(created_at=now - timedelta(seconds=90))
    enqueue("reindex", payload={"bundle_ids": [2]}, trigger="command")
    for i in range(30):  # 30 completed and 3 failed in the last 15 minutes, 5 older ones
        _settle(enqueue("recompute", payload={"bundle_id": i}, trigger="command"),
                state=JobState.COMPLETED, ran=1, ago=timedelta(minutes=5))  # fmt: skip
    for i in range(3):
        _settle(enqueue("recompute", payload={"bundle_id": 100 + i}, trigger="command"),
                state=JobState.FAILED, ran=1, ago=timedelta(minutes=5))  # fmt: skip
    for i in range(5):
        _settle(enqueue("recompute", payload={"bundle_id": 200 + i}, trigger="command"),
                state=JobState.COMPLETED, ran=1, ago=timedelta(hours=2))  # fmt: skip
    with django_assert_max_num_queries(2):
        latency = selectors.queue_latency(now=now)
    assert 89 <= latency["bundle-reindex"]["oldest_waiting_seconds"] <= 91
    assert latency["bundle-recompute"]["completed_per_minute"] == pytest.approx(30 / 15)
    assert latency["bundle-recompute"]["failed_per_minute"] == pytest.approx(3 / 15)
    assert "oldest_waiting_seconds" not in latency["bundle-recompute"]


def test_p50_and_p95_run_time_per_kind():
    for i, seconds in enumerate(range(1, 101)):  # 1 s … 100 s
        _settle(enqueue("recompute", payload={"bundle_id": i}, trigger="command"),
                state=JobState.COMPLETED, ran=seconds, ago=timedelta(minutes=1))  # fmt: skip
    [timing] = selectors.kind_timings(hours=24)
    assert (timing.kind, timing.runs) == ("recompute", 100)
    assert timing.p50_seconds == pytest.approx(50, abs=0.01)
    assert timing.p95_seconds == pytest.approx(95, abs=0.01)


@pytest.mark.parametrize("range_name, buckets", [("1h", 12), ("24h", 24), ("7d", 28)])
def test_chart_ranges_count_every_settled_job_once(range_name, buckets):
    # Every age within (buckets - 1) whole buckets: the first bucket starts at a bucket boundary,
    # so an older job falls inside the range only at some times of the hour.
    ages = {"1h": [1, 30, 55], "24h": [30, 300, 1380], "7d": [60, 2000, 9000]}[range_name]
    for i, minutes in enumerate(ages):
        _settle(enqueue("recompute", payload={"bundle_id": i}, trigger="command"),
                state=JobState.COMPLETED, ran=1, ago=timedelta(minutes=minutes))  # fmt: skip
    series = selectors.jobs_chart(range_name=range_name)
    assert len(series) == buckets
    assert sum(b.completed for b in series) == 3
    assert series == sorted(series, key=lambda b: b.hour)


def test_an_unknown_chart_range_is_refused():
    with pytest.raises(ValueError, match="1h, 24h, 7d"):
        selectors.jobs_chart(range_name="1y")
