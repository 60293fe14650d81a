"""The bundles' figures next to the queues': ``/metrics``, ``/health/`` and the System → Jobs
strip, registered with the jobs app (``jobs.probes``) from ``BundlesConfig.ready()``.

- ``/metrics``: ``bundles_staleness_seconds{queue}`` (``bundles.freshness``), ``bundles_broken``,
  and the newest completed consistency check's ``bundles_check_last_{checked,broken,fixed}``
  and ``bundles_check_last_timestamp_seconds``;
- ``/health/``: ``bundles_staleness`` fails past ``BUNDLES_STALENESS_HEALTH_SECONDS``
  (default 600);
- the strip: a pill "bundles up to date" or "bundles N behind", warn past the threshold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime
from typing import ClassVar

from django.conf import settings
from health_check.exceptions import ServiceUnavailable
from prometheus_client.core import GaugeMetricFamily

from bundles import freshness
from jobs.health import Named
from jobs.probes import (
    StripFigure,
    register_health_check,
    register_metrics_collector,
    register_strip_figure,
)

DEFAULT_STALENESS_HEALTH_SECONDS = 600


def staleness_threshold() -> float:
    return float(
        getattr(settings, "BUNDLES_STALENESS_HEALTH_SECONDS", DEFAULT_STALENESS_HEALTH_SECONDS)
    )


class BundlesCollector:
    """prometheus-client collector: read at scrape time (three small queries)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stale = GaugeMetricFamily(
            "bundles_staleness_seconds",
            "Age of the oldest component change not yet applied to its bundles (0 when none)",
            labels=["queue"],
        )
        for queue, seconds in freshness.staleness_by_queue().items():
            stale.add_metric([queue], seconds)
        yield stale
        yield GaugeMetricFamily(
            "bundles_broken", "Bundles now broken", value=freshness.broken_bundles()
        )
        check = freshness.last_check_results()
        for name, text in (
            ("checked", "Bundles the last completed consistency check checked"),
            ("broken", "Broken bundles the last completed consistency check found"),
            ("fixed", "Bundles the last completed consistency check fixed"),
        ):
            family = GaugeMetricFamily(f"bundles_check_last_{name}", text)
            if check is not None:
                family.add_metric([], getattr(check, name))
            yield family
        when = GaugeMetricFamily(
            "bundles_check_last_timestamp_seconds",
            "When the last completed consistency check settled (Unix time)",
        )
        if check is not None:
            when.add_metric([], check.settled_at.timestamp())
        yield when


COLLECTOR = BundlesCollector()  # one instance: a second ready() registers nothing new


@dataclasses.dataclass(repr=False)
class StalenessCheck(Named):
    name: ClassVar[str] = "bundles_staleness"

    def run(self) -> None:
        limit = staleness_threshold()
        by_queue = freshness.staleness_by_queue()
        behind = {q: s for q, s in by_queue.items() if s > limit}
        if behind:
            worst = max(behind, key=behind.__getitem__)
            raise ServiceUnavailable(
                f"bundles are {behind[worst]:.0f}s behind their components "
                f"(on {worst}; limit {limit:.0f}s)"
            )


def staleness_pill(now: datetime) -> list[StripFigure]:
    by_queue = freshness.staleness_by_queue(now=now)
    worst = max(by_queue.values(), default=0.0)
    detail = ", ".join(f"{q}: {s:.0f}s" for q, s in by_queue.items())
    title = f"Oldest component change not yet applied to its bundles — {detail}"
    if worst < 1:
        return [StripFigure("bundles up to date", "ok", title)]
    level = "bad" if worst > staleness_threshold() else "warn"
    return [StripFigure(f"bundles {_age(worst)} behind", level, title)]


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def register() -> None:
    """Called from ``BundlesConfig.ready()``."""
    register_metrics_collector(COLLECTOR)
    register_health_check(StalenessCheck)
    register_strip_figure(staleness_pill)
