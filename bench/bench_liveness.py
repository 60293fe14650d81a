"""What heartbeats and the ledger pass cost per minute at N running jobs (default 100).

    .venv/bin/python bench/bench_liveness.py [--running 100]

A scratch SQLite file (or DATABASE_URL: migrated, gets rows; a scratch database only) and a
private Redis. N rows are put in ``running`` on a live-looking worker; then it times one
heartbeat beat (the runner's conditional UPDATE) and one relay + reconcile pass
(``relay_and_reconcile``, as the worker's LedgerWatch runs it), counts their SQL queries, and
prints the cost per minute at the defaults (JOBS_HEARTBEAT_INTERVAL, JOBS_RECONCILE_INTERVAL).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scratch import scratch_services  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-not-a-secret")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--running", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with scratch_services("bench-liveness"):
        run(args)


def run(args) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from jobs import conf
    from jobs.maintenance.ledger_pass import relay_and_reconcile
    from jobs.models import Job, JobState

    call_command("migrate", verbosity=0)
    Job.objects.all().delete()
    now = timezone.now()
    rows = [
        Job(
            queue="bundle-recompute",
            kind="recompute",
            trigger="command",
            state=JobState.RUNNING,
            attempts=1,
            max_attempts=3,
            started_at=now,
            heartbeat_at=now,
            worker_name=f"bench-worker-{i % 4}",
            rq_job_id=f"job-bench-{i}",
            payload={"bundle_id": i},
        )
        for i in range(args.running)
    ]
    Job.objects.bulk_create(rows)
    ids = [r.pk for r in rows]

    # One beat of every running job's heartbeat thread (the runner's query, per job).
    with CaptureQueriesContext(connection) as beat_queries:
        start = time.perf_counter()
        for pk in ids:
            Job.objects.filter(pk=pk, state=JobState.RUNNING, cancel_requested=False).update(
                heartbeat_at=timezone.now()
            )
        beat_s = time.perf_counter() - start

    # The ledger pass. Their RQ jobs are unknown and their workers absent, but they reported
    # a moment ago: nothing is settled, the pass only reads (the steady state).
    passes = []
    with CaptureQueriesContext(connection) as pass_queries:
        for _ in range(args.repeat):
            start = time.perf_counter()
            outcome = relay_and_reconcile()
            passes.append(time.perf_counter() - start)
    assert outcome["reconciled"] == 0, outcome
    assert Job.objects.filter(state=JobState.RUNNING).count() == args.running
    per_pass_queries = len(pass_queries) / args.repeat
    pass_ms = sorted(passes)[len(passes) // 2] * 1000

    beats_per_min = 60 / conf.heartbeat_interval()
    passes_per_min = 60 / conf.reconcile_interval()
    vendor = connection.vendor
    print(f"database {vendor}, {args.running} running jobs")
    print(
        f"heartbeat: {len(beat_queries) / args.running:.0f} query per job per beat, "
        f"{beat_s * 1000 / args.running:.2f} ms each; every {conf.heartbeat_interval():.0f} s -> "
        f"{args.running * beats_per_min:.0f} UPDATEs/min, "
        f"{beat_s * beats_per_min * 1000:.0f} ms of database time per minute"
    )
    print(
        f"ledger pass: {per_pass_queries:.0f} SQL queries, median {pass_ms:.1f} ms; every "
        f"{conf.reconcile_interval():.0f} s in one worker -> "
        f"{per_pass_queries * passes_per_min:.0f} queries/min, "
        f"{pass_ms * passes_per_min:.0f} ms/min"
    )


if __name__ == "__main__":
    main()
