"""Deterministic demo catalog: ``seed_demo --bundles N [--seed S] [--reset]``.

The rows are planned and written set-based by ``bundles.seeding`` (one statement per table
and chunk, priced, with shells and search entries); a few bundles are broken on purpose (a
deleted or disabled component) so the integrity check has work.
"""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from bundles.models import Bundle, ProductVariant
from bundles.seeding import demo_catalog_delete, demo_catalog_seed


class Command(BaseCommand):
    help = "Create a deterministic demo catalog of N bundles (skips if bundles exist)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--bundles", type=int, default=200, help="how many bundles")
        parser.add_argument("--seed", type=int, default=42, help="random seed (deterministic)")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete the whole catalog (bundles, products, variants, index) first",
        )
        parser.add_argument(
            "--batch-size", type=int, default=2000, help="bundles written per statement"
        )

    def handle(self, *args, bundles: int, seed: int, reset: bool, batch_size: int, **options):
        if bundles < 0:
            raise CommandError("--bundles must be ≥ 0")
        if batch_size < 1:
            raise CommandError("--batch-size must be ≥ 1")
        verbosity = options.get("verbosity", 1)
        if reset:
            # Even when the catalog is empty: the sequences restart, so the ids are the same
            # every time (the README's promise for --reset).
            demo_catalog_delete()
            self.stdout.write("Catalog deleted (--reset).")
        elif Bundle.objects.exists() or ProductVariant.objects.exists():
            self.stdout.write(
                f"Catalog already has {Bundle.objects.count()} bundles; skipping "
                "(use --reset to replace it)."
            )
            return
        started = time.monotonic()
        interactive = verbosity >= 1 and sys.stdout.isatty()

        # Progress is news, not an error: stdout, in the terminal's own colour.
        def progress(pct: int, message: str) -> None:
            if verbosity >= 2 or interactive:
                self.stdout.write(f"\r  seeding {pct:3d}% {message}   ", ending="")
                self.stdout.flush()

        result = demo_catalog_seed(
            n_bundles=bundles, seed=seed, batch_size=batch_size, progress=progress
        )
        if verbosity >= 2 or interactive:
            self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {result.bundles} bundles over {result.variants} variants "
                f"({result.broken} broken on purpose) in {time.monotonic() - started:.1f}s."
            )
        )
