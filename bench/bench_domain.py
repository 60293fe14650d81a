"""Benchmark the bundle domain at scale: seed N bundles, then recompute and check them all.

    DATABASE_URL=sqlite:////tmp/seedbench.sqlite3 DEBUG=1 \
        .venv/bin/python bench/bench_domain.py --bundles 100000

Uses the database DATABASE_URL names (a throwaway SQLite file when unset; migrated and its
catalog replaced — a scratch database only) and a private Redis, and prints wall times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-not-a-secret")

from bench.scratch import scratch_services  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args, _unknown = parser.parse_known_args()  # bin/bench passes its arguments to several
    with scratch_services("bench-domain"):
        run(args)


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from bundles.models import Bundle, BundleComponent, ProductVariant
    from bundles.services import bundles_check, bundles_recompute, bundles_reindex

    db = settings.DATABASES["default"]
    print(f"database: {connection.vendor} {db.get('NAME')}")
    call_command("migrate", verbosity=0)

    def timed(label: str, fn):
        start = time.monotonic()
        result = fn()
        print(f"{label:<44} {time.monotonic() - start:8.1f} s")
        return result

    timed(
        f"seed_demo --bundles {args.bundles} (incl. recompute)",
        lambda: call_command(
            "seed_demo", bundles=args.bundles, seed=args.seed, reset=True, verbosity=0
        ),
    )
    print(
        f"  {Bundle.objects.count()} bundles, {BundleComponent.objects.count()} components, "
        f"{ProductVariant.objects.count()} variants (shells included)"
    )
    ids = list(Bundle.objects.order_by("pk").values_list("pk", flat=True))
    r = timed("recompute all (nothing changed)", lambda: bundles_recompute(bundle_ids=ids))
    print(f"  {r['recomputed']} recomputed, {r['changed']} changed")
    # Every component's stock changes: every bundle's availability and shell must be written.
    ProductVariant.objects.filter(product__is_bundle_shell=False).update(stock_on_hand=1000)
    r = timed("recompute all (every bundle changed)", lambda: bundles_recompute(bundle_ids=ids))
    print(f"  {r['recomputed']} recomputed, {r['changed']} changed")
    r = timed("check all (no fix)", lambda: bundles_check(scope="all"))
    print(f"  checked {r['checked']}, ok {r['ok']}, broken {r['broken']}, errors {r['errors']}")
    n = timed("reindex all", lambda: bundles_reindex())
    print(f"  {n} entries written")


if __name__ == "__main__":
    main()
