"""What one evaluation of every default alert rule costs at N ledger rows (default 20,000).

    .venv/bin/python bench/bench_alerts.py [--rows 1000000] [--repeat 10]

The issue's figure is at 1,000,000 rows on PostgreSQL (``DATABASE_URL``: migrated, its
ledger replaced, a scratch database only), target < 200 ms per evaluation. Rows are seeded
with one ``INSERT … SELECT generate_series`` on PostgreSQL (bulk_create on SQLite), spread
over 60 days like a real ledger: 94 % completed, 4 % failed, 1 % cancelled, a backlog of
pending jobs in the newest 2 % (fan-outs and recompute batches among them), and completed
consistency checks.
Every default rule is enabled (channels off: only the measuring is timed); it prints each
rule's own time, the whole evaluation's median and worst, and the number of SQL queries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._scratch import scratch_services  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-not-a-secret")

TARGET_MS = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with scratch_services("bench-alerts"):
        run(args)


def _seed_postgresql(connection, rows: int, queues: list[str]) -> None:
    queue_case = " ".join(f"WHEN {n} THEN '{q}'" for n, q in enumerate(queues))
    sql = f"""
    INSERT INTO jobs_job (id, queue, kind, payload, target_type, target_id, target_label,
        state, progress, progress_message, attempts, max_attempts, result, errors, trigger,
        reason, last_action, merged_count, cancel_requested, worker_name, rq_job_id,
        created_at, started_at, settled_at, heartbeat_at, schedule_id, children_total,
        children_settled, children_failed, children_cancelled, counted_by_parent)
    SELECT gen_random_uuid(), CASE i % 4 {queue_case} END,
        CASE WHEN i % 1000 = 7 THEN 'consistency_check' WHEN i % 4 = 0 THEN 'recompute_batch'
             WHEN i % 4 = 3 THEN 'fanout' ELSE 'reindex' END,
        '{{}}'::jsonb, '', '', '', st, 0, '', 1, 3,
        CASE WHEN i % 1000 = 7 AND st = 'completed'
             THEN '{{"checked": 240, "broken": 0, "fixed": 0}}'::jsonb END,
        '[]'::jsonb, 'signal', '', '', 0, false, '', '',
        created, CASE WHEN st = 'pending' THEN NULL ELSE created END,
        CASE WHEN st IN ('completed', 'failed', 'cancelled')
             THEN created + interval '3 seconds' END,
        NULL, '', 0, 0, 0, 0, false
    FROM (
        SELECT i, now() - (interval '60 days') * i / {rows} AS created,
            CASE WHEN i % 100 < 94 THEN 'completed' WHEN i % 100 < 98 THEN 'failed'
                 WHEN i % 100 = 98 THEN 'cancelled'
                 WHEN i < {rows} / 50 THEN 'pending' ELSE 'completed' END AS st
        FROM generate_series(0, {rows - 1}) i
    ) s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)
        cursor.execute("ANALYZE jobs_job")


def _seed_python(rows: int, queues: list[str]) -> None:
    from datetime import timedelta

    from django.db.models import F
    from django.utils import timezone

    from jobs.models import Job

    now = timezone.now()
    states = ["completed"] * 94 + ["failed"] * 4 + ["cancelled", "pending"]
    batch = []
    for i in range(rows):
        state, created = states[i % 100], now - timedelta(days=60) * i / rows
        if state == "pending" and i >= rows / 50:  # a backlog is recent: older ones ran
            state = "completed"
        kind = "recompute_batch" if i % 4 == 0 else "fanout" if i % 4 == 3 else "reindex"
        batch.append(
            Job(
                queue=queues[i % 4],
                kind="consistency_check" if i % 1000 == 7 else kind,
                trigger="signal",
                state=state,
                started_at=None if state == "pending" else created,
                settled_at=None if state == "pending" else created + timedelta(seconds=3),
                heartbeat_at=created,  # parked in created_at below
            )
        )
        if len(batch) == 5000:
            Job.objects.bulk_create(batch)
            batch = []
    Job.objects.bulk_create(batch)
    Job.objects.update(created_at=F("heartbeat_at"), heartbeat_at=None)


def run(args) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from jobs.alerts.conditions import get_condition
    from jobs.alerts.defaults import load_defaults
    from jobs.alerts.evaluation import evaluate_alerts
    from jobs.alerts.models import AlertRule
    from jobs.models import Job

    call_command("migrate", verbosity=0)
    queues = list(settings.JOB_QUEUES)
    have = Job.objects.count()
    if have != args.rows:
        Job.objects.all().delete()
        started = time.perf_counter()
        if connection.vendor == "postgresql":
            _seed_postgresql(connection, args.rows, queues)
        else:
            _seed_python(args.rows, queues)
        print(f"seeded {args.rows:,} ledger rows in {time.perf_counter() - started:.1f} s")
    print(f"database: {connection.vendor}; ledger {Job.objects.count():,} rows")

    AlertRule.objects.all().delete()
    load_defaults()
    AlertRule.objects.update(enabled=True, email=False, webhook=False)
    rules = list(AlertRule.objects.order_by("name"))

    print(f"\n{'rule':<24} {'condition':<18} {'ms (median)':>12} {'value':>10}")
    for rule in rules:
        measure = get_condition(rule.condition).measure
        times, value = [], None
        for _ in range(args.repeat):
            start = time.perf_counter()
            value = measure(rule, timezone.now()).value
            times.append((time.perf_counter() - start) * 1000)
        shown = "-" if value is None else f"{value:g}"
        print(f"{rule.name:<24} {rule.condition:<18} {statistics.median(times):>12.2f} {shown:>10}")

    evaluate_alerts()  # warm: connections, the registry, Redis
    runs = []
    with CaptureQueriesContext(connection) as queries:
        for _ in range(args.repeat):
            start = time.perf_counter()
            evaluate_alerts()
            runs.append((time.perf_counter() - start) * 1000)
    per_run = len(queries) // args.repeat
    median = statistics.median(runs)
    print(
        f"\nevaluate_alerts(), {len(rules)} rules: median {median:.1f} ms, worst "
        f"{max(runs):.1f} ms, {per_run} SQL queries per evaluation "
        f"(target < {TARGET_MS} ms: {'met' if median < TARGET_MS else 'NOT met'}, "
        f"{TARGET_MS / median:.0f}x under)"
    )


if __name__ == "__main__":
    main()
