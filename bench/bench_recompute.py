"""Recompute of a whole catalog against the physical limit: one SQL UPDATE over the same rows.

    bin/bench                                     # small catalog, throwaway SQLite
    bin/bench --bundles 100000                    # the P1 / P5 run
    DATABASE_URL=postgres://…/scratch bin/bench --bundles 100000

Seeds N bundles with ``seed_demo`` on the database DATABASE_URL names (a throwaway SQLite file
when unset; the database is migrated and its catalog replaced — never point it at one you
care about), then measures side by side in one run:

- ``bundles_recompute`` of every bundle with nothing changed;
- ``--rounds`` pairs, alternating: one SQL ``UPDATE`` of every bundle's price (three rules)
  and availability computed with aggregate subqueries over components and variants (the
  yardstick), after a change of every component's price and stock; then ``bundles_recompute``
  of every bundle after another such change (every bundle changed: bundles, shells and search
  entries written). P1 is the median of the rounds' ratios;
- ``bundles_check(scope="all")`` in a fresh process, with its peak RSS (P5).

Targets (issue 9): P1 all-changed recompute ≤ 5× the UPDATE (aim 3×); P5 peak RSS < 250 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("ALLOW_INSECURE_KEY", "1")  # a generated key in var/; DEBUG stays off


def yardstick_sql(vendor: str) -> str:
    """One UPDATE: price by the three rules and availability, from aggregate subqueries."""
    zero_floor = "GREATEST(0, {x})" if vendor == "postgresql" else "MAX(0, {x})"
    least = "LEAST({a}, {b})" if vendor == "postgresql" else "MIN({a}, {b})"
    total = (
        "(SELECT SUM(v.price * c.quantity) FROM bundles_bundlecomponent c "
        "JOIN bundles_productvariant v ON v.id = c.variant_id "
        "WHERE c.bundle_id = bundles_bundle.id)"
    )
    available = (
        "(SELECT CASE WHEN COUNT(*) = 0 OR SUM(CASE WHEN v.enabled AND v.deleted_at IS NULL "
        f"THEN 0 ELSE 1 END) > 0 THEN 0 ELSE {zero_floor.format(x='MIN((v.stock_on_hand - v.allocated) / c.quantity)')} END "  # noqa: E501
        "FROM bundles_bundlecomponent c JOIN bundles_productvariant v ON v.id = c.variant_id "
        "WHERE c.bundle_id = bundles_bundle.id)"
    )
    capped = (
        f"CASE WHEN availability_cap IS NULL THEN {available} "
        f"ELSE {least.format(a=available, b='availability_cap')} END"
    )
    return f"""
        UPDATE bundles_bundle SET
          computed_price = CASE pricing_rule
            WHEN 'percent_off' THEN ROUND({total} * (100 - rule_value) / 100, 2)
            WHEN 'amount_off' THEN ROUND({total} - rule_value, 2)
            ELSE rule_value END,
          computed_availability = CASE
            WHEN (valid_from IS NOT NULL AND valid_from > %s)
              OR (valid_to IS NOT NULL AND valid_to <= %s) THEN 0
            ELSE {capped} END
    """


def check_in_fresh_process() -> None:
    """``--rss-check``: run the whole check here and print its figures as JSON."""
    import resource

    import django

    django.setup()
    from bundles.services import bundles_check

    start = time.perf_counter()
    result = bundles_check(scope="all")
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak_mb, "checked": result["checked"]}))


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import F
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from bundles.models import Bundle, BundleComponent, ProductVariant
    from bundles.services import bundle_recompute, bundles_recompute

    def settle() -> None:
        """PostgreSQL: vacuum and analyze now, so autovacuum does not run during a timing."""
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")

    db = settings.DATABASES["default"]
    print(
        f"database: {connection.vendor} {db.get('NAME')}   bundles: {args.bundles}   "
        f"load average: {os.getloadavg()[0]:.1f}"
    )
    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    if args.reuse and Bundle.objects.count() == args.bundles:
        print("reusing the catalog already there (--reuse)")
    else:
        call_command("seed_demo", bundles=args.bundles, seed=args.seed, reset=True, verbosity=0)
    settle()
    print(
        f"seeded in {time.perf_counter() - start:.1f} s: {Bundle.objects.count()} bundles, "
        f"{BundleComponent.objects.count()} components, "
        f"{ProductVariant.objects.count()} variants (shells included)"
    )
    ids = list(Bundle.objects.order_by("pk").values_list("pk", flat=True))
    components = ProductVariant.objects.filter(product__is_bundle_shell=False)

    def change_every_component(stock: int) -> None:
        # New price and stock for every component: every bundle's price and availability move.
        components.update(price=F("price") + 1, stock_on_hand=stock, allocated=0)
        settle()

    def timed(fn):
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result

    def recompute():
        return bundles_recompute(bundle_ids=ids, batch_size=args.batch_size)

    rows = []
    unchanged_s, r = timed(recompute)
    rows.append(("recompute all, nothing changed", unchanged_s, f"{r['changed']} changed"))

    now = timezone.now()
    params = [connection.ops.adapt_datetimefield_value(now)] * 2
    sql = yardstick_sql(connection.vendor)

    def yardstick():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    # Rounds alternate the two sides on the same data, so a burst of load on this shared
    # machine hits one round, not one side: the ratio is the median of the rounds' ratios.
    ratios, update_times, changed_times = [], [], []
    for round_no in range(args.rounds):
        change_every_component(stock=1000 + 2 * round_no)
        update_s, n = timed(yardstick)
        settle()
        change_every_component(stock=1001 + 2 * round_no)
        changed_s, r = timed(recompute)
        ratios.append(changed_s / update_s)
        update_times.append(update_s)
        changed_times.append(changed_s)
        print(
            f"  round {round_no + 1}: UPDATE {update_s:.2f} s, recompute {changed_s:.2f} s "
            f"({r['changed']} changed): {changed_s / update_s:.1f}×"
        )
    update_s = statistics.median(update_times)
    changed_s = statistics.median(changed_times)
    rows.append(("one SQL UPDATE (price + availability)", update_s, f"{n} rows, median"))
    rows.append(
        ("recompute all, every bundle changed", changed_s, f"{r['changed']} changed, median")
    )

    # One bundle is a batch of one: the door of a single recompute (admin button, GraphQL).
    single = ids[: min(len(ids), 200)]
    change_every_component(stock=3000)
    with CaptureQueriesContext(connection) as queries:
        one_s, _ = timed(lambda: [bundle_recompute(bundle_id=i) for i in single])
    rows.append(
        (
            f"  recompute one bundle, × {len(single)}",
            one_s,
            f"{len(queries) / len(single):.1f} queries each",
        )
    )

    out = subprocess.run(
        [sys.executable, __file__, "--rss-check"],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    check = json.loads(out.stdout.strip().splitlines()[-1])
    rows.append(
        ("check all, no fix (fresh process)", check["seconds"], f"{check['checked']} checked")
    )

    print(f"\n{'':<40} {'seconds':>9} {'bundles/s':>11} {'× UPDATE':>9}")
    for label, seconds, note in rows:
        rate = len(ids) / seconds if seconds else float("inf")
        print(f"{label:<40} {seconds:9.2f} {rate:11,.0f} {seconds / update_s:8.1f}×   {note}")
    ratio = statistics.median(ratios)
    print(
        f"\nP1 all-changed recompute / UPDATE, median of {len(ratios)} rounds: {ratio:.1f}× "
        f"(rounds: {', '.join(f'{x:.1f}×' for x in ratios)}; target ≤ 5×, aim 3×) "
        f"{'holds' if ratio <= 5 else 'MISSED'}"
    )
    if args.bundles < 100_000:
        # A small catalog's recompute is mostly per-batch overhead against a few milliseconds
        # of UPDATE: the ratio only means something at the size the target is set for.
        print(f"    (P1 is set for 100,000 bundles, this run had {len(ids)}: --bundles 100000)")
    print(
        f"P5 peak RSS of the check: {check['peak_rss_mb']:.0f} MB (target < 250 MB) "
        f"{'holds' if check['peak_rss_mb'] < 250 else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5, help="UPDATE / recompute pairs")
    parser.add_argument(
        "--reuse", action="store_true", help="keep a catalog of --bundles bundles already there"
    )
    parser.add_argument("--rss-check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_check:
        check_in_fresh_process()
        return
    from bench.scratch import scratch_services

    with scratch_services("bench-recompute"):
        run(args)


if __name__ == "__main__":
    main()
