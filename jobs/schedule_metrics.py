"""``/metrics``' figure for missed schedule fires, so Prometheus rules can alert on them.

``jobs_schedule_last_skipped_timestamp_seconds{schedule}``: when a schedule last had a fire
skipped (missed by more than its grace period), for every schedule that ever had one — the
``Schedule.last_skipped_at`` System → Schedules shows. One read of the small schedule table.
Registered through ``jobs.probes`` by ``JobsConfig.ready()``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily

from jobs.models import Schedule


class ScheduleCollector:
    """prometheus-client collector, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        skipped = GaugeMetricFamily(
            "jobs_schedule_last_skipped_timestamp_seconds",
            "When the schedule last had a fire skipped (missed beyond its grace), Unix time",
            labels=["schedule"],
        )
        rows = Schedule.objects.filter(last_skipped_at__isnull=False).values_list(
            "name", "last_skipped_at"
        )
        for name, at in rows.order_by("name"):
            assert at is not None  # filtered on last_skipped_at__isnull=False
            skipped.add_metric([name], at.timestamp())
        yield skipped


COLLECTOR = ScheduleCollector()  # one instance: a second ready() registers nothing new
