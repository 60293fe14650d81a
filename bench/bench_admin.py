"""Render time of System → Jobs with a big ledger.

    DATABASE_URL=postgres://postgres@127.0.0.1:55432/dash_db \
        .venv/bin/python bench/bench_admin.py [--rows 1000000] [--repeat 7]

Migrates the database, fills the ledger up to ``--rows`` rows (spread over 60 days, a
realistic mix of states, queues and errors), VACUUM ANALYZEs it, then renders each page
through Django's test client as a logged-in superuser, with DEBUG off as in production, and
prints per page the median of ``--repeat`` renders next to the 300 ms budget (issue 12), the
SQL queries of one render, and "holds" or "MISSED". Also prints the machine's load average
(the figures are only comparable at a similar load) and what the first view after an empty
rollup costs (``jobs.rollup`` fills its stored hours once). Without DATABASE_URL a throwaway
SQLite file, without REDIS_URL a private Redis (only the strip's worker count reads it).
Re-running on the same DATABASE_URL reuses rows already there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# DEBUG off, as in production (template debugging and query logging cost time of their own).
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("ALLOW_INSECURE_KEY", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # not a line per login (django-axes)

from bench.scratch import scratch_services  # noqa: E402

# Issue 12: list, filters, search and the metrics strip each under this at 1,000,000 rows.
BUDGET_MS = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    with scratch_services("bench-admin"):
        run(args)


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from jobs.models import Job, JobHourStats, JobState

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's host
    call_command("migrate", verbosity=0)
    have = Job.objects.count()
    print(
        f"database: {connection.vendor} {settings.DATABASES['default']['NAME']}; "
        f"ledger has {have:,} rows, target {args.rows:,}"
    )
    states = (
        [JobState.COMPLETED] * 90
        + [JobState.FAILED] * 6
        + [JobState.CANCELLED] * 2
        + [JobState.PENDING]
        + [JobState.RUNNING]
    )
    queues = list(settings.JOB_QUEUES)
    kinds = {
        "bundle-recompute": "recompute",
        "bundle-reindex": "reindex",
        "bundle-consistency-check": "consistency_check",
        "bundle-bulk-operation": "bulk_operation",
    }
    now = timezone.now()
    span = timedelta(days=60).total_seconds()
    started = time.perf_counter()
    i = have
    if connection.vendor == "postgresql" and have < args.rows:
        # One INSERT … SELECT generate_series: the same mix as the loop below, in seconds
        # rather than the ~20 minutes bulk_create takes for 1,000,000 rows.
        _seed_postgresql(connection, start=have, rows=args.rows, queues=queues, kinds=kinds)
        i = args.rows
    while i < args.rows:
        batch = []
        for _ in range(min(args.batch, args.rows - i)):
            state = states[i % len(states)]
            queue = queues[i % 7 % 4]
            created = now - timedelta(seconds=span * i / args.rows)
            settled = state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)
            batch.append(
                Job(
                    id=uuid.uuid4(),
                    queue=queue,
                    kind=kinds[queue],
                    trigger="signal" if i % 5 else "schedule",
                    state=state,
                    progress=100 if state == JobState.COMPLETED else (i * 7) % 100,
                    attempts=1 if state != JobState.FAILED else 3,
                    max_attempts=3,
                    payload={"bundle_id": i % 20_000, "reason": "price changed"},
                    target_type="bundle",
                    target_id=str(i % 20_000),
                    target_label=f"Bundle {i % 20_000}",
                    dedup_key=None,
                    errors=[
                        {
                            "attempt": n,
                            "at": created.isoformat(),
                            "message": f"RuntimeError: upstream timeout {i}",
                            "traceback": "...",
                        }
                        for n in (1, 2, 3)
                    ]
                    if state == JobState.FAILED
                    else [],
                    started_at=created if state != JobState.PENDING else None,
                    settled_at=created + timedelta(seconds=3) if settled else None,
                    heartbeat_at=now if state == JobState.RUNNING else None,
                )
            )
            i += 1
        Job.objects.bulk_create(batch)
        print(f"  {i:,} rows ({time.perf_counter() - started:.0f} s)", end="\r", flush=True)
    if i > have:
        print()
        if connection.vendor != "postgresql":
            _spread_created_at(connection, now, span)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # VACUUM too, as autovacuum would have by then: index-only scans need the
                # visibility map.
                cursor.execute("VACUUM ANALYZE jobs_job")
        print(f"inserted {i - have:,} rows in {time.perf_counter() - started:.0f} s")

    if connection.vendor == "postgresql":
        _seed_targets_postgresql(connection)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE jobs_job")  # new indexes, reused rows: fresh stats
            cursor.execute("VACUUM ANALYZE jobs_jobtarget")
    user = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "bench@example.com", "bench-password"
    )
    client = Client()
    client.force_login(user)
    pages = {
        "list (newest first)": "/admin/jobs/job/",
        "list page 50": "/admin/jobs/job/?p=50",
        "filter state=failed": "/admin/jobs/job/?state__exact=failed",
        "filter queue+state": "/admin/jobs/job/?queue=bundle-reindex&state__exact=completed",
        "search bundle name": "/admin/jobs/job/?q=Bundle+1234",
        "search error text": "/admin/jobs/job/?q=upstream+timeout+123456",
        "search id prefix": None,  # the first 8 characters of the newest job's id
        "list, chart 7 d": "/admin/jobs/job/?chart=7d",
        "strip + chart (live)": "/admin/jobs/job/overview/?chart=24h",
        "metrics (Prometheus)": "/metrics",
        "workers page": "/admin/jobs/job/workers/",
        "job page": None,
    }
    load = os.getloadavg()
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
        f"median of {args.repeat} renders per page, DEBUG off"
    )
    # The first view after the rollup is emptied (a new install, or every stored hour
    # dropped) counts 7 days of settled jobs once and stores them.
    JobHourStats.objects.all().delete()
    t0 = time.perf_counter()
    client.get("/admin/jobs/job/overview/?chart=7d")
    cold = (time.perf_counter() - t0) * 1000
    print(f"first strip + 7 d chart with an empty rollup: {cold:.0f} ms (once)")
    missed = []
    for label, url in pages.items():
        if url is None:
            newest = Job.objects.order_by("-created_at").values_list("pk", flat=True)[0]
            if label == "search id prefix":
                url = f"/admin/jobs/job/?q={str(newest)[:8]}"
            else:
                url = f"/admin/jobs/job/{newest}/change/"
        times = []
        client.get(url)  # warm caches (templates, plans)
        # Every statement of one render (request_started resets connection.queries).
        queries = _QueryCounter()
        with connection.execute_wrapper(queries):
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        median = statistics.median(times)
        verdict = "holds" if median < BUDGET_MS else "MISSED"
        if verdict == "MISSED":
            missed.append(label)
        print(
            f"{label:<24} {median:6.1f} ms (budget {BUDGET_MS} ms: {verdict:<6}) "
            f"{len(queries):2d} queries  (min {min(times):.1f}, max {max(times):.1f})  {url}"
        )
    print("every page holds" if not missed else f"MISSED: {', '.join(missed)}")


def _seed_targets_postgresql(connection) -> None:
    """What enqueue writes besides the row: a link row per job to its bundle, and the 20,000
    bundles "Bundle 0".."Bundle 19999" themselves, so "search bundle name" takes the real path
    (bundle ids from the bundles' search, then their jobs through the link table)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM bundles_bundle")
        if cursor.fetchone()[0] == 0:
            cursor.execute(
                """
                INSERT INTO bundles_bundle (id, name, slug, status, status_before_broken,
                    pricing_rule, rule_value, currency, computed_availability, broken_reasons,
                    created_at, updated_at, no_saving)
                SELECT n, 'Bundle ' || n, 'bundle-' || n, 'active', '', 'percent_off', 0,
                    'EUR', 0, '[]'::jsonb, now(), now(), false
                FROM generate_series(0, 19999) n
                """
            )
            cursor.execute("SELECT setval(pg_get_serial_sequence('bundles_bundle', 'id'), 20000)")
        cursor.execute(
            """
            INSERT INTO jobs_jobtarget (job_id, target_type, target_id, label)
            SELECT j.id, j.target_type, j.target_id, j.target_label FROM jobs_job j
            WHERE j.target_id <> '' AND NOT EXISTS (
                SELECT 1 FROM jobs_jobtarget t WHERE t.job_id = j.id)
            """
        )
        if cursor.rowcount:
            print(f"linked {cursor.rowcount:,} jobs to their bundle (jobs_jobtarget)")


class _QueryCounter(list):
    def __call__(self, execute, sql, params, many, context):
        self.append(sql)
        return execute(sql, params, many, context)


def _seed_postgresql(connection, *, start: int, rows: int, queues: list, kinds: dict) -> None:
    """Rows ``start``..``rows``-1 like the Python loop makes them (states by i % 100: 90
    completed, 6 failed, 2 cancelled, 1 pending, 1 running; queue by i % 7 % 4; 60 days)."""
    queue_case = " ".join(f"WHEN {n} THEN '{q}'" for n, q in enumerate(queues))
    kind_case = " ".join(f"WHEN {n} THEN '{kinds[q]}'" for n, q in enumerate(queues))
    sql = f"""
    INSERT INTO jobs_job (id, queue, kind, payload, target_type, target_id, target_label,
        state, progress, progress_message, attempts, max_attempts, result, errors, trigger,
        reason, last_action, merged_count, cancel_requested, worker_name, rq_job_id,
        created_at, started_at, settled_at, heartbeat_at, schedule_id)
    SELECT gen_random_uuid(), CASE i % 7 % 4 {queue_case} END, CASE i % 7 % 4 {kind_case} END,
        jsonb_build_object('bundle_id', i % 20000, 'reason', 'price changed'),
        'bundle', (i % 20000)::text, 'Bundle ' || (i % 20000),
        st, CASE WHEN st = 'completed' THEN 100 ELSE (i * 7) % 100 END, '',
        CASE WHEN st = 'failed' THEN 3 ELSE 1 END, 3, NULL,
        CASE WHEN st = 'failed' THEN (SELECT jsonb_agg(jsonb_build_object('attempt', n,
            'at', created, 'message', 'RuntimeError: upstream timeout ' || i,
            'traceback', '...')) FROM generate_series(1, 3) n) ELSE '[]'::jsonb END,
        CASE WHEN i % 5 = 0 THEN 'schedule' ELSE 'signal' END, '', '', 1, false, '', '',
        created, CASE WHEN st = 'pending' THEN NULL ELSE created END,
        CASE WHEN st IN ('completed', 'failed', 'cancelled')
            THEN created + interval '3 seconds' END,
        CASE WHEN st = 'running' THEN now() END, ''
    FROM (
        SELECT i, now() - (interval '60 days') * i / {rows} AS created,
            CASE WHEN i % 100 < 90 THEN 'completed' WHEN i % 100 < 96 THEN 'failed'
                 WHEN i % 100 < 98 THEN 'cancelled' WHEN i % 100 = 98 THEN 'pending'
                 ELSE 'running' END AS st
        FROM generate_series({start}, {rows - 1}) i
    ) s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)


def _spread_created_at(connection, now, span: float) -> None:
    """bulk_create's auto_now_add stamped every row "now": move created_at to the row's start
    (or settle) time so the ledger spans 60 days like a real one."""
    from django.db.models import F
    from django.db.models.functions import Coalesce

    from jobs.models import Job

    Job.objects.filter(started_at__isnull=False).update(created_at=F("started_at"))
    Job.objects.filter(started_at__isnull=True).update(
        created_at=Coalesce("settled_at", "created_at")
    )


if __name__ == "__main__":
    main()
