"""No-op jobs per second through the ledger + runner versus plain RQ, and enqueue() cost.

    .venv/bin/python bench/bench_jobs.py [--jobs 200] [--rounds 5] [--workers fork,simple]
        [--enqueues 500] [--claims 300]

Uses a scratch SQLite database in a temporary directory (or DATABASE_URL if set: it is
migrated and gets rows, so never point it at a database you care about) and a private Redis
(or REDIS_URL).

Prints:
  * enqueue() inside a committed transaction: the call itself, and call + commit (which
    includes the on-commit dispatch to RQ);
  * the claim + finish of one job: the runner's hand-written statements (``jobs.runner.sql``)
    against the same writes through the ORM;
  * a burst worker draining N no-op jobs, for each worker class (forking JobsWorker, and
    JobsSimpleWorker in-process): through the ledger and runner (row claimed, attempt counted,
    result stored) versus plain RQ running a no-op function with the same worker class, in
    interleaved rounds (ledger, plain, ledger, plain ...); the figure is the median of the
    per-round ratios (P2 target: >= 60 %), with every round's ratio beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scratch import scratch_services  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-not-a-secret")

QUEUE = "bundle-recompute"
STEPS = ("claim", "finish", "both")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs per worker run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per side")
    parser.add_argument(
        "--workers", default="fork,simple", help="worker classes: fork (JobsWorker), simple"
    )
    parser.add_argument("--enqueues", type=int, default=500, help="timed enqueue() calls")
    parser.add_argument(
        "--claims", type=int, default=300, help="timed claims + finishes, per side (0: skip)"
    )
    args, _unknown = parser.parse_known_args()  # bin/bench passes --bundles to all

    with scratch_services("bench-jobs"):
        run(args)


def run(args) -> None:
    import logging

    import django

    django.setup()
    import django_rq
    from django.core.management import call_command
    from django.db import connection, transaction

    from jobs.enqueue import enqueue
    from jobs.models import Job, JobState
    from jobs.registry import job_kind
    from jobs.worker import JobsSimpleWorker, JobsWorker

    logging.getLogger("rq.worker").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)

    @job_kind("bench_noop", queue=QUEUE, max_attempts=1, backoff=(0,), timeout=60)
    def bench_noop(ctx, **payload):
        return None

    redis = django_rq.get_connection(QUEUE)
    queue = django_rq.get_queue(QUEUE)
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"redis:    {os.environ['REDIS_URL']}")
    print()

    # -- enqueue() cost ----------------------------------------------------------------------
    redis.flushdb()
    Job.objects.all().delete()  # a scratch ledger (bin/bench shares it with the other benches)
    call_times, total_times = [], []
    for n in range(args.enqueues):
        t0 = time.perf_counter()
        with transaction.atomic():
            t1 = time.perf_counter()
            enqueue("bench_noop", payload={"n": n}, trigger="command")
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        call_times.append(t2 - t1)
        total_times.append(t3 - t0)
    assert Job.objects.filter(dispatched_at__isnull=False).count() == args.enqueues
    print(f"enqueue() in a committed transaction, {args.enqueues} calls:")
    _print_times("  enqueue() call (row insert)", call_times)
    _print_times("  call + commit + RQ dispatch", total_times)

    nodispatch_times = []
    for n in range(args.enqueues):
        t0 = time.perf_counter()
        with transaction.atomic():
            enqueue("bench_noop", payload={"n": n}, trigger="command", dispatch_on_commit=False)
        nodispatch_times.append(time.perf_counter() - t0)
    _print_times("  call + commit, no dispatch ", nodispatch_times)

    dedup_times = []
    with transaction.atomic():
        enqueue("bench_noop", payload={}, trigger="signal", dedup_key="bench")
    for _ in range(args.enqueues):
        t0 = time.perf_counter()
        with transaction.atomic():
            enqueue("bench_noop", payload={}, trigger="signal", dedup_key="bench")
        dedup_times.append(time.perf_counter() - t0)
    _print_times("  merged into a pending job  ", dedup_times)
    print()

    if args.claims:
        _claim_and_finish(args.claims)

    # -- throughput --------------------------------------------------------------------------
    # Rounds interleave the two sides (ledger, plain, ledger, plain ...) so that load from other
    # processes on a shared machine hits both alike; the median of the per-round ratios is the
    # figure, the spread shows how noisy the run was.
    print(
        f"burst worker draining {args.jobs} no-op jobs, {args.rounds} interleaved rounds "
        f"(load average {_load()}):"
    )
    classes = {"fork": JobsWorker, "simple": JobsSimpleWorker}
    for name in args.workers.split(","):
        worker_class = classes[name.strip()]
        ledger_rates, plain_rates = [], []
        for _ in range(args.rounds):
            # ledger + runner
            redis.flushdb()
            Job.objects.all().delete()
            with transaction.atomic():
                for n in range(args.jobs):
                    enqueue("bench_noop", payload={"n": n}, trigger="command")
            ledger_rates.append(_drain(worker_class, queue, args.jobs))
            done = Job.objects.filter(state=JobState.COMPLETED).count()
            assert done == args.jobs, f"only {done} of {args.jobs} ledger jobs completed"

            # plain RQ, same worker class, a no-op function
            redis.flushdb()
            with redis.pipeline() as pipe:
                for _ in range(args.jobs):
                    queue.enqueue("os.getpid", pipeline=pipe)
                pipe.execute()
            plain_rates.append(_drain(worker_class, queue, args.jobs))
        ratios = sorted(lr / pr for lr, pr in zip(ledger_rates, plain_rates, strict=True))
        print(
            f"  {worker_class.__name__:<17} ledger+runner {statistics.median(ledger_rates):7.1f} "
            f"jobs/s   plain RQ {statistics.median(plain_rates):7.1f} jobs/s   "
            f"median {statistics.median(ratios):.0%} of plain "
            f"(rounds {', '.join(f'{r:.0%}' for r in ratios)}; target >= 60%)"
        )
    print(f"  load average after: {_load()}")


def _claim_and_finish(n: int) -> None:
    """The runner's hot path, per job: its hand-written claim and finish (``jobs.runner.sql``)
    against the same two writes through the ORM (``QuerySet.update``, then the row read back,
    as Django 5.2's ``update`` returns no row), in interleaved rounds of ``n`` pending rows."""
    import contextlib

    from django.db import connections, transaction
    from django.db.models import F, Q
    from django.utils import timezone

    from jobs.enqueue import enqueue
    from jobs.models import Job, JobState
    from jobs.runner.sql import claim_statement, finish_statement

    connection = connections[Job.objects.db]
    skip_locked = connection.features.has_select_for_update_skip_locked

    def orm_claim(job_id, worker_name, rq_job_id):
        now = timezone.now()
        rows = Job.objects.filter(
            Q(rq_job_id=rq_job_id) | Q(rq_job_id=""),
            pk=job_id,
            state__in=(JobState.PENDING, JobState.RETRYING),
            cancel_requested=False,
        )
        if skip_locked:
            rows = rows.filter(
                pk__in=Job.objects.filter(pk=job_id).select_for_update(skip_locked=True)
            )
        # The ORM will not put a SELECT … FOR UPDATE in a statement outside a transaction.
        with transaction.atomic() if skip_locked else contextlib.nullcontext():
            claimed = rows.update(
                state=JobState.RUNNING,
                attempts=F("attempts") + 1,
                started_at=now,
                heartbeat_at=now,
                worker_name=worker_name,
                next_attempt_at=None,
                progress=0,
                progress_message="",
                rq_job_id=rq_job_id,
            )
        return Job.objects.get(pk=job_id) if claimed else None

    def orm_finish(job, result):
        now = timezone.now()
        return Job.objects.filter(pk=job.pk, state=JobState.RUNNING, attempts=job.attempts).update(
            state=JobState.COMPLETED,
            result=result,
            progress=100,
            settled_at=now,
            next_attempt_at=None,
        )

    def sql_claim(job_id, worker_name, rq_job_id):
        return claim_statement(
            job_id, worker_name=worker_name, rq_job_id=rq_job_id, skip_locked=skip_locked
        )

    def sql_finish(job, result):
        return finish_statement(job, result, now=timezone.now())

    sides = {"hand-written": (sql_claim, sql_finish), "ORM": (orm_claim, orm_finish)}
    times: dict[str, list[float]] = {f"{name} {step}": [] for name in sides for step in STEPS}
    for _round in range(3):
        for name, (claim, finish) in sides.items():
            Job.objects.all().delete()
            with transaction.atomic():
                ids = [
                    enqueue(
                        "bench_noop", payload={"n": i}, trigger="command", dispatch_on_commit=False
                    ).pk
                    for i in range(n)
                ]
            for i, job_id in enumerate(ids):
                t0 = time.perf_counter()
                job = claim(job_id, "bench@host:1", f"rq-{i}")
                t1 = time.perf_counter()
                finish(job, None)
                t2 = time.perf_counter()
                times[f"{name} claim"].append(t1 - t0)
                times[f"{name} finish"].append(t2 - t1)
                times[f"{name} both"].append(t2 - t0)
            assert Job.objects.filter(state=JobState.COMPLETED).count() == n
    print(f"claim + finish of one job, {n} x 3 interleaved rounds per side:")
    for name, found in times.items():
        _print_times(f"  {name:<27}", found)
    for step in STEPS:
        ratio = statistics.median(times[f"ORM {step}"]) / statistics.median(
            times[f"hand-written {step}"]
        )
        print(f"  ORM / hand-written, {step} (medians): {ratio:.2f}x")
    print()


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _drain(worker_class, queue, expected: int) -> float:
    """Jobs per second from the start of the first job to the end of the last one: the
    worker's start-up and teardown (RQ joins its pubsub thread for a second) are the same
    for both sides and would only dilute the difference."""
    from django.db import connections

    from jobs.rq_compat import with_execution_timer

    Timed = with_execution_timer(worker_class)  # noqa: N806 (a class)
    connections.close_all()
    worker = Timed([queue], connection=queue.connection)
    worker.last_cleaned_at = _now()  # skip the start-up maintenance pass in both runs
    worker.work(burst=True, logging_level="WARNING")
    assert queue.count == 0
    return expected / (Timed.last - Timed.first)


def _now():
    from rq.utils import now

    return now()


def _print_times(label: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(
        f"{label}: mean {statistics.mean(ms):.2f} ms, median {statistics.median(ms):.2f} ms, "
        f"p95 {p95:.2f} ms"
    )


if __name__ == "__main__":
    main()
