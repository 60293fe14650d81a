"""Read-side queries over the job ledger and RQ, for the admin, GraphQL and commands.

Plain functions with keyword-only arguments and typed returns. They never write. Everything
that asks Redis survives Redis being down (it reports "unknown" rather than raising), so the
admin still shows the ledger during an outage. One module per concern:

- ``ids``: job ids as people type them
- ``job``: one job: get, wait, children, audit, times
- ``queues``: per-queue counts and pauses
- ``workers``: RQ's workers, per queue and one by one
- ``staleness``: running jobs that stopped reporting
- ``latency``: oldest waiting, throughput, p50 / p95 per kind
- ``overview``: the overview strip (everything above in one call)
- ``chart``: completed / failed per time bucket
- ``search``: the search box
- ``lists``: ledger rows by filter; a target's jobs
- ``live``: the list's 2-second refresh
"""

from jobs.selectors.chart import CHART_RANGES, HourBucket, jobs_chart, jobs_per_hour
from jobs.selectors.ids import HEX, JobId, id_prefix_range, parse_job_id, resolve_job_id
from jobs.selectors.job import (
    ChildrenSummary,
    duration_seconds,
    job_audit,
    job_children_summary,
    job_get,
    last_error_line,
    wait_for_job,
)
from jobs.selectors.latency import (
    THROUGHPUT_WINDOW_MINUTES,
    KindTiming,
    RunSeconds,
    completed_run_seconds,
    kind_timings,
    queue_latency,
)
from jobs.selectors.lists import filter_by_target, job_list, jobs_for_target
from jobs.selectors.live import job_live_rows
from jobs.selectors.overview import STALE_COUNT_CAP, QueueOverview, SystemHealth, system_health
from jobs.selectors.queues import (
    WAITING_STATES,
    pause_author,
    queue_counts,
    queue_names,
    settled_last_24h,
)
from jobs.selectors.search import (
    SEARCH_IDS_MAX,
    SEARCH_TARGET_JOBS_MAX,
    job_search_filter,
    job_search_q,
)
from jobs.selectors.staleness import job_is_stale, stale_jobs
from jobs.selectors.workers import (
    WORKER_DEAD_AFTER_SECONDS,
    WorkerInfo,
    workers,
    workers_by_queue,
    workers_seen_recently,
)

__all__ = [
    "CHART_RANGES",
    "parse_job_id",
    "HEX",
    "JobId",
    "id_prefix_range",
    "resolve_job_id",
    "job_get",
    "wait_for_job",
    "ChildrenSummary",
    "job_children_summary",
    "job_audit",
    "duration_seconds",
    "last_error_line",
    "WAITING_STATES",
    "queue_names",
    "queue_counts",
    "settled_last_24h",
    "pause_author",
    "workers_by_queue",
    "WORKER_DEAD_AFTER_SECONDS",
    "WorkerInfo",
    "workers",
    "workers_seen_recently",
    "stale_jobs",
    "job_is_stale",
    "THROUGHPUT_WINDOW_MINUTES",
    "queue_latency",
    "KindTiming",
    "RunSeconds",
    "completed_run_seconds",
    "kind_timings",
    "QueueOverview",
    "SystemHealth",
    "STALE_COUNT_CAP",
    "system_health",
    "HourBucket",
    "jobs_per_hour",
    "jobs_chart",
    "SEARCH_TARGET_JOBS_MAX",
    "job_search_q",
    "SEARCH_IDS_MAX",
    "job_search_filter",
    "job_list",
    "filter_by_target",
    "jobs_for_target",
    "job_live_rows",
]
