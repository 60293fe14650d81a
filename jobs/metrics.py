"""``/metrics``: the ledger, queues, workers and scheduler in Prometheus' text format.

A custom collector (prometheus-client's documented way to export values read at scrape time)
asks the selectors on every scrape: a handful of grouped, indexed queries and Redis calls, so
any web process answers the same, and nothing is kept in process memory.

Who may scrape: a request with ``Authorization: Bearer <JOBS_METRICS_TOKEN>``, a client
address in ``JOBS_METRICS_ALLOWED_IPS``, or a logged-in staff user with ``jobs.view_job``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections import defaultdict
from datetime import timedelta

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.utils import floatToGoString

from jobs import conf, selectors
from jobs.client_ip import client_ip
from jobs.models import Job, JobState
from jobs.probes import metrics_collectors
from jobs.redis_client import redis_for
from jobs.scheduling.scheduler_heartbeat import heartbeat_age

logger = logging.getLogger(__name__)

# Run-time histogram buckets (seconds), upper bounds.
RUN_TIME_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, float("inf"))
CURRENT_STATES = (JobState.PENDING, JobState.RUNNING, JobState.RETRYING, JobState.FAILED)


class LedgerCollector:
    """Collected at scrape time; ``collect`` yields metric families (prometheus-client API)."""

    def collect(self):
        now = timezone.now()
        queues = selectors.queue_names()
        settled_24h = selectors.settled_last_24h(now=now)
        health = selectors.system_health(now=now, settled=settled_24h)

        waiting = GaugeMetricFamily(
            "jobs_queue_waiting", "Jobs pending or waiting for a retry", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "jobs_queue_oldest_waiting_seconds",
            "Age of the oldest pending job (0 when none waits)",
            labels=["queue"],
        )
        paused = GaugeMetricFamily(
            "jobs_queue_paused", "1 if the queue is paused", labels=["queue"]
        )
        per_queue_workers = GaugeMetricFamily(
            "jobs_queue_workers", "Live workers listening to the queue", labels=["queue"]
        )
        for q in health.queues:
            waiting.add_metric([q.name], q.waiting)
            oldest.add_metric([q.name], q.oldest_waiting_seconds or 0.0)
            paused.add_metric([q.name], 1 if q.paused else 0)
            if q.workers is not None:
                per_queue_workers.add_metric([q.name], q.workers)
        yield from (waiting, oldest, paused, per_queue_workers)

        by_state = GaugeMetricFamily(
            "jobs_current",
            "Jobs now pending, running, retrying, or failed for good (any age)",
            labels=["state", "kind"],
        )
        # The (state, ...) index: the live states and failed are small next to the ledger.
        rows = (
            Job.objects.filter(state__in=CURRENT_STATES)
            .order_by()
            .values_list("state", "kind")
            .annotate(n=Count("*"))
        )
        for state, kind, n in rows:
            by_state.add_metric([state, kind], n)
        yield by_state

        settled = GaugeMetricFamily(
            "jobs_settled_last_24h", "Jobs settled in the last 24 hours", labels=["state", "kind"]
        )
        # The hourly rollup (jobs.rollup): stored closed hours plus the open ones counted live.
        totals: dict[tuple[str, str], int] = defaultdict(int)
        for (_hour, _queue, kind, state), n in settled_24h.items():
            totals[(state, kind)] += n
        for (state, kind), n in sorted(totals.items()):
            settled.add_metric([state, kind], n)
        yield settled

        yield self._run_time_histogram(now)

        workers = selectors.workers(now=now)
        live = GaugeMetricFamily("jobs_workers", "RQ workers registered in Redis", labels=["state"])
        if workers is not None:
            live.add_metric(["live"], sum(1 for w in workers if not w.dead))
            live.add_metric(["dead"], sum(1 for w in workers if w.dead))
        yield live

        seen = GaugeMetricFamily(
            "jobs_scheduler_last_seen_seconds", "Seconds since the scheduler loop last beat"
        )
        try:
            age = heartbeat_age(redis_for(conf.job_queues()[0]))
        except Exception:
            age = None
        if age is not None:
            seen.add_metric([], age)
        yield seen
        logger.debug("metrics collected for %d queues", len(queues))

    @staticmethod
    def _run_time_histogram(now):
        """Run times (started → settled) of the completed jobs of the last hour, per kind.

        From the same bounded sample as :func:`selectors.kind_timings` (newest runs per kind).
        """
        histogram = HistogramMetricFamily(
            "jobs_run_seconds", "Run time of jobs completed in the last hour", labels=["kind"]
        )
        values: dict[str, list[float]] = defaultdict(list)
        since = now - timedelta(hours=1)
        for kind, run in selectors.completed_run_seconds(since=since, limit=20000):
            values[kind].append(max(0.0, run or 0.0))
        for kind, runs in sorted(values.items()):
            buckets = [
                (
                    floatToGoString(bound),
                    sum(1 for v in runs if v <= bound),
                )
                for bound in RUN_TIME_BUCKETS
            ]
            histogram.add_metric([kind], buckets, sum_value=sum(runs))
        return histogram


def scrape_allowed(request: HttpRequest) -> bool:
    """A valid token, an allowed address, or staff with ``jobs.view_job``."""
    token = conf.metrics_token()
    header = request.headers.get("Authorization", "")
    if (
        token
        and header.startswith("Bearer ")
        and hmac.compare_digest(header[7:].strip().encode(), token.encode())
    ):
        return True
    address = client_ip(request) or ""  # behind TRUSTED_PROXIES: the forwarded client
    for allowed in conf.metrics_allowed_ips():
        try:
            if ipaddress.ip_address(address) in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            continue
    user = getattr(request, "user", None)
    return bool(user and user.is_active and user.is_staff and user.has_perm("jobs.view_job"))


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not scrape_allowed(request):
        return HttpResponse(
            "Forbidden: set JOBS_METRICS_TOKEN or JOBS_METRICS_ALLOWED_IPS.\n",
            status=403,
            content_type="text/plain",
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector())
    for collector in metrics_collectors():  # other apps' figures (jobs.probes)
        registry.register(collector)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
