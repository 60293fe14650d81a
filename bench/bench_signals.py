"""How long a variant save spends enqueueing (the signal receiver + ledger row + RQ dispatch).

    .venv/bin/python bench/bench_signals.py [--saves 200] [--bundles 20]

Uses a scratch SQLite database in a temporary directory (or DATABASE_URL if set: it is
migrated and gets test rows, so never point it at a database you care about) and a private
Redis (or REDIS_URL). No worker runs, so nothing competes for the database.

Measures the mean wall time of ``variant.save()`` after a price change:
  * receivers disconnected (the save alone),
  * a burst: the first save creates the fan-out job, the others merge into it,
  * every save creating a new fan-out job and dispatching it to RQ on commit,
  * a no-op save (nothing relevant changed) with receivers connected.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scratch import scratch_services  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-not-a-secret")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--bundles", type=int, default=20, help="bundles using the variant")
    args = parser.parse_args()

    with scratch_services("bench-signals"):
        run(args)


def run(args) -> None:
    import django

    django.setup()
    import django_rq
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from bundles import signals
    from bundles.models import ProductVariant
    from jobs.models import Job, JobState
    from tests.factories import make_bundle, make_variant

    call_command("migrate", verbosity=0)
    django_rq.get_connection("bundle-bulk-operation").flushdb()
    print(f"database: {connection.vendor} {settings.DATABASES['default']['NAME']}")

    variant = make_variant(price="10.00")
    for _ in range(args.bundles):
        make_bundle(components=[(variant, 1)])
    Job.objects.all().delete()
    variant = ProductVariant.objects.get(pk=variant.pk)
    price = iter(Decimal("10.00") + Decimal(n) / 100 for n in range(1, 10**6))

    def timed_saves(before_each=None) -> list[float]:
        times = []
        for _ in range(args.saves):
            if before_each:
                before_each()
            variant.price = next(price)
            start = time.perf_counter()
            variant.save()
            times.append(time.perf_counter() - start)
        return times

    def show(label: str, times: list[float], base: float | None = None) -> float:
        mean = statistics.fmean(times) * 1000
        p95 = sorted(times)[int(len(times) * 0.95) - 1] * 1000
        extra = f"   (+{mean - base:.2f} ms over the bare save)" if base is not None else ""
        print(f"{label:<52} mean {mean:6.2f} ms  p95 {p95:6.2f} ms{extra}")
        return mean

    # Warm up connections and caches.
    signals.disconnect()
    timed_saves()
    bare = show("save, receivers disconnected", timed_saves())
    signals.connect()

    Job.objects.all().delete()
    show("save + merge into the pending fan-out (burst)", timed_saves(), bare)
    merged = Job.objects.get(kind="fanout")
    print(
        f"  -> {Job.objects.filter(kind='fanout').count()} fan-out job, "
        f"merged_count {merged.merged_count}"
    )

    def start_pending() -> None:
        # Pretend a worker started the pending fan-out, so the next save makes a new one.
        Job.objects.filter(kind="fanout", state=JobState.PENDING).update(state=JobState.RUNNING)

    Job.objects.all().delete()
    show("save + new fan-out row + RQ dispatch on commit", timed_saves(start_pending), bare)
    from rq.registry import ScheduledJobRegistry

    queue = django_rq.get_queue("bundle-bulk-operation")
    scheduled = ScheduledJobRegistry(queue=queue).count
    print(f"  -> {queue.count} RQ jobs queued, {scheduled} scheduled (fan-out debounce)")

    Job.objects.all().delete()
    noop = []
    for _ in range(args.saves):
        start = time.perf_counter()
        variant.save()
        noop.append(time.perf_counter() - start)
    show("no-op save, receivers connected", noop, bare)
    assert not Job.objects.exists()


if __name__ == "__main__":
    main()
